import { z } from "zod/v3";
import { DEFAULT_MODEL } from "../constants.js";
import { McpServers } from "../mcp/config.js";
import { CSV_COLUMNS } from "../po/model.js";

/** Weekday names as written in customer files; evaluated in the customer's time zone. */
export const Weekday = z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
export type Weekday = z.infer<typeof Weekday>;

/** Amounts in configs are written in major units (dollars) for humans; code converts to minor units. */
const Amount = z.number().nonnegative();

export const Approver = z
  .object({
    /** Stable id used in policies, audit and links. */
    id: z.string().regex(/^[a-z][a-z0-9_-]*$/, "lowercase id (letters, digits, - or _)"),
    name: z.string().min(1),
    email: z.string().email(),
    /** Largest PO total this person may approve, in major units. Omit for no limit. */
    limit: Amount.optional(),
    /** Days this person approves on. Omit for every day. */
    weekdays: z.array(Weekday).nonempty().optional(),
    /** Ids of approvers who take over when this one does not answer in time. */
    delegates: z.array(z.string()).default([]),
    /**
     * Authenticated callers that decide as this approver over MCP: the audit actor `mcp:<principal>`
     * (in AWS the IAM principal ARN of a Function URL call, or `mcp:http` for the bearer token).
     * Omit: this approver decides only through signed links.
     */
    principals: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type Approver = z.infer<typeof Approver>;

/**
 * One tier of the structured approval policy. Tiers are checked in order; the first whose
 * `when` matches decides. This is what the guard and the offline model apply; the plain
 * language `rules` are what Claude reads.
 */
export const PolicyTier = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]*$/, "lowercase kebab-case name"),
    description: z.string().min(1),
    when: z
      .object({
        weekdays: z.array(Weekday).nonempty().optional(),
      })
      .strict()
      .default({}),
    /** Totals up to and including this (major units) are approved without a human. */
    autoApproveUpTo: Amount,
    /** Preferred vendors skip the human at any amount under this tier. */
    preferredVendorsExempt: z.boolean(),
    /** Who is asked first when a human is needed; escalation follows the list, then delegates. */
    approvers: z.array(z.string()).nonempty(),
  })
  .strict();
export type PolicyTier = z.infer<typeof PolicyTier>;

export const Vendor = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1),
    preferred: z.boolean().default(false),
  })
  .strict();
export type Vendor = z.infer<typeof Vendor>;

export const CustomerConfig = z
  .object({
    /** Must equal the file name without `.yaml`; becomes the stack name suffix. */
    name: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/, "2-31 lowercase letters, digits or -, starting with a letter"),
    displayName: z.string().min(1),
    /** IANA time zone the policy's weekdays are evaluated in. */
    timeZone: z.string().refine(isTimeZone, "an IANA time zone such as America/Chicago"),
    /** ISO 4217 code of the amounts in the policy. */
    currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code such as USD"),
    /** The customer's rules in their own words; sent to the model as written. */
    rules: z.string().min(1),
    approvers: z.array(Approver).nonempty(),
    /**
     * Address this customer's approval emails come from (deployed stacks). Its domain or the address
     * must be verified in SES once per account and region; the stack only references it.
     */
    senderEmail: z.string().email().optional(),
    vendors: z.array(Vendor).default([]),
    approvalPolicy: z
      .object({
        /** Which date decides the weekday: the PO's order date (deterministic, replay-safe). */
        weekdayFrom: z.enum(["orderDate"]).default("orderDate"),
        tiers: z.array(PolicyTier).nonempty(),
        /** Hours after an approver is emailed until they get one reminder; at or past `escalateAfterHours`, none. */
        reminderAfterHours: z.number().positive().max(480).default(24),
        /**
         * Hours each approver in the chain has before the request goes to the next one (approvers, then
         * delegates); after the last one's time the request ends rejected with "approval timed out".
         * At most 20 days: one wait must fit a local timer (24.8 days) and stay far below the execution's 30.
         */
        escalateAfterHours: z.number().positive().max(480).default(48),
        /**
         * Classes of model amendments that may be saved without a human who sees the diff. Empty by
         * default: an amendment to money, quantities, supplier, currency, the order date or the PO
         * number, and a PO the model drafted from raw text, always go to a human unless listed here.
         */
        amendmentsWithoutHuman: z
          .array(z.enum(["money", "quantity", "supplier", "currency", "order-date", "po-number", "model-draft"]))
          .default([]),
      })
      .strict(),
    model: z
      .object({
        /** Anthropic model id, or `reference` to force the offline model. */
        id: z.string().default(DEFAULT_MODEL),
        provider: z.enum(["auto", "anthropic", "bedrock", "reference"]).default("auto"),
        baseURL: z.string().url().optional(),
      })
      .strict()
      .default({}),
    budgets: z
      .object({
        maxTurns: z.number().int().positive().optional(),
        maxTokens: z.number().int().positive().optional(),
        maxCostUsd: z.number().positive().optional(),
        /** Tokens of prepared email-thread context sent to the model (the rest is summarized, fetchable by id). */
        contextTokens: z.number().int().positive().optional(),
      })
      .strict()
      .default({}),
    /**
     * Operator override: `po-agent approve|reject` and the local console decide without being an
     * approver, named as an override in the audit. Off unless enabled here.
     */
    operatorOverride: z
      .object({ enabled: z.boolean(), operators: z.array(z.string().min(1)).default([]) })
      .strict()
      .default({ enabled: false, operators: [] }),
    /** MCP servers whose tools are mounted for this customer's runs, namespaced `<name>.<tool>`. */
    mcpServers: McpServers,
    /** How this customer's documents are read where no standard or synonym says. */
    formats: z
      .object({
        csv: z
          .object({
            /** Canonical column → the header this customer's CSV export uses for it, e.g. `{ quantity: "Menge" }`. */
            columns: z.record(z.enum(CSV_COLUMNS), z.string().min(1)).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const ids = new Set(cfg.approvers.map((a) => a.id));
    cfg.approvers.forEach((a, i) => {
      a.delegates.forEach((d, j) => {
        if (!ids.has(d)) {
          ctx.addIssue({
            code: "custom",
            path: ["approvers", i, "delegates", j],
            message: `unknown approver id "${d}"`,
          });
        }
      });
    });
    cfg.approvalPolicy.tiers.forEach((t, i) => {
      t.approvers.forEach((id, j) => {
        if (!ids.has(id)) {
          ctx.addIssue({
            code: "custom",
            path: ["approvalPolicy", "tiers", i, "approvers", j],
            message: `unknown approver id "${id}"`,
          });
        }
      });
    });
  });
export type CustomerConfig = z.infer<typeof CustomerConfig>;

/**
 * Canonical IANA names are looked up in the engine's list (about 2 ms); anything else (an alias such as
 * `US/Central`) is tried on a formatter, whose first construction costs ~17 ms of every cold start.
 */
function isTimeZone(tz: string): boolean {
  if (Intl.supportedValuesOf("timeZone").includes(tz)) return true;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

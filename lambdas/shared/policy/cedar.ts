import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TOOLS } from "../agent/tool-lookup.js";
import type { Weekday } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import { lazyModule } from "../lazy.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import { toMinor } from "../po/money.js";
import { type PolicyConfig, policyDataOf } from "./types.js";

/**
 * The customer's approval policy as Cedar (the language of AWS Verified Permissions).
 *
 * Split of responsibilities: Cedar decides *whether* a write may run without a human (allow) or
 * not (deny → approval request), from a small request context; TypeScript computes that context
 * (weekday of the order date, vendor match, minor units) and routes a denied call to approvers
 * (limits, weekdays, delegates), which is ordering and lookup rather than authorization.
 *
 * The policy text is generated from the YAML tiers, so the numbers live in one place, and is
 * checked in as `customers/<name>.cedar` (a test fails when the file and the YAML drift apart).
 */

// The engine compiles 4 MB of wasm when loaded: only on the first evaluation, not at every cold start.
const cedar = lazyModule<typeof import("@cedar-policy/cedar-wasm/nodejs")>("@cedar-policy/cedar-wasm/nodejs");

export const NAMESPACE = "PoAgent";
/** The only principal allowed to ask for writes: the orchestrator acting on the model's tool calls. */
export const ORCHESTRATOR = "orchestrator";

const ALL_DAYS: readonly Weekday[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** Entity types, the effect groups and one action per write/dangerous tool; validates every policy file. */
export function cedarSchemaText(): string {
  const actions = TOOLS.filter((t) => t.effect !== "read").map(
    (t) => `  action "${t.name}" in ["${t.effect}"] appliesTo { principal: Agent, resource: Document, context: Call };`,
  );
  return [
    `namespace ${NAMESPACE} {`,
    "  entity Agent;",
    "  entity Document;",
    "  type Call = {",
    '    "tool": String,',
    '    "effect": String,',
    '    "documentType": String,',
    '    "amountMinor": Long,',
    '    "currency": String,',
    '    "weekday": String,',
    '    "vendorKnown": Bool,',
    '    "vendorId": String,',
    '    "vendorPreferred": Bool,',
    "  };",
    '  action "write", "dangerous";',
    // A dangerous action that is not a tool yet still type-checks policies that mention it.
    '  action "bulk_change" in ["dangerous"] appliesTo { principal: Agent, resource: Document, context: Call };',
    ...actions,
    "}",
    "",
  ].join("\n");
}

/** The request context Cedar sees for one call. */
export interface CedarCall {
  agent: string;
  tool: string;
  effect: "write" | "dangerous";
  /** Document identifier (PO number), the Cedar resource. */
  documentId: string;
  documentType: string;
  amountMinor: number;
  currency: string;
  weekday: Weekday;
  vendorKnown: boolean;
  vendorId: string;
  vendorPreferred: boolean;
}

/** One tier's effective days: its `when.weekdays` minus the days an earlier tier already decides. */
export function effectiveDays(customer: PolicyConfig): { tier: string; days: Weekday[] }[] {
  const taken = new Set<Weekday>();
  return customer.approvalPolicy.tiers.map((t) => {
    const days = (t.when.weekdays ?? ALL_DAYS).filter((d) => !taken.has(d));
    for (const d of days) taken.add(d);
    return { tier: t.name, days: ALL_DAYS.filter((d) => days.includes(d)) };
  });
}

function dayCondition(days: readonly Weekday[]): string {
  if (days.length === 1) return `context.weekday == "${days[0]}"`;
  return `[${days.map((d) => `"${d}"`).join(", ")}].contains(context.weekday)`;
}

const SCOPE = `principal == ${NAMESPACE}::Agent::"${ORCHESTRATOR}",
  action in ${NAMESPACE}::Action::"write",
  resource is ${NAMESPACE}::Document`;

/**
 * The Cedar policy text for one customer: deterministic, so its hash is a revision id. The name
 * and display name appear only in its header comments (and so are in the hashed text).
 */
export function cedarPolicyText(customer: PolicyConfig): string {
  const out: string[] = [
    `// Approval policy of ${oneLine(customer.displayName)} (${customer.name}), in Cedar.`,
    `// Generated from customers/${customer.name}.yaml (approvalPolicy); regenerate with`,
    "//   npx tsx lambdas/shared/policy/write-files.ts",
    "// Allow = the call runs without a human. Anything not allowed becomes an approval request.",
    `// Amounts are minor units of ${customer.currency}; weekdays are those of the PO's order date.`,
    "",
  ];
  const days = effectiveDays(customer);
  for (const tier of customer.approvalPolicy.tiers) {
    const when = days.find((d) => d.tier === tier.name)?.days ?? [];
    if (when.length === 0) continue;
    const limit = toMinor(tier.autoApproveUpTo, customer.currency);
    out.push(
      `// Tier "${tier.name}": ${oneLine(tier.description)}`,
      `@id("${tier.name}/auto-approve")`,
      `permit (\n  ${SCOPE}\n)`,
      "when {",
      `  ${dayCondition(when)} &&`,
      `  context.currency == "${customer.currency}" &&`,
      `  context.amountMinor <= ${limit}`,
      "};",
      "",
    );
    if (tier.preferredVendorsExempt) {
      out.push(
        `@id("${tier.name}/preferred-vendor")`,
        `permit (\n  ${SCOPE}\n)`,
        "when {",
        `  ${dayCondition(when)} &&`,
        `  context.currency == "${customer.currency}" &&`,
        "  context.vendorPreferred",
        "};",
        "",
      );
    }
  }
  out.push(
    "// Deletes, cancellations and bulk changes always need a human, whatever the amount.",
    '@id("dangerous-needs-human")',
    `forbid (principal, action in ${NAMESPACE}::Action::"dangerous", resource);`,
    "",
  );
  return out.join("\n");
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** sha256 of the policy text and the config it is read with, shortened: recorded with every decision. */
export function policyRevisionOf(customer: PolicyConfig, policyText = compiled(customer).text): string {
  return `cedar-${sha256(`${policyText}\n${canonicalJson(policyDataOf(customer))}`).slice(0, 16)}`;
}

interface Compiled {
  text: string;
  policies: Record<string, string>;
  revision: string;
}

const cache = new WeakMap<PolicyConfig, Compiled>();

function compiled(customer: PolicyConfig): Compiled {
  const hit = cache.get(customer);
  if (hit) return hit;
  const text = cedarPolicyText(customer);
  const c: Compiled = { text, policies: splitPolicies(text), revision: policyRevisionOf(customer, text) };
  cache.set(customer, c);
  return c;
}

/** Named policies (`@id`) so Cedar's diagnostics say which rule allowed or forbade a call. */
export function splitPolicies(text: string): Record<string, string> {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success") {
    throw new ConfigError(`cedar policy does not parse: ${parts.errors.map((e) => e.message).join("; ")}`);
  }
  const named: Record<string, string> = {};
  parts.policies.forEach((p, i) => {
    const id = /@id\("([^"]+)"\)/.exec(p)?.[1] ?? `policy${i}`;
    named[id] = p;
  });
  return named;
}

export interface CedarDecision {
  decision: "allow" | "deny";
  /** Ids of the policies that decided (permits for allow, forbids for an explicit deny). */
  policies: string[];
  revision: string;
  /** Policies that failed to evaluate (they count as not matching). */
  errors: string[];
}

/** Asks Cedar about one call. A policy set that does not parse throws; evaluation errors deny (fail closed). */
export function authorize(customer: PolicyConfig, call: CedarCall, policyText?: string): CedarDecision {
  const c = policyText === undefined ? compiled(customer) : undefined;
  const policies = c?.policies ?? splitPolicies(policyText ?? "");
  const revision = c?.revision ?? policyRevisionOf(customer, policyText);
  const action = { type: `${NAMESPACE}::Action`, id: call.tool };
  const answer = cedar.isAuthorized({
    principal: { type: `${NAMESPACE}::Agent`, id: call.agent },
    action,
    resource: { type: `${NAMESPACE}::Document`, id: call.documentId },
    context: {
      tool: call.tool,
      effect: call.effect,
      documentType: call.documentType,
      amountMinor: call.amountMinor,
      currency: call.currency,
      weekday: call.weekday,
      vendorKnown: call.vendorKnown,
      vendorId: call.vendorId,
      vendorPreferred: call.vendorPreferred,
    },
    policies: { staticPolicies: policies },
    entities: [{ uid: action, attrs: {}, parents: [{ type: `${NAMESPACE}::Action`, id: call.effect }] }],
  });
  if (answer.type !== "success") {
    throw new ConfigError(`cedar could not evaluate the policy: ${answer.errors.map((e) => e.message).join("; ")}`);
  }
  const { decision, diagnostics } = answer.response;
  // A policy that errors is skipped by Cedar, so an error can only turn an allow into a deny.
  const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
  return { decision, policies: [...diagnostics.reason].sort(), revision, errors };
}

/** Validates a policy text against the schema; returns the problems (empty when valid). */
export function validatePolicyText(text: string): string[] {
  const answer = cedar.validate({ schema: cedarSchemaText(), policies: { staticPolicies: text } });
  if (answer.type !== "success") return answer.errors.map((e) => e.message);
  return answer.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`);
}

/** The checked-in policy file of a customer, or undefined when there is none. */
export function readPolicyFile(customersDir: string, name: string): string | undefined {
  try {
    return readFileSync(join(customersDir, `${name}.cedar`), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

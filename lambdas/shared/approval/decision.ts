/**
 * How a decision is checked against a bound approval, for every entry point (signed link, MCP,
 * CLI, console): decision value, identity, approver, single use, segregation of duties, binding
 * and policy revision. Pure but for the submitters, read only when an approval needs them;
 * `decide()` (agent/approvals.ts) does the reads, the conditional write and the wake-up.
 */
import { z } from "zod/v3";
import type { CustomerConfig } from "../config/schema.js";
import type { ApprovalRecord } from "../ledger/records.js";
import { policyRevisionOf } from "../policy/cedar.js";
import { bindingProblem, stalePolicyProblem } from "./binding.js";

/** A human's decision: a closed set (anything else is refused before a write). */
export const DecisionValue = z.enum(["approve", "reject"]);
export type DecisionValue = z.infer<typeof DecisionValue>;

/** Legacy decision words (`approved`/`rejected`) as the closed set; anything else passes through to be refused. */
export function decisionValueOf(value: unknown): unknown {
  return value === "approved" ? "approve" : value === "rejected" ? "reject" : value;
}

/**
 * Who decides, as established by how they authenticated, never by a field they send: the approver a
 * signed link was issued to; an MCP caller's authenticated principal, mapped to an approver in the
 * customer config (`approvers[].principals`); or an operator override (CLI, local console), off
 * unless the customer config enables it, and named as an override in the audit.
 */
export type Decider =
  | { via: "link"; approverId: string; nonce: string }
  | {
      via: "mcp";
      principal: string /** An approver id the caller asks to act as; must be one it is mapped to. */;
      as?: string;
    }
  | { via: "operator"; operator: string; channel: "cli" | "console" };

/** A decision that passed every check: what to write and how the audit names it. */
export interface CheckedDecision {
  status: "approved" | "rejected";
  /** Who decided, in the audit's and the record's words. */
  by: string;
  /** The approver the decider acts as; undefined for an operator override. */
  approverId: string | undefined;
  via: "signed-link" | "mcp" | "operator-override";
}

/** Who a decider is in the audit, before anything is checked. */
export function actorOf(decider: Decider): string {
  if (decider.via === "link") return decider.approverId;
  if (decider.via === "mcp") return decider.principal;
  return `${decider.channel}:${decider.operator}`;
}

/**
 * Why the record cannot be decided now, or undefined: it must still describe exactly the call that
 * was emailed (binding), under the policy now in force (the revision field written with the request).
 */
export function undecidableProblem(customer: CustomerConfig, approval: ApprovalRecord): string | undefined {
  return bindingProblem(approval) ?? stalePolicyProblem(approval, policyRevisionOf(customer));
}

/**
 * Every check a decision passes before it is written, in order; the first failure is the refusal.
 * `submitters` is read only for an approval (segregation of duties: rejecting is always allowed).
 */
export async function checkDecision(input: {
  customer: CustomerConfig;
  approval: ApprovalRecord;
  decider: Decider;
  decision: unknown;
  submitters: () => Promise<string[]>;
}): Promise<{ ok: CheckedDecision } | { refused: string }> {
  const { customer, approval, decider } = input;
  const parsed = DecisionValue.safeParse(input.decision);
  if (!parsed.success) {
    return {
      refused: `the decision must be "approve" or "reject", not ${JSON.stringify(input.decision)?.slice(0, 40)}`,
    };
  }
  if (approval.customer !== customer.name) return { refused: `the approval belongs to customer ${approval.customer}` };

  const who = identify(customer, approval, decider);
  if ("refused" in who) return who;
  const { by, approverId } = who;

  if (approval.status !== "pending") {
    return { refused: `the approval is ${approval.status}${approval.decidedBy ? ` (by ${approval.decidedBy})` : ""}` };
  }
  if (parsed.data === "approve") {
    const principals = new Set([
      ...(decider.via === "mcp" ? [decider.principal] : []),
      ...(customer.approvers.find((a) => a.id === approverId)?.principals ?? []),
    ]);
    const self = (await input.submitters()).find((p) => principals.has(p));
    if (self !== undefined)
      return { refused: `${self} submitted this document; a submitter cannot approve its own PO` };
  }
  if (decider.via === "link" && approval.usedNonces.includes(decider.nonce)) {
    return { refused: "this link was already used" };
  }
  const problem = undecidableProblem(customer, approval);
  if (problem !== undefined) return { refused: problem };

  const via = decider.via === "link" ? "signed-link" : decider.via === "mcp" ? "mcp" : "operator-override";
  return { ok: { status: parsed.data === "approve" ? "approved" : "rejected", by, approverId, via } };
}

/** Identity from the authentication, then the approver check: who decides, as which approver. */
function identify(
  customer: CustomerConfig,
  approval: ApprovalRecord,
  decider: Decider,
): { by: string; approverId: string | undefined } | { refused: string } {
  const emailOf = (id: string) => customer.approvers.find((a) => a.id === id)?.email ?? id;
  if (decider.via === "link") {
    if (!approval.approvers.includes(decider.approverId)) return { refused: "not an approver of this request" };
    return { by: emailOf(decider.approverId), approverId: decider.approverId };
  }
  if (decider.via === "mcp") {
    const mapped = customer.approvers.filter((a) => a.principals?.includes(decider.principal)).map((a) => a.id);
    const asked = decider.as;
    if (asked !== undefined && !mapped.includes(asked)) {
      return {
        refused: `"${asked}" is not an approver that ${decider.principal} is mapped to in ${customer.name}'s config`,
      };
    }
    const approverId = (asked !== undefined ? [asked] : mapped).find((id) => approval.approvers.includes(id));
    if (approverId === undefined) {
      return {
        refused:
          mapped.length === 0
            ? `${decider.principal} is not mapped to any approver of ${customer.name} (approvers[].principals)`
            : `${decider.principal} decides as ${mapped.join(", ")}, not an approver of this request (approvers: ${approval.approvers.join(", ")})`,
      };
    }
    return { by: `${decider.principal} as ${emailOf(approverId)}`, approverId };
  }
  const override = customer.operatorOverride ?? { enabled: false, operators: [] };
  if (!override.enabled) return { refused: `operator override is off for ${customer.name} (operatorOverride.enabled)` };
  if (override.operators.length > 0 && !override.operators.includes(decider.operator)) {
    return { refused: `${decider.operator} is not an operator allowed to override for ${customer.name}` };
  }
  return { by: `operator override by ${decider.operator} (${decider.channel})`, approverId: undefined };
}

import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import type { NormalizedPo } from "../po/model.js";
import { formatMinor } from "../po/money.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import type { PolicyInput } from "../policy/types.js";
import { ESCALATE_TOOL, findTool, TOOLS } from "../tools/registry.js";

export interface ApprovalRequest {
  reason: string;
  rule: string;
  approvers: string[];
  summary: { poNumber: string; supplierName: string; amount: string };
}

/** What the guard decided about one tool_use block. */
export type GuardVerdict =
  | { kind: "rejected"; error: string }
  | { kind: "run"; argsHash: string }
  | { kind: "approval"; argsHash: string; request: ApprovalRequest };

export function argsHash(input: unknown): string {
  return sha256(canonicalJson(input ?? {}));
}

/** Binds an approval to one exact call: run, tool_use id, tool name and argument hash. */
export function approvalIdFor(runId: string, toolUseId: string, name: string, hash: string): string {
  return `apr_${sha256(`${runId}\n${toolUseId}\n${name}\n${hash}`).slice(0, 24)}`;
}

/**
 * Sits between the model and every tool. Unknown tools and schema-invalid arguments go back
 * to the model as errors; writes are checked against the customer's structured policy and,
 * when not allowed, become approval requests; dangerous calls always need a human.
 */
export function guardCall(customer: CustomerConfig, name: string, input: unknown): GuardVerdict {
  const tool = findTool(name);
  if (!tool) {
    return {
      kind: "rejected",
      error: `unknown tool "${name}"; available tools: ${TOOLS.map((t) => t.name).join(", ")}`,
    };
  }
  const parsed = tool.input.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(arguments)"}: ${i.message}`)
      .join("; ");
    return { kind: "rejected", error: `invalid arguments for ${name}: ${issues}` };
  }
  const hash = argsHash(input);
  if (name === ESCALATE_TOOL) {
    const { reason, po } = parsed.data as { reason: string; po?: NormalizedPo };
    return { kind: "approval", argsHash: hash, request: escalationRequest(customer, reason, po) };
  }
  if (tool.effect === "read") return { kind: "run", argsHash: hash };
  const po = (parsed.data as { po?: NormalizedPo }).po;
  if (tool.effect === "dangerous" || !po) {
    const request = escalationRequest(customer, `${name} is a ${tool.effect} operation and always needs a human`, po);
    return { kind: "approval", argsHash: hash, request: { ...request, rule: `effect:${tool.effect}` } };
  }
  const decision = evaluatePolicy(customer, policyInput(po));
  if (decision.decision === "allow") return { kind: "run", argsHash: hash };
  return {
    kind: "approval",
    argsHash: hash,
    request: { reason: decision.reason, rule: decision.tier, approvers: decision.approvers, summary: summarize(po) },
  };
}

/** What the policy needs to know about a PO. */
export function policyInput(po: NormalizedPo): PolicyInput {
  return {
    totalMinor: po.totalMinor,
    currency: po.currency,
    supplierName: po.supplier.name,
    supplierId: po.supplier.id,
    orderDate: po.orderDate,
  };
}

function summarize(po: NormalizedPo | undefined): ApprovalRequest["summary"] {
  if (!po) return { poNumber: "(unknown)", supplierName: "(unknown)", amount: "(unknown)" };
  return { poNumber: po.poNumber, supplierName: po.supplier.name, amount: formatMinor(po.totalMinor, po.currency) };
}

function escalationRequest(customer: CustomerConfig, reason: string, po: NormalizedPo | undefined): ApprovalRequest {
  // The approvers a policy would ask for this PO; without a PO, the last (default) tier's.
  let approvers: string[];
  if (po) {
    const decision = evaluatePolicy(customer, policyInput(po));
    const tier = customer.approvalPolicy.tiers.find((t) => t.name === decision.tier);
    approvers = decision.decision === "require_approval" ? decision.approvers : [...(tier?.approvers ?? [])];
  } else {
    approvers = [...(customer.approvalPolicy.tiers.at(-1)?.approvers ?? [])];
  }
  return { reason, rule: "model-escalation", approvers, summary: summarize(po) };
}

/**
 * The approval request for a gated call: who is asked (routing), what they and the model are told
 * (reason, rule, summary, the diff against the document), and the record that binds it. The guard
 * decides *that* a call needs a human; this module says to whom and why.
 */
import { describeDiff, documentVersion, poOf } from "../agent/artifacts.js";
import type { ApprovalRecord, ArtifactRecord } from "../ledger/records.js";
import type { NormalizedPo } from "../po/model.js";
import { formatMinor } from "../po/money.js";
import { policyRevisionOf } from "../policy/cedar.js";
import { evaluatePolicy, policyInput } from "../policy/evaluate.js";
import type { PolicyConfig, PolicyDecision } from "../policy/types.js";
import { approvalIdFor } from "./binding.js";
import { defaultChain, tierChain } from "./route.js";

export interface ApprovalRequest {
  /** Why, in words: the approver's email and page, and the model's tool result when it is refused. */
  reason: string;
  /** The rule that requires a human: a tier name, `effect:dangerous`, `amendment:…` or `model-escalation`. */
  rule: string;
  /** Approver ids in the order they are asked: first is emailed, the rest are the escalation chain. */
  approvers: string[];
  summary: { poNumber: string; supplierName: string; amount: string };
  /**
   * The policy revision that decided; bound into the approval's id and record, so a policy change
   * makes the approval stale. Absent for the model's own escalation, which the policy did not decide.
   */
  policyRevision?: string;
  /** The artifact version the call would write (bound by content hash). */
  artifact?: { artifactId: string; version: number; poSha256: string };
  /** The changes against the document a human must see before approving. */
  diff?: string[];
}

/** A gated tool: its name and declared effect. */
interface GatedTool {
  name: string;
  effect: "read" | "write" | "dangerous";
}

/**
 * A write the policy decided on (`decision`) that still needs a human: the policy asked for one,
 * the call is dangerous, or the artifact holds an amendment (or a model draft) a human must confirm.
 */
export function policyRequest(
  customer: PolicyConfig,
  tool: GatedTool,
  decision: PolicyDecision,
  po: NormalizedPo,
  artifact: ArtifactRecord | undefined,
  artifacts: readonly ArtifactRecord[],
): ApprovalRequest {
  const human = artifact?.needsHuman ?? [];
  const approvers = decision.decision === "require_approval" ? decision.approvers : chainForPo(customer, po);
  const amendment = human.join("+");
  const rule =
    tool.effect === "dangerous"
      ? "effect:dangerous"
      : decision.decision === "allow"
        ? `amendment:${amendment}`
        : human.length > 0
          ? `${decision.tier}+amendment:${amendment}`
          : decision.tier;
  const why = `${amendmentWhy(human)}${decision.decision === "allow" ? "" : decision.reason}`.trim();
  const reason = why || `${tool.name} is a dangerous call; it never runs without a human, whatever the policy allows.`;
  const request = { reason, rule, approvers, summary: summarize(po), policyRevision: decision.policyRevision };
  return withArtifact(request, artifact, artifacts);
}

/**
 * A write the policy cannot check: no PO to evaluate, or a tool whose own arguments (not the PO it
 * names) are what it writes. A human decides; the chain is the policy's for the PO, if any.
 */
export function uncheckedWriteRequest(
  customer: PolicyConfig,
  tool: GatedTool,
  po: NormalizedPo | undefined,
  artifact: ArtifactRecord | undefined,
): ApprovalRequest {
  const reason = po
    ? `${tool.name} is a ${tool.effect} call whose arguments, not the PO it names, are what it writes`
    : `${tool.name} is a ${tool.effect} call without a PO to check`;
  const request: ApprovalRequest = {
    reason,
    rule: `effect:${tool.effect}`,
    approvers: chainForPo(customer, po),
    summary: summarize(po),
    policyRevision: policyRevisionOf(customer),
  };
  return withArtifact(request, artifact);
}

/** The model asked for a human itself: its own words are the reason, and no policy revision binds it. */
export function modelEscalationRequest(
  customer: PolicyConfig,
  reason: string,
  po: NormalizedPo | undefined,
  artifact: ArtifactRecord | undefined,
): ApprovalRequest {
  const request = { reason, rule: "model-escalation", approvers: chainForPo(customer, po), summary: summarize(po) };
  return withArtifact(request, artifact);
}

/** An approval record before the ledger stamps it: pending, bound to the call and the request's revision. */
export type NewApproval = Omit<ApprovalRecord, "schemaVersion" | "createdAt">;

/** The record that stores a request for one tool_use block, with its derived id. */
export function approvalRecordFor(input: {
  runId: string;
  customer: string;
  turn: number;
  call: { toolUseId: string; name: string; input: unknown };
  argsHash: string;
  request: ApprovalRequest;
}): NewApproval {
  const { runId, call, argsHash, request } = input;
  const revision = request.policyRevision;
  return {
    approvalId: approvalIdFor(runId, call.toolUseId, call.name, argsHash, revision),
    runId,
    customer: input.customer,
    turn: input.turn,
    call,
    callHash: argsHash,
    ...(revision !== undefined ? { policyRevision: revision } : {}),
    reason: request.reason,
    rule: request.rule,
    approvers: request.approvers,
    summary: request.summary,
    ...(request.artifact ? { artifact: request.artifact } : {}),
    ...(request.diff ? { diff: request.diff } : {}),
    status: "pending",
    emailedTo: [],
    usedNonces: [],
  };
}

/** The chain the policy would ask for this PO (its tier's, when it would allow); without a PO, the default tier's. */
function chainForPo(customer: PolicyConfig, po: NormalizedPo | undefined): string[] {
  if (!po) return defaultChain(customer);
  const decision = evaluatePolicy(customer, policyInput(po));
  return decision.decision === "require_approval" ? decision.approvers : tierChain(customer, decision.tier);
}

/** Why an amended or drafted PO needs a human, as the first sentence of the reason. */
function amendmentWhy(human: readonly string[]): string {
  if (human.length === 0) return "";
  if (human.includes("model-draft")) {
    return "The PO was drafted by the model from the raw document, not read by a parser; a human must confirm it. ";
  }
  return `The model amended ${human.join(", ")} of the PO read from the document; a human must confirm the change. `;
}

function summarize(po: NormalizedPo | undefined): ApprovalRequest["summary"] {
  if (!po) return { poNumber: "(unknown)", supplierName: "(unknown)", amount: "(unknown)" };
  return { poNumber: po.poNumber, supplierName: po.supplier.name, amount: formatMinor(po.totalMinor, po.currency) };
}

/** Binds a request to the artifact version (and its hash) and adds the diff a human must see. */
function withArtifact(
  request: ApprovalRequest,
  artifact: ArtifactRecord | undefined,
  all: readonly ArtifactRecord[] = [],
): ApprovalRequest {
  if (!artifact) return request;
  const binding = { artifactId: artifact.artifactId, version: artifact.version, poSha256: artifact.poSha256 };
  if (artifact.needsHuman.length === 0) return { ...request, artifact: binding };
  const doc = documentVersion(all);
  let base: NormalizedPo | undefined;
  try {
    base = doc && !artifact.needsHuman.includes("model-draft") ? poOf(doc) : undefined;
  } catch {
    base = undefined;
  }
  return { ...request, artifact: binding, diff: describeDiff(base, poOf(artifact)) };
}

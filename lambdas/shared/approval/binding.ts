/**
 * What a bound approval is: one exact call (run, tool_use id, tool name, argument hash) under one
 * policy revision. Approving it can execute nothing else, and a policy change makes it stale.
 */
import { canonicalJson, sha256 } from "../ledger/ledger.js";

export function argsHash(input: unknown): string {
  return sha256(canonicalJson(input ?? {}));
}

/**
 * The id of an approval: derived from run, tool_use id, tool name, argument hash and, for a policy
 * decision, the policy revision, so a record edited to name another call or revision no longer matches.
 */
export function approvalIdFor(
  runId: string,
  toolUseId: string,
  name: string,
  hash: string,
  policyRevision?: string,
): string {
  const rev = policyRevision === undefined ? "" : `\n${policyRevision}`;
  return `apr_${sha256(`${runId}\n${toolUseId}\n${name}\n${hash}${rev}`).slice(0, 24)}`;
}

/** The stored approval, as far as the binding is concerned (an `ApprovalRecord` is one). */
export interface BoundApproval {
  approvalId: string;
  runId: string;
  call: { toolUseId: string; name: string; input?: unknown };
  callHash: string;
  /** The revision the policy decided under; absent for the model's own escalation (not a policy decision). */
  policyRevision?: string;
}

/**
 * Why an approval record no longer matches the call it was issued for, or undefined when it does:
 * the stored arguments must hash to the recorded hash, and the id must be derived from run, call,
 * hash and revision. A record edited after the email went out (its call, or its revision field)
 * fails here. The id without a revision is accepted too: approvals requested before the id
 * covered the revision carry it (removing the field from a newer record still fails).
 */
export function bindingProblem(
  approval: BoundApproval,
  runId?: string,
  use?: { id: string; input: unknown },
): string | undefined {
  const hash = argsHash(approval.call.input);
  if (hash !== approval.callHash) return "the approved arguments changed after the request was sent";
  if (runId !== undefined && approval.runId !== runId) return `the approval belongs to run ${approval.runId}`;
  if (use !== undefined && (use.id !== approval.call.toolUseId || argsHash(use.input) !== hash)) {
    return "the approval was issued for another call";
  }
  const { toolUseId, name } = approval.call;
  const rev = approval.policyRevision;
  const ids = [approvalIdFor(approval.runId, toolUseId, name, hash)];
  if (rev !== undefined) ids.push(approvalIdFor(approval.runId, toolUseId, name, hash, rev));
  if (!ids.includes(approval.approvalId)) return "the approval id does not match the call it names";
  return undefined;
}

/**
 * Why an approval requested under another policy revision cannot be decided now, or undefined.
 * The revision is the record's field (written when the approval was requested); an approval
 * without one was not a policy decision (the model's own escalation) and cannot go stale.
 */
export function stalePolicyProblem(approval: BoundApproval, currentRevision: string): string | undefined {
  const recorded = approval.policyRevision;
  if (recorded === undefined || recorded === currentRevision) return undefined;
  return `the approval policy changed since it was sent (${recorded}, now ${currentRevision})`;
}

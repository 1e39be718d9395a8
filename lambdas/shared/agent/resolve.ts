/**
 * Resolving a stored turn: what each of its tool calls came to (a stored result, an approval's
 * decision, a guard refusal) or what it still waits for; and the outcome a final turn claims,
 * checked against what really happened.
 */
import { foldPoNumber } from "../ledger/ledger.js";
import type { ApprovalRecord, RunRecord, ToolCallRecord, TurnRecord } from "../ledger/records.js";
import type { ToolResultBlock } from "../model/types.js";
import type { Step, ToolCallRef } from "../steps.js";
import type { AgentDeps, Ending } from "./deps.js";
import { ESCALATE_TOOL, withLane } from "./tool-lookup.js";

interface Resolution {
  results: ToolResultBlock[];
  pendingTools: ToolCallRef[];
  pendingApproval?: string;
}

export async function resolveTurn(
  deps: AgentDeps,
  run: RunRecord,
  turn: TurnRecord,
  toolCalls: ToolCallRecord[],
  approvals: ReadonlyMap<string, ApprovalRecord>,
  /** Filled with the PO numbers whose save a human rejected: they cannot be saved again in this run. */
  rejectedPoNumbers: Set<string> = new Set(),
): Promise<Resolution> {
  const res: Resolution = { results: [], pendingTools: [] };
  const done = new Map(toolCalls.map((c) => [`${c.toolUseId}#${c.argsHash}`, c]));
  for (const d of turn.dispositions) {
    if (d.kind === "rejected") {
      res.results.push({ type: "tool_result", tool_use_id: d.toolUseId, content: d.error, is_error: true });
      continue;
    }
    if (d.kind === "run") {
      const call = done.get(`${d.toolUseId}#${d.argsHash}`);
      if (call) res.results.push(await resultBlock(deps, call));
      else res.pendingTools.push({ toolUseId: d.toolUseId, name: d.name });
      continue;
    }
    const approval = approvals.get(d.approvalId);
    if (!approval) throw new Error(`approval ${d.approvalId} of run ${run.runId} is missing from the ledger`);
    if (approval.status === "pending") {
      res.pendingApproval ??= approval.approvalId;
      continue;
    }
    const who = approval.decidedBy ?? "an approver";
    if (approval.status === "approved") {
      if (d.name === ESCALATE_TOOL) {
        res.results.push({
          type: "tool_result",
          tool_use_id: d.toolUseId,
          content: JSON.stringify({ decision: "approved", by: who, comment: approval.comment ?? "" }),
        });
        continue;
      }
      const call = done.get(`${d.toolUseId}#${d.argsHash}`);
      if (call) {
        const block = await resultBlock(deps, call);
        res.results.push({ ...block, content: `Approved by ${who}. ${block.content}` });
      } else {
        res.pendingTools.push({ toolUseId: d.toolUseId, name: d.name, approvalId: d.approvalId });
      }
      continue;
    }
    if (approval.status === "rejected" && d.name === "save")
      rejectedPoNumbers.add(foldPoNumber(approval.summary.poNumber));
    const why =
      approval.status === "timed_out"
        ? "approval timed out"
        : `rejected by ${who}${approval.comment ? `: ${approval.comment}` : ""}`;
    res.results.push({
      type: "tool_result",
      tool_use_id: d.toolUseId,
      content: `Not executed: ${d.name} needed approval (${approval.reason}) and was ${why === "approval timed out" ? "not decided in time (approval timed out)" : why}.`,
      is_error: true,
    });
  }
  return res;
}

async function resultBlock(deps: AgentDeps, call: ToolCallRecord): Promise<ToolResultBlock> {
  let content = call.content ?? "";
  if (call.resultKey) {
    content = new TextDecoder().decode(await deps.documents.get(deps.bucket, call.resultKey));
  }
  return { type: "tool_result", tool_use_id: call.toolUseId, content, ...(call.isError ? { is_error: true } : {}) };
}

export function stepFromResolution(turn: number, r: Resolution): Step | undefined {
  // Each call carries its lane, recomputed on every step (a run resumed after weeks included).
  if (r.pendingTools.length > 0) return { type: "tools", turn, calls: r.pendingTools.map(withLane) };
  if (r.pendingApproval) return { type: "approval", turn, approvalId: r.pendingApproval };
  return undefined;
}

/** The final assistant line `OUTCOME: x — reason`, checked against what really happened. */
export function deriveOutcome(turns: TurnRecord[], toolCalls: ToolCallRecord[]): { outcome: Ending; reason: string } {
  const last = turns.at(-1);
  const text = (last?.response.content ?? [])
    .filter((b) => b.type === "text")
    .map((b) => String(b.text ?? ""))
    .join("\n")
    .trim();
  const match = /OUTCOME:\s*(saved|rejected|failed|handed_to_human)\s*[—–-]?\s*(.*)/i.exec(text);
  const claimed = match?.[1]?.toLowerCase() as Ending | undefined;
  const reason = (match?.[2] ?? text).trim() || "the model ended the run without a reason";
  const savedOk = toolCalls.some((c) => c.name === "save" && !c.isError);
  if (savedOk) return { outcome: "saved", reason: claimed === "saved" ? reason : `saved (the model said: ${reason})` };
  if (last?.response.stop_reason === "refusal") {
    return {
      outcome: "handed_to_human",
      reason: `the model declined to continue (refusal); a human must process this PO: ${reason.slice(0, 300)}`,
    };
  }
  if (last?.response.stop_reason === "max_tokens" && !claimed) {
    return {
      outcome: "failed",
      reason: `the model's answer was cut off at the output limit (max_tokens) before an OUTCOME line: ${reason.slice(0, 200)}`,
    };
  }
  if (claimed === "saved")
    return { outcome: "failed", reason: `the model claimed the PO was saved but no save succeeded: ${reason}` };
  if (!claimed) return { outcome: "failed", reason: `the model ended without an OUTCOME line: ${reason}` };
  return { outcome: claimed, reason };
}

/** The per-run cost record written by Finalize. */
import { type AwsUsage, type RunCostRecord, runCostRecord } from "../cost-estimate.js";
import type { RunRecord, ToolCallRecord, TurnRecord } from "../ledger/records.js";
import type { AgentDeps } from "./deps.js";

/**
 * The per-run cost record: model tokens and dollars from the counters, plus an AWS estimate.
 * With `measured` (the execution's own history) the AWS part is what the run really used; without
 * it, transitions are counted from the run's shape and Lambda time is the measured model and tool
 * durations plus a fixed overhead per call.
 */
export function costRecordOf(
  run: RunRecord,
  turns: TurnRecord[],
  tools: ToolCallRecord[],
  measured?: AwsUsage,
): RunCostRecord {
  if (measured)
    return runCostRecord({ runId: run.runId, customer: run.customer, counters: run.counters, aws: measured });
  const approvals = turns.flatMap((t) => t.dispositions.filter((d) => d.kind === "approval")).length;
  const overheadMs = 150;
  const invocations = [
    { durationMs: overheadMs, memoryMb: 256 }, // Ingest
    // Orchestrate runs at 512 MB (lib/agent-functions.ts), Extract at 1024 MB, the rest at 256 MB.
    ...turns.map((t) => ({ durationMs: (t.durationMs ?? 0) + overheadMs, memoryMb: 512 })),
    { durationMs: overheadMs, memoryMb: 512 }, // the Orchestrate call that returns "done"
    ...tools.map((c) => ({ durationMs: c.durationMs + overheadMs, memoryMb: c.name === "extract" ? 1024 : 256 })),
    ...Array.from({ length: approvals * 2 }, () => ({ durationMs: overheadMs, memoryMb: 256 })),
    { durationMs: overheadMs, memoryMb: 256 }, // Finalize
  ];
  const stateTransitions = 4 + 3 * (turns.length + 1) + 3 * tools.length + 4 * approvals;
  return runCostRecord({
    runId: run.runId,
    customer: run.customer,
    counters: run.counters,
    aws: { stateTransitions, lambdaInvocations: invocations },
  });
}

/** The execution's usage from its history; undefined (the shape estimate) when it cannot be read. */
export async function measuredUsage(
  deps: AgentDeps,
  run: RunRecord,
  extraTransitions: number,
): Promise<AwsUsage | undefined> {
  if (!deps.executionUsage || !run.executionId.includes(":execution:")) return undefined;
  try {
    return await deps.executionUsage(run.executionId, extraTransitions);
  } catch {
    return undefined; // the record then says source "shape": a cost figure never fails a finished run
  }
}

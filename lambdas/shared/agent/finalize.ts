/** Finalize and failures: the run's outcome, its cost record, and the state machine's catch-all. */

import { runCostRecord, TRANSITIONS_AFTER } from "../cost-estimate.js";
import { sha256 } from "../ledger/ledger.js";
import type { ApprovalRecord, TurnRecord } from "../ledger/records.js";
import { ZERO_COUNTERS } from "../ledger/records.js";
import type { Step } from "../steps.js";
import { approvalsOf, checkpointRun, effectiveCounters } from "./checkpoint.js";
import { costRecordOf, measuredUsage } from "./cost.js";
import { type AgentDeps, type Ending, TERMINAL, telemetryOf } from "./deps.js";
import { settleParent } from "./fanout-settle.js";

export async function finalize(
  deps: AgentDeps,
  input: { runId: string; step: Step },
): Promise<{ outcome: Ending; reason: string }> {
  const { step } = input;
  const outcome = step.type === "done" ? step.outcome : "failed";
  const reason = step.type === "done" || step.type === "budget_exceeded" ? step.reason : `unexpected step ${step.type}`;
  const state = await deps.ledger.loadRunState(input.runId);
  if (!state) throw new Error(`run ${input.runId} not found in the ledger`);
  const { run, turns } = state;
  if (!TERMINAL.has(run.status)) {
    const now = (deps.now ?? (() => new Date()))();
    // The counters of steps stored since the last checkpoint (a crash in between) are counted first.
    await checkpointRun(deps, state);
    const counters = effectiveCounters(state);
    const measured = await measuredUsage(deps, run, TRANSITIONS_AFTER.Finalize);
    const cost = costRecordOf({ ...run, counters }, turns, state.toolCalls, measured);
    await deps.ledger.updateRun(input.runId, {
      status: outcome,
      reason,
      finishedAt: now.toISOString(),
      durationMs: now.getTime() - Date.parse(run.createdAt),
      cost,
    });
    await deps.ledger.audit(input.runId, "system", "run.finished", { outcome, reason, totalUsd: cost.totalUsd });
    const { byId } = await approvalsOf(deps, state);
    telemetryOf(deps).runFinished({
      runId: run.runId,
      customer: deps.customer.name,
      poNumber: run.poNumber,
      outcome,
      reason,
      turns: Math.max(run.turn, ...turns.map((t) => t.turn)),
      durationMs: now.getTime() - Date.parse(run.createdAt),
      waitedMs: waitedMs(turns, byId),
      counters,
      ...(step.type === "budget_exceeded" ? { budgetExceeded: budgetKind(step.reason) } : {}),
    });
  }
  await settleParent(deps, input.runId); // a child of a multi-PO document: the last one settles the parent
  return { outcome, reason };
}

/**
 * The state machine's catch-all: whatever failed, the run ends visibly failed with its reason,
 * and the document stays where it was. Works even when Ingest never opened a run.
 */
export async function recordFailure(
  deps: AgentDeps,
  input: { state?: unknown },
): Promise<{ runId: string; reason: string }> {
  const state = (input.state ?? {}) as {
    run?: { runId?: string };
    detail?: { bucket?: { name?: string }; object?: { key?: string; size?: number } };
    error?: { Error?: string; Cause?: string };
  };
  const reason = describeError(state.error);
  const now = (deps.now ?? (() => new Date()))();
  let runId = state.run?.runId;
  const known = runId ? await deps.ledger.loadRunState(runId) : undefined;
  if (runId && known) {
    const { run } = known;
    // A run that already reached an outcome keeps it (e.g. saved, then a later audit write failed).
    if (!TERMINAL.has(run.status)) {
      await checkpointRun(deps, known);
      const measured = await measuredUsage(deps, run, TRANSITIONS_AFTER.RecordFailure);
      await deps.ledger.updateRun(runId, {
        status: "failed",
        reason,
        ...(measured
          ? {
              cost: runCostRecord({ runId, customer: run.customer, counters: effectiveCounters(known), aws: measured }),
            }
          : {}),
        finishedAt: now.toISOString(),
        durationMs: now.getTime() - Date.parse(run.createdAt),
      });
    }
  } else {
    const bucket = state.detail?.bucket?.name ?? "(unknown bucket)";
    const key = state.detail?.object?.key ?? "(unknown key)";
    runId = `${deps.customer.name}-failed-${sha256(`${bucket}/${key}/${reason}`).slice(0, 16)}`;
    await deps.ledger.openRun({
      runId,
      customer: deps.customer.name,
      document: { bucket, key, sha256: "", size: state.detail?.object?.size ?? 0 },
      executionId: "(ingest failed)",
      status: "failed",
      reason,
      turn: 0,
      counters: { ...ZERO_COUNTERS },
    });
  }
  await deps.ledger.audit(runId, "system", "run.failed", { reason });
  await settleParent(deps, runId);
  const failed = await deps.ledger.getRun(runId);
  if (failed) {
    telemetryOf(deps).runFinished({
      runId,
      customer: deps.customer.name,
      poNumber: failed.poNumber,
      outcome: "failed",
      reason,
      turns: failed.turn,
      durationMs: now.getTime() - Date.parse(failed.createdAt),
      counters: failed.counters,
    });
  }
  return { runId, reason };
}

/** Time the run spent waiting on humans: excluded from the working-time metric. */
function waitedMs(turns: readonly TurnRecord[], approvals: ReadonlyMap<string, ApprovalRecord>): number {
  let total = 0;
  for (const t of turns) {
    for (const d of t.dispositions) {
      if (d.kind !== "approval") continue;
      const a = approvals.get(d.approvalId);
      if (a?.decidedAt) total += Date.parse(a.decidedAt) - Date.parse(a.createdAt);
    }
  }
  return total;
}

function budgetKind(reason: string): "turns" | "tokens" | "cost" {
  return /token/.test(reason) ? "tokens" : /cost/.test(reason) ? "cost" : "turns";
}

function describeError(error: { Error?: string; Cause?: string } | undefined): string {
  if (!error) return "the run failed for an unknown reason";
  let cause = error.Cause ?? "";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string; errorType?: string };
    if (parsed.errorMessage) cause = parsed.errorMessage;
  } catch {
    // Cause is plain text.
  }
  return `${error.Error ?? "Error"}: ${cause}`.trim();
}

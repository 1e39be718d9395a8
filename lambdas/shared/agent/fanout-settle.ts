import type { Ledger } from "../ledger/ledger.js";
import type { RunRecord } from "../ledger/records.js";

/** Outcomes a child run ends with; a parent settles once every child has one. */
const SETTLED = new Set(["saved", "rejected", "failed", "handed_to_human"]);

/** The id of the child run for the PO at `position` (1-based) of a parent run's document. */
export function childRunId(parentRunId: string, position: number): string {
  return `${parentRunId}-p${position}`;
}

/**
 * Called when a run reaches an outcome (Finalize, RecordFailure). For a child run of a multi-PO
 * document: when every sibling has settled too, the parent becomes `split`, with each child's
 * outcome written on it in one conditional update (only from `running`, so it happens once).
 *
 * Race-free without a counter: every child writes its own outcome before it reads its siblings',
 * so of two children settling together, at least the later reader sees both settled.
 */
export async function settleParent(
  deps: { ledger: Ledger; now?: () => Date },
  runId: string,
): Promise<{ settled: boolean; parentRunId?: string }> {
  const run = await deps.ledger.getRun(runId);
  if (!run?.parentRunId || !SETTLED.has(run.status)) return { settled: false };
  const parent = await deps.ledger.getRun(run.parentRunId);
  if (!parent?.children || parent.status !== "running") return { settled: false, parentRunId: run.parentRunId };
  const kids = await Promise.all(parent.children.map((c) => deps.ledger.getRun(c.runId)));
  const done = kids.filter((k): k is RunRecord => k !== undefined && SETTLED.has(k.status));
  if (done.length < parent.children.length) return { settled: false, parentRunId: parent.runId };
  const byId = new Map(done.map((k) => [k.runId, k]));
  const children = parent.children.map((c) => {
    const k = byId.get(c.runId);
    return { ...c, outcome: k?.status, reason: k?.reason };
  });
  const now = (deps.now ?? (() => new Date()))();
  const reason = splitReason(children);
  const settled = await deps.ledger.updateRun(
    parent.runId,
    {
      status: "split",
      reason,
      children,
      finishedAt: now.toISOString(),
      durationMs: now.getTime() - Date.parse(parent.createdAt),
    },
    { onlyIfStatusIn: ["running"] },
  );
  if (settled) {
    await deps.ledger.audit(parent.runId, "system", "run.split.settled", {
      reason,
      children: children.map((c) => ({ runId: c.runId, outcome: c.outcome })),
    });
  }
  return { settled, parentRunId: parent.runId };
}

/** `3 purchase orders: 2 saved, 1 rejected`. */
export function splitReason(children: readonly { outcome?: string }[]): string {
  const counts = new Map<string, number>();
  for (const c of children) counts.set(c.outcome ?? "running", (counts.get(c.outcome ?? "running") ?? 0) + 1);
  const parts = ["saved", "awaiting_approval", "rejected", "failed", "handed_to_human", "running"]
    .filter((o) => counts.has(o))
    .map((o) => `${counts.get(o)} ${o.replaceAll("_", " ")}`);
  return `${children.length} purchase orders: ${parts.join(", ")}`;
}

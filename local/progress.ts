import type { RunRecord } from "../lambdas/shared/ledger/records.js";
import type { RunEvent } from "./stack.js";

export interface ProgressIo {
  out: (line: string) => void;
}

type Settled = "saved" | "rejected" | "failed" | "awaiting_approval" | "skipped";

/**
 * Progress of a batch of documents: a `[done/total]` line each time a run settles (finished,
 * waiting for a human, or skipped as a duplicate), then a summary of outcomes, tokens and cost.
 * Plain lines, no cursor tricks: the same output reads well in a terminal, a CI log and a test.
 */
export class BatchProgress {
  private readonly settled = new Map<string, Settled>();
  private readonly started: number;
  private skipped = 0;

  constructor(
    private readonly io: ProgressIo,
    private readonly total: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** Feed every RunEvent of the stack (compose with progressPrinter in cli.ts). */
  onEvent(e: RunEvent): void {
    switch (e.type) {
      case "finished":
        this.settle(e.runId, (["saved", "rejected"].includes(e.status) ? e.status : "failed") as Settled);
        break;
      case "awaiting_approval":
        this.settle(e.runId, "awaiting_approval");
        break;
      case "skipped":
        this.skipped++;
        this.io.out(this.line());
        break;
    }
  }

  private settle(runId: string, outcome: Settled): void {
    const before = this.settled.get(runId);
    this.settled.set(runId, outcome);
    // An approved run finishing later changes its outcome but is not one more document done.
    if (before === outcome) return;
    this.io.out(this.line());
  }

  /** e.g. `[3/8] 2 saved · 1 waiting for approval · 0 rejected · 0 failed · 4.2 s` */
  line(): string {
    const n = (o: Settled) => [...this.settled.values()].filter((v) => v === o).length;
    const done = Math.min(this.total, this.settled.size + this.skipped);
    const parts = [
      `${n("saved")} saved`,
      `${n("awaiting_approval")} waiting for approval`,
      `${n("rejected")} rejected`,
      `${n("failed")} failed`,
      ...(this.skipped ? [`${this.skipped} skipped`] : []),
      seconds(this.now() - this.started),
    ];
    return `[${done}/${this.total}] ${parts.join(" · ")}`;
  }

  /** The closing summary over the runs of the batch, from the ledger (the source of truth). */
  summary(runs: readonly RunRecord[]): string[] {
    return summarizeBatch(runs, this.now() - this.started);
  }
}

/** Outcome counts, tokens, dollars and durations of a set of runs, as printable lines. */
export function summarizeBatch(runs: readonly RunRecord[], wallMs: number): string[] {
  const by = new Map<string, number>();
  let input = 0;
  let output = 0;
  let cacheRead = 0;
  let cacheWrite = 0;
  let usd = 0;
  let modelCalls = 0;
  let toolCalls = 0;
  const durations: number[] = [];
  for (const r of runs) {
    by.set(r.status, (by.get(r.status) ?? 0) + 1);
    input += r.counters.inputTokens;
    output += r.counters.outputTokens;
    cacheRead += r.counters.cacheReadTokens;
    cacheWrite += r.counters.cacheWriteTokens;
    usd += r.counters.costUsd;
    modelCalls += r.counters.modelCalls;
    toolCalls += r.counters.toolCalls;
    if (r.durationMs !== undefined) durations.push(r.durationMs);
  }
  durations.sort((a, b) => a - b);
  const pct = (p: number) => durations[Math.min(durations.length - 1, Math.ceil((p / 100) * durations.length) - 1)];
  const outcomes = ["saved", "awaiting_approval", "rejected", "failed", "running"]
    .filter((s) => by.has(s))
    .map((s) => `${by.get(s)} ${s.replace("_", " ")}`);
  const lines = [
    `summary: ${runs.length} run(s) — ${outcomes.join(", ") || "none"} — ${seconds(wallMs)} wall clock`,
    `  ${modelCalls} model calls · ${toolCalls} tool calls · tokens ${input} in / ${output} out / ${cacheRead} cache read / ${cacheWrite} cache write · $${usd.toFixed(4)}`,
  ];
  if (durations.length > 0) {
    lines.push(
      `  run duration p50 ${seconds(pct(50) ?? 0)} · p95 ${seconds(pct(95) ?? 0)} · max ${seconds(durations.at(-1) ?? 0)}`,
    );
  }
  return lines;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

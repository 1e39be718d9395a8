import { describe, expect, it } from "vitest";
import { BatchProgress, summarizeBatch } from "../../local/progress.js";
import { runRecord } from "./trace-fixtures.js";

describe("batch progress", () => {
  it("prints [done/total] with outcomes as runs settle, counting an approved run once", () => {
    // Prepare
    const out: string[] = [];
    let now = 0;
    const p = new BatchProgress({ out: (l) => out.push(l) }, 3, () => now);
    // Act
    p.onEvent({ type: "started", runId: "a", customer: "acme", document: "a.json" });
    now = 1500;
    p.onEvent({ type: "finished", runId: "a", status: "saved" });
    p.onEvent({ type: "awaiting_approval", runId: "b", approvalId: "x", approveUrl: "", rejectUrl: "", approver: "" });
    p.onEvent({ type: "skipped", customer: "acme", document: "c.json", reason: "same bytes" });
    p.onEvent({ type: "finished", runId: "b", status: "saved" });
    // Assess
    expect(out).toEqual([
      "[1/3] 1 saved · 0 waiting for approval · 0 rejected · 0 failed · 1.5 s",
      "[2/3] 1 saved · 1 waiting for approval · 0 rejected · 0 failed · 1.5 s",
      "[3/3] 1 saved · 1 waiting for approval · 0 rejected · 0 failed · 1 skipped · 1.5 s",
      "[3/3] 2 saved · 0 waiting for approval · 0 rejected · 0 failed · 1 skipped · 1.5 s",
    ]);
  });

  it("summarizes outcomes, tokens, dollars and duration percentiles", () => {
    const runs = [
      runRecord({ runId: "1", durationMs: 1000 }),
      runRecord({ runId: "2", durationMs: 3000, status: "failed" }),
      runRecord({ runId: "3", durationMs: 2000, status: "awaiting_approval" }),
    ];
    const lines = summarizeBatch(runs, 4200);
    expect(lines[0]).toBe("summary: 3 run(s) — 1 saved, 1 awaiting approval, 1 failed — 4.2 s wall clock");
    expect(lines[1]).toBe(
      "  6 model calls · 3 tool calls · tokens 4500 in / 900 out / 0 cache read / 0 cache write · $0.0369",
    );
    expect(lines[2]).toBe("  run duration p50 2.0 s · p95 3.0 s · max 3.0 s");
  });
});

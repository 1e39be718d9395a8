import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventLog } from "../../local/engine.js";
import { LAMBDA_TASK_STATES, mergeTrace, renderTimeline, TraceStore } from "../../local/trace.js";
import { resolveRunId, traceCommand } from "../../local/trace-command.js";
import { ARN, approvalRecord, RUN_ID, runRecord, toolCallRecord, turnRecord } from "./trace-fixtures.js";

const state = (type: string, name: string, timestamp: number, extra: Record<string, unknown> = {}) =>
  ({ type, timestamp, state: { name, type: "Task", input: {} }, ...extra }) as unknown as EventLog;

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "po-agent-trace-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe("TraceStore", () => {
  it("turns engine events into a per-run JSON-lines trace with state durations and retries", () => {
    // Prepare
    const store = new TraceStore(dataDir);
    const t0 = Date.parse("2026-03-05T10:00:00.000Z");
    // Act
    store.onEngineEvent(ARN, state("StateEntered", "Orchestrate", t0));
    store.onEngineEvent(ARN, state("StateRetried", "Orchestrate", t0 + 10, { retry: { attempt: 1 } }));
    store.onEngineEvent(ARN, state("StateExited", "Orchestrate", t0 + 250));
    store.onEngineEvent(ARN, { type: "ExecutionStarted", timestamp: t0, input: {} } as unknown as EventLog);
    // Assess
    const file = readFileSync(join(dataDir, "traces", `${RUN_ID}.jsonl`), "utf8")
      .trim()
      .split("\n");
    expect(file).toHaveLength(3);
    expect(store.read(RUN_ID)).toEqual([
      { at: "2026-03-05T10:00:00.000Z", type: "state_entered", state: "Orchestrate" },
      { at: "2026-03-05T10:00:00.010Z", type: "state_retried", state: "Orchestrate", attempt: 1 },
      { at: "2026-03-05T10:00:00.250Z", type: "state_exited", state: "Orchestrate", durationMs: 250 },
    ]);
    expect(store.runIds()).toEqual([RUN_ID]);
  });

  it("keeps reading a trace whose last line was cut short by a crash", () => {
    const store = new TraceStore(dataDir);
    store.append(RUN_ID, { at: "2026-03-05T10:00:00.000Z", type: "state_entered", state: "Ingest" });
    appendFileSync(join(store.dir, `${RUN_ID}.jsonl`), '{"at":"2026-03-05T1');
    expect(store.read(RUN_ID)).toHaveLength(1);
  });

  it("records model and tool calls reported through Telemetry", () => {
    // Prepare
    const store = new TraceStore(dataDir);
    const t = store.telemetry(() => new Date("2026-03-05T10:00:01.000Z"));
    // Act
    t.modelCall({
      runId: RUN_ID,
      customer: "acme",
      turn: 1,
      modelId: "claude-sonnet-5",
      usage: { input_tokens: 10, output_tokens: 2 },
      stopReason: "tool_use",
      durationMs: 800,
      costUsd: 0.001,
    });
    t.toolCall({ runId: RUN_ID, customer: "acme", toolUseId: "tu-1", tool: "extract", isError: false, durationMs: 5 });
    // Assess
    expect(store.read(RUN_ID).map((e) => e.type)).toEqual(["model_call", "tool_call"]);
    expect(store.read(RUN_ID)[0]).toMatchObject({ turn: 1, durationMs: 800, usage: { input_tokens: 10 } });
  });
});

describe("mergeTrace and renderTimeline", () => {
  it("completes the trace from the ledger without duplicating what the file already has", () => {
    // Prepare: the file knows turn 1 (with its duration); the ledger knows turns 1 and 2, a tool call, an approval
    const stored = [
      { at: "2026-03-05T10:00:00.000Z", type: "state_entered" as const, state: "Orchestrate" },
      {
        at: "2026-03-05T10:00:01.000Z",
        type: "model_call" as const,
        turn: 1,
        modelId: "claude-sonnet-5",
        stopReason: "tool_use",
        usage: { input_tokens: 1000, output_tokens: 200 },
        durationMs: 900,
        costUsd: 0.01,
      },
    ];
    // Act
    const events = mergeTrace(stored, {
      run: runRecord(),
      turns: [turnRecord(1), turnRecord(2)],
      toolCalls: [toolCallRecord({ createdAt: "2026-03-05T10:00:01.800Z" })],
      approvals: [approvalRecord()],
    });
    // Assess
    expect(events.filter((e) => e.type === "model_call").map((e) => (e.type === "model_call" ? e.turn : 0))).toEqual([
      1, 2,
    ]);
    expect(events.map((e) => e.type)).toEqual([
      "run_started",
      "state_entered",
      "model_call",
      "escalation",
      "tool_call",
      "model_call",
      "approval_decided",
      "run_finished",
    ]);
    expect(events.find((e) => e.type === "approval_decided")).toMatchObject({ waitedMs: 2000, by: "priya" });
  });

  it("prints a timeline with offsets, durations, tokens and a cost footer", () => {
    // Prepare
    const events = mergeTrace(
      [
        { at: "2026-03-05T10:00:00.000Z", type: "state_entered", state: "Orchestrate" },
        { at: "2026-03-05T10:00:01.500Z", type: "state_exited", state: "Orchestrate", durationMs: 1500 },
      ],
      { run: runRecord(), turns: [turnRecord(1)], toolCalls: [toolCallRecord()] },
    );
    // Act
    const text = renderTimeline(events, runRecord());
    // Assess
    expect(text).toContain(`run ${RUN_ID} · customer acme · PO 48291 · po-48291.json`);
    expect(text).toMatch(/\+1\.500s\s+✓ Orchestrate \(1500 ms\)/);
    expect(text).toContain(
      "model claude-sonnet-5 turn 1: tool_use · 1000 in / 200 out / 900 cache read / 0 cache write · $0.0100",
    );
    expect(text).toContain("tool save · 42 ms");
    expect(text).toContain("total 5000 ms · 1 model calls · 1 tool calls (0 errors) · 0 retries");
    expect(text).toMatch(/cost model \$0\.0123 \+ AWS estimate \$0\.0000\d+ \(1 transitions, 0\.375 GB-s; prices of/);
  });

  it("reads the Lambda Task states from the definition (the AWS estimate counts them)", () => {
    expect([...LAMBDA_TASK_STATES]).toEqual(
      expect.arrayContaining(["Ingest", "Orchestrate", "SaveTool", "WaitForApproval", "Finalize", "RecordFailure"]),
    );
    expect(LAMBDA_TASK_STATES.has("Route")).toBe(false);
  });
});

describe("po-agent trace", () => {
  it("prints the timeline of a run found by a unique prefix, completed from the ledger", async () => {
    // Prepare
    const store = new TraceStore(dataDir);
    store.append(RUN_ID, { at: "2026-03-05T10:00:00.000Z", type: "state_entered", state: "Ingest" });
    const out: string[] = [];
    // Act
    const code = await traceCommand(
      ["acme-0123"],
      { out: (l) => out.push(l), err: () => {} },
      {
        dataDir,
        loadRun: async (id) => (id === RUN_ID ? { run: runRecord(), turns: [turnRecord(1)] } : undefined),
      },
    );
    // Assess
    expect(code).toBe(0);
    expect(out.join("\n")).toContain("▶ Ingest");
    expect(out.join("\n")).toContain("model claude-sonnet-5 turn 1");
  });

  it("refuses an ambiguous prefix and an unknown run with a clear message", async () => {
    expect(() => resolveRunId("acme-", ["acme-1", "acme-2"])).toThrow(/matches 2 runs/);
    await expect(traceCommand(["nope"], { out: () => {}, err: () => {} }, { dataDir })).rejects.toThrow(
      /no trace and no ledger record for run nope/,
    );
    await expect(traceCommand([], { out: () => {}, err: () => {} }, { dataDir })).rejects.toThrow(/needs a run id/);
  });
});

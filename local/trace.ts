import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AwsCostEstimate, estimateAwsCost } from "../lambdas/shared/cost-estimate.js";
import type { ApprovalRecord, RunRecord, ToolCallRecord, TurnRecord } from "../lambdas/shared/ledger/records.js";
import type { Usage } from "../lambdas/shared/model/types.js";
import type { Telemetry } from "../lambdas/shared/telemetry.js";
import type { EventLog } from "./engine.js";

/**
 * One line of a run's local trace. The engine reports states (entered, exited, failed, retried,
 * caught); the agent core reports model and tool calls through Telemetry; the ledger fills in
 * what a trace file lacks (runs from before tracing, or a process that crashed mid-write).
 */
export type TraceEvent = { at: string } & (
  | { type: "run_started"; customer: string; document?: string }
  | { type: "state_entered"; state: string; index?: number }
  | { type: "state_exited"; state: string; index?: number; durationMs?: number }
  | { type: "state_failed"; state: string; error: string; cause?: string }
  | { type: "state_retried"; state: string; attempt: number }
  | { type: "state_caught"; state: string }
  | {
      type: "model_call";
      turn: number;
      modelId: string;
      stopReason: string;
      usage: Usage;
      durationMs?: number;
      costUsd: number;
    }
  | { type: "tool_call"; toolUseId: string; tool: string; isError: boolean; durationMs: number; replayed?: boolean }
  | { type: "escalation"; approvalId: string; tool: string; rule: string }
  | { type: "approval_decided"; approvalId: string; status: string; by?: string; waitedMs?: number }
  | { type: "retry"; what: string; reason: string }
  | { type: "run_finished"; outcome: string; reason: string; durationMs?: number }
);

/** Keeps file names to one safe path segment whatever a run id holds. */
function fileNameOf(runId: string): string {
  return `${runId.replace(/[^A-Za-z0-9_.-]/g, "_")}.jsonl`;
}

/**
 * Per-run traces as JSON lines under `<dataDir>/traces/<runId>.jsonl`. Appends are synchronous:
 * events stay in the order they happened and survive a crash right after.
 */
export class TraceStore {
  readonly dir: string;
  /** Entry times of open states, by run and state (and Map iteration), to compute durations. */
  private readonly open = new Map<string, number>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, "traces");
    mkdirSync(this.dir, { recursive: true });
  }

  append(runId: string, event: TraceEvent): void {
    appendFileSync(join(this.dir, fileNameOf(runId)), `${JSON.stringify(event)}\n`);
  }

  /** The run's events in the order written; unreadable lines (a torn last write) are skipped. */
  read(runId: string): TraceEvent[] {
    const path = join(this.dir, fileNameOf(runId));
    if (!existsSync(path)) return [];
    const events: TraceEvent[] = [];
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        events.push(JSON.parse(line) as TraceEvent);
      } catch {
        // A line cut short by a crash: the rest of the trace is still useful.
      }
    }
    return events;
  }

  /**
   * Trace files with unreadable lines other than a torn last one (a crash cuts only the last):
   * `[file, line numbers]`. Reading skips them; start names them once. Nothing is rewritten.
   */
  damaged(): { file: string; lines: number[] }[] {
    const out: { file: string; lines: number[] }[] = [];
    for (const f of readdirSync(this.dir).filter((x) => x.endsWith(".jsonl"))) {
      const path = join(this.dir, f);
      const lines = readFileSync(path, "utf8").split("\n");
      while (lines.length > 0 && !lines.at(-1)?.trim()) lines.pop();
      const bad: number[] = [];
      lines.forEach((line, i) => {
        if (!line.trim() || i === lines.length - 1) return;
        try {
          JSON.parse(line);
        } catch {
          bad.push(i + 1);
        }
      });
      if (bad.length > 0) out.push({ file: path, lines: bad });
    }
    return out;
  }

  /** Run ids with a trace, for prefix lookup. */
  runIds(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".jsonl"))
      .map((f) => f.slice(0, -".jsonl".length));
  }

  /** Feed from `LocalEngine`'s onEvent: the run id is the execution name (last ARN segment). */
  onEngineEvent(executionArn: string, event: EventLog): void {
    const runId = executionArn.split(":").pop() ?? executionArn;
    const at = new Date(event.timestamp).toISOString();
    if (!("state" in event)) return;
    const state = event.state.name;
    const key = `${runId}#${state}#${event.index ?? ""}`;
    switch (event.type) {
      case "StateEntered":
        this.open.set(key, event.timestamp);
        this.append(runId, {
          at,
          type: "state_entered",
          state,
          ...(event.index !== undefined ? { index: event.index } : {}),
        });
        break;
      case "StateExited": {
        const entered = this.open.get(key);
        this.open.delete(key);
        this.append(runId, {
          at,
          type: "state_exited",
          state,
          ...(event.index !== undefined ? { index: event.index } : {}),
          ...(entered !== undefined ? { durationMs: event.timestamp - entered } : {}),
        });
        break;
      }
      case "StateFailed":
        this.open.delete(key);
        this.append(runId, {
          at,
          type: "state_failed",
          state,
          error: event.Error,
          ...(event.Cause !== undefined ? { cause: String(event.Cause).slice(0, 500) } : {}),
        });
        break;
      case "StateRetried":
        this.append(runId, { at, type: "state_retried", state, attempt: event.retry.attempt });
        break;
      case "StateCaught":
        this.append(runId, { at, type: "state_caught", state });
        break;
    }
  }

  /** The agent core's reports, written into the same per-run files (AgentDeps.telemetry locally). */
  telemetry(now: () => Date = () => new Date()): Telemetry {
    const at = () => now().toISOString();
    return {
      runContext: () => {},
      runStarted: (r) => this.append(r.runId, { at: at(), type: "run_started", customer: r.customer }),
      modelCall: (e) =>
        this.append(e.runId, {
          at: at(),
          type: "model_call",
          turn: e.turn,
          modelId: e.modelId,
          stopReason: e.stopReason,
          usage: e.usage,
          durationMs: e.durationMs,
          costUsd: e.costUsd,
        }),
      toolCall: (e) =>
        this.append(e.runId, {
          at: at(),
          type: "tool_call",
          toolUseId: e.toolUseId,
          tool: e.tool,
          isError: e.isError,
          durationMs: e.durationMs,
          ...(e.replayed ? { replayed: true } : {}),
        }),
      escalation: (e) =>
        this.append(e.runId, { at: at(), type: "escalation", approvalId: e.approvalId, tool: e.tool, rule: e.rule }),
      retry: (e) => this.append(e.runId, { at: at(), type: "retry", what: e.what, reason: e.reason }),
      runFinished: (e) =>
        this.append(e.runId, {
          at: at(),
          type: "run_finished",
          outcome: e.outcome,
          reason: e.reason,
          durationMs: e.durationMs,
        }),
      approvalBacklog: () => {},
    };
  }
}

/** What the ledger knows about a run; every field but `run` may be empty. */
export interface RunBundle {
  run: RunRecord;
  turns?: TurnRecord[];
  toolCalls?: ToolCallRecord[];
  approvals?: ApprovalRecord[];
}

/**
 * The run's trace: the stored events when there are any, completed from the ledger with the model
 * turns, tool calls and approval decisions the file lacks (matched by turn and toolUseId).
 */
export function mergeTrace(stored: readonly TraceEvent[], bundle?: RunBundle): TraceEvent[] {
  const events = [...stored];
  if (!bundle) return events;
  const { run } = bundle;
  const has = (pred: (e: TraceEvent) => boolean) => events.some(pred);
  if (!has((e) => e.type === "run_started")) {
    events.push({ at: run.createdAt, type: "run_started", customer: run.customer, document: run.document.key });
  }
  for (const t of bundle.turns ?? []) {
    if (has((e) => e.type === "model_call" && e.turn === t.turn)) continue;
    events.push({
      at: t.createdAt,
      type: "model_call",
      turn: t.turn,
      modelId: t.response.model,
      stopReason: t.response.stop_reason,
      usage: t.response.usage,
      costUsd: t.costUsd,
    });
  }
  for (const c of bundle.toolCalls ?? []) {
    if (has((e) => e.type === "tool_call" && e.toolUseId === c.toolUseId)) continue;
    events.push({
      at: c.createdAt,
      type: "tool_call",
      toolUseId: c.toolUseId,
      tool: c.name,
      isError: c.isError,
      durationMs: c.durationMs,
    });
  }
  for (const a of bundle.approvals ?? []) {
    if (!has((e) => e.type === "escalation" && e.approvalId === a.approvalId)) {
      events.push({ at: a.createdAt, type: "escalation", approvalId: a.approvalId, tool: a.call.name, rule: a.rule });
    }
    if (a.decidedAt && !has((e) => e.type === "approval_decided" && e.approvalId === a.approvalId)) {
      events.push({
        at: a.decidedAt,
        type: "approval_decided",
        approvalId: a.approvalId,
        status: a.status,
        ...(a.decidedBy ? { by: a.decidedBy } : {}),
        waitedMs: Date.parse(a.decidedAt) - Date.parse(a.createdAt),
      });
    }
  }
  if (run.finishedAt && !has((e) => e.type === "run_finished")) {
    events.push({
      at: run.finishedAt,
      type: "run_finished",
      outcome: run.status,
      reason: run.reason ?? "",
      ...(run.durationMs !== undefined ? { durationMs: run.durationMs } : {}),
    });
  }
  // Stable sort by time: same-millisecond events keep their written order, the run's start and end framing them.
  const rank = (e: TraceEvent) => (e.type === "run_started" ? -1 : e.type === "run_finished" ? 1 : 0);
  return events
    .map((e, i) => ({ e, i, t: Date.parse(e.at) }))
    .sort((a, b) => a.t - b.t || rank(a.e) - rank(b.e) || a.i - b.i)
    .map((x) => x.e);
}

/** Lambda Tasks of the definition that wait on a task token: their state time is a human's, not Lambda's. */
const WAITING_STATES = new Set(["WaitForApproval"]);
/** The Lambda Task states of statemachines/agent.asl.json, read from the one definition. */
export const LAMBDA_TASK_STATES: ReadonlySet<string> = lambdaTaskStates(
  readFileSync(fileURLToPath(new URL("../statemachines/agent.asl.json", import.meta.url)), "utf8"),
);

export function lambdaTaskStates(aslText: string): Set<string> {
  const names = new Set<string>();
  const walk = (states: unknown) => {
    if (!states || typeof states !== "object") return;
    for (const [name, raw] of Object.entries(states)) {
      const s = raw as {
        Type?: string;
        Resource?: string;
        ItemProcessor?: { States?: unknown };
        Iterator?: { States?: unknown };
        Branches?: { States?: unknown }[];
      };
      if (s.Type === "Task" && String(s.Resource).includes(":lambda:")) names.add(name);
      walk(s.ItemProcessor?.States);
      walk(s.Iterator?.States);
      for (const b of s.Branches ?? []) walk(b.States);
    }
  };
  walk((JSON.parse(aslText) as { States?: unknown }).States);
  return names;
}

/**
 * What the run would have cost on AWS: one transition per state entered (retries included), one
 * Lambda invocation per Task state at the memory the stack deploys (256 MiB), timed by the trace.
 */
export function awsCostFromTrace(events: readonly TraceEvent[], memoryMb = 256): AwsCostEstimate {
  let transitions = 0;
  const invocations: { durationMs: number; memoryMb: number }[] = [];
  for (const e of events) {
    if (e.type === "state_entered") transitions++;
    if (e.type === "state_retried") transitions++;
    if (e.type !== "state_exited") continue;
    if (!LAMBDA_TASK_STATES.has(e.state)) continue;
    // The request-approval Lambda returns at once; the state's time is the human's wait (not billed).
    invocations.push({ durationMs: WAITING_STATES.has(e.state) ? 0 : (e.durationMs ?? 0), memoryMb });
  }
  return estimateAwsCost({ stateTransitions: transitions, lambdaInvocations: invocations });
}

function ms(n: number | undefined): string {
  if (n === undefined) return "";
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

function usd(n: number): string {
  return `$${n.toFixed(4)}`;
}

/** One line of text per event; shared by the CLI timeline and the console. */
export function describeEvent(e: TraceEvent): string {
  switch (e.type) {
    case "run_started":
      return `run started for ${e.customer}${e.document ? ` (${e.document})` : ""}`;
    case "state_entered":
      return `▶ ${e.state}${e.index !== undefined ? ` [${e.index}]` : ""}`;
    case "state_exited":
      return `✓ ${e.state}${e.index !== undefined ? ` [${e.index}]` : ""}${e.durationMs !== undefined ? ` (${ms(e.durationMs)})` : ""}`;
    case "state_failed":
      return `✗ ${e.state}: ${e.error}${e.cause ? ` — ${e.cause.slice(0, 160)}` : ""}`;
    case "state_retried":
      return `↻ ${e.state} retry #${e.attempt}`;
    case "state_caught":
      return `⤷ ${e.state} error caught`;
    case "model_call": {
      const u = e.usage;
      const cache = (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
      return `model ${e.modelId} turn ${e.turn}: ${e.stopReason} · ${u.input_tokens} in / ${u.output_tokens} out${cache ? ` / ${u.cache_read_input_tokens ?? 0} cache read / ${u.cache_creation_input_tokens ?? 0} cache write` : ""} · ${usd(e.costUsd)}${e.durationMs !== undefined ? ` · ${ms(e.durationMs)}` : ""}`;
    }
    case "tool_call":
      return `tool ${e.tool}${e.isError ? " ERROR" : ""}${e.replayed ? " (replayed from ledger)" : ""} · ${ms(e.durationMs)}`;
    case "escalation":
      return `escalated ${e.tool} for approval ${e.approvalId} (rule ${e.rule})`;
    case "approval_decided":
      return `approval ${e.approvalId} ${e.status}${e.by ? ` by ${e.by}` : ""}${e.waitedMs !== undefined ? ` after ${ms(e.waitedMs)}` : ""}`;
    case "retry":
      return `retry ${e.what}: ${e.reason}`;
    case "run_finished":
      return `run ${e.outcome.toUpperCase()}: ${e.reason}${e.durationMs !== undefined ? ` (${ms(e.durationMs)})` : ""}`;
  }
}

/** Totals for a trace: what the timeline footer and the console's cost panel show. */
export function traceTotals(events: readonly TraceEvent[], run?: RunRecord) {
  let modelCalls = 0;
  let toolCalls = 0;
  let toolErrors = 0;
  let retries = 0;
  const tokens = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  let modelUsd = 0;
  for (const e of events) {
    if (e.type === "model_call") {
      modelCalls++;
      tokens.input += e.usage.input_tokens;
      tokens.output += e.usage.output_tokens;
      tokens.cacheRead += e.usage.cache_read_input_tokens ?? 0;
      tokens.cacheWrite += e.usage.cache_creation_input_tokens ?? 0;
      modelUsd += e.costUsd;
    } else if (e.type === "tool_call" && !e.replayed) {
      toolCalls++;
      if (e.isError) toolErrors++;
    } else if (e.type === "retry" || e.type === "state_retried") retries++;
  }
  const first = events[0] ? Date.parse(events[0].at) : undefined;
  const last = events.at(-1) ? Date.parse(events.at(-1)?.at ?? "") : undefined;
  const aws = awsCostFromTrace(events);
  return {
    modelCalls,
    toolCalls,
    toolErrors,
    retries,
    tokens,
    modelUsd,
    aws,
    durationMs: run?.durationMs ?? (first !== undefined && last !== undefined ? last - first : 0),
  };
}

/**
 * The trace as a text timeline: offset from the start, indentation for what happens inside a
 * state, durations and tokens; a header with the run and a footer with totals and cost.
 */
export function renderTimeline(events: readonly TraceEvent[], run?: RunRecord): string {
  const lines: string[] = [];
  if (run) {
    lines.push(
      `run ${run.runId} · customer ${run.customer}${run.poNumber ? ` · PO ${run.poNumber}` : ""} · ${run.document.key.split("/").pop() ?? ""}`,
    );
    lines.push(`status ${run.status}${run.reason ? ` — ${run.reason}` : ""}`);
    lines.push("");
  }
  if (events.length === 0) {
    lines.push("(no trace events recorded for this run)");
    return lines.join("\n");
  }
  const start = Date.parse(events[0]?.at ?? "");
  let depth = 0;
  for (const e of events) {
    if (e.type === "state_exited" || e.type === "state_failed") depth = Math.max(0, depth - 1);
    const offset = `+${((Date.parse(e.at) - start) / 1000).toFixed(3)}s`.padStart(10);
    lines.push(`${offset}  ${"  ".repeat(depth)}${describeEvent(e)}`);
    if (e.type === "state_entered") depth++;
  }
  const t = traceTotals(events, run);
  lines.push("");
  lines.push(
    `total ${ms(t.durationMs)} · ${t.modelCalls} model calls · ${t.toolCalls} tool calls (${t.toolErrors} errors) · ${t.retries} retries`,
  );
  lines.push(
    `tokens ${t.tokens.input} in / ${t.tokens.output} out / ${t.tokens.cacheRead} cache read / ${t.tokens.cacheWrite} cache write`,
  );
  lines.push(
    `cost model ${usd(run?.counters.costUsd ?? t.modelUsd)} + AWS estimate $${t.aws.totalUsd.toFixed(6)} (${t.aws.stateTransitions} transitions, ${t.aws.lambdaGbSeconds.toFixed(3)} GB-s; prices of ${t.aws.priceDate})`,
  );
  return lines.join("\n");
}

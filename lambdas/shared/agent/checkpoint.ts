/**
 * A step's checkpoint. Each step (a model turn, a tool call) stores its outcome as one record that
 * carries its counter delta and its audit lines (one conditional put); the run record then takes
 * the deltas of every step stored but not yet counted in one conditional update (`checkpointRun`),
 * so a crash between the two loses nothing and a retry counts nothing twice.
 */
import type { AuditLine, RunState } from "../ledger/ledger.js";
import type {
  ApprovalRecord,
  CounterDelta,
  Counters,
  Disposition,
  ToolCallRecord,
  TurnRecord,
} from "../ledger/records.js";
import type { ModelResponse } from "../model/types.js";
import type { AgentDeps } from "./deps.js";

/** Counters and audit lines an invocation gathers for the step it stores (written with the step's record). */
export interface StepSink {
  delta: CounterDelta;
  audit: AuditLine[];
}

export const newSink = (): StepSink => ({ delta: {}, audit: [] });

export function addDelta(sink: StepSink, delta: CounterDelta): void {
  for (const [k, v] of Object.entries(delta) as [keyof Counters, number | undefined][]) {
    if (v) sink.delta[k] = (sink.delta[k] ?? 0) + v;
  }
}

/** What one paid model answer adds to the counters: one call, its tokens by kind and its dollars. */
export function modelCallDelta(response: ModelResponse, costUsd: number): CounterDelta {
  return {
    modelCalls: 1,
    inputTokens: response.usage.input_tokens,
    outputTokens: response.usage.output_tokens,
    cacheReadTokens: response.usage.cache_read_input_tokens ?? 0,
    cacheWriteTokens: response.usage.cache_creation_input_tokens ?? 0,
    costUsd,
  };
}

/** The ledger key of a step record: what `RunRecord.folded` lists once its delta is counted. */
const turnKey = (t: Pick<TurnRecord, "turn">) => `TURN#${String(t.turn).padStart(4, "0")}`;

const toolKey = (c: Pick<ToolCallRecord, "toolUseId" | "argsHash">) => `TOOL#${c.toolUseId}#${c.argsHash}`;

/** Step records whose counters the run record does not include yet. */
function unfoldedSteps(state: RunState): { key: string; delta?: CounterDelta }[] {
  const folded = new Set(state.run.folded ?? []);
  return [
    ...state.turns.map((t) => ({ key: turnKey(t), delta: t.delta })),
    ...state.toolCalls.map((c) => ({ key: toolKey(c), delta: c.delta })),
  ].filter((s) => !folded.has(s.key));
}

/** The run's counters including the steps stored but not folded yet (a crash between the two writes). */
export function effectiveCounters(state: RunState): Counters {
  const out = { ...state.run.counters };
  for (const s of unfoldedSteps(state)) {
    for (const [k, v] of Object.entries(s.delta ?? {}) as [keyof Counters, number | undefined][]) {
      if (v) out[k] += v;
    }
  }
  return out;
}

/** The run's approvals that its turns name: decided ones from the run record, the rest in one batch read. */
export async function approvalsOf(
  deps: Pick<AgentDeps, "ledger">,
  state: RunState,
  turns: readonly TurnRecord[] = state.turns,
  want: (d: Extract<Disposition, { kind: "approval" }>) => boolean = () => true,
): Promise<{ byId: Map<string, ApprovalRecord>; newlyDecided: ApprovalRecord[] }> {
  const byId = new Map((state.run.decided ?? []).map((a) => [a.approvalId, a]));
  const missing = turns
    .flatMap((t) => t.dispositions)
    .filter((d): d is Extract<Disposition, { kind: "approval" }> => d.kind === "approval" && want(d))
    .map((d) => d.approvalId)
    .filter((id) => !byId.has(id));
  const newlyDecided: ApprovalRecord[] = [];
  if (missing.length > 0) {
    for (const a of await deps.ledger.getApprovals(missing)) {
      byId.set(a.approvalId, a);
      if (a.status !== "pending") newlyDecided.push(a);
    }
  }
  return { byId, newlyDecided };
}

/**
 * A step's checkpoint on the run record: the counters of every step stored but not counted yet,
 * the highest turn, the PO number and the approvals decided since. One conditional update, none
 * when there is nothing new.
 */
export async function checkpointRun(
  deps: Pick<AgentDeps, "ledger">,
  state: RunState,
  extra: { poNumber?: string; decided?: readonly ApprovalRecord[] } = {},
): Promise<void> {
  const steps = unfoldedSteps(state);
  const top = Math.max(0, ...state.turns.map((t) => t.turn));
  await deps.ledger.foldRun(state.run.runId, {
    steps,
    ...(top > state.run.turn ? { turn: top } : {}),
    ...(extra.poNumber && !state.run.poNumber ? { poNumber: extra.poNumber } : {}),
    ...(extra.decided?.length ? { decided: extra.decided } : {}),
  });
}

/** Writes a sink's counters and audit lines directly (a step that ends without a record to carry them). */
export async function flushSink(deps: Pick<AgentDeps, "ledger">, runId: string, sink: StepSink): Promise<void> {
  try {
    await deps.ledger.addCounters(runId, sink.delta);
    for (const line of sink.audit) await deps.ledger.audit(runId, line.actor, line.action, line.detail);
  } catch {
    // Best effort on a path that is already failing: the original error is what matters.
  }
}

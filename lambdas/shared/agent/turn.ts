/**
 * The turn loop: one Orchestrate step rebuilds the conversation from the run's state, resolves
 * what earlier turns asked for, and calls the model only for a turn not stored yet.
 */
import { approvalRecordFor } from "../approval/request.js";
import { DEFAULTS } from "../constants.js";
import type { RunState } from "../ledger/ledger.js";
import type { ApprovalRecord, ArtifactRecord, Disposition } from "../ledger/records.js";
import { costUsd } from "../model/cost.js";
import type { ContentBlock, Message, ToolUseBlock } from "../model/types.js";
import type { Step } from "../steps.js";
import { findVersion } from "./artifacts.js";
import { addDelta, approvalsOf, checkpointRun, effectiveCounters, modelCallDelta, newSink } from "./checkpoint.js";
import { type AgentDeps, type Ending, mcpOf, TERMINAL, telemetryOf } from "./deps.js";
import { crashPoint } from "./faults.js";
import { artifactRefOf, guardCall } from "./guard.js";
import { callModel } from "./model-call.js";
import { taskMessage } from "./prompt.js";
import { deriveOutcome, resolveTurn, stepFromResolution } from "./resolve.js";

/**
 * One orchestrator step. Replays from the ledger when the turn already exists; otherwise calls
 * the model once, stores the turn (with its counters and the guard's audit lines) in one
 * conditional write, and lets the guard decide each call. Ledger round trips: one query for the
 * run's state, a batch read of approvals not yet copied to the run, the new approvals, the turn,
 * and one update of the run record (`checkpointRun`).
 */
export async function orchestrate(deps: AgentDeps, input: { runId: string }): Promise<Step> {
  const state = await deps.ledger.loadRunState(input.runId);
  if (!state) throw new Error(`run ${input.runId} not found in the ledger`);
  const { run } = state;
  telemetryOf(deps).runContext({
    runId: run.runId,
    customer: deps.customer.name,
    poNumber: run.poNumber,
    turn: run.turn,
  });
  if (TERMINAL.has(run.status)) {
    return { type: "done", turn: run.turn, outcome: run.status as Ending, reason: run.reason ?? run.status };
  }
  const { byId: approvals, newlyDecided } = await approvalsOf(deps, state);
  const { step, poNumber } = await nextStep(deps, state, approvals);
  await checkpointRun(deps, state, { poNumber, decided: newlyDecided });
  return step;
}

async function nextStep(
  deps: AgentDeps,
  state: RunState,
  approvals: ReadonlyMap<string, ApprovalRecord>,
): Promise<{ step: Step; poNumber?: string }> {
  const { ledger, customer } = deps;
  const { run, turns, toolCalls } = state;
  const lastTurn = turns.at(-1);
  const messages: Message[] = [
    { role: "user", content: [{ type: "text", text: taskMessage(run.document, customer, run.createdAt) }] },
  ];
  const rejectedPoNumbers = new Set<string>();
  for (const t of turns) {
    messages.push({ role: "assistant", content: t.response.content as ContentBlock[] });
    if (t.dispositions.length === 0) continue;
    const r = await resolveTurn(deps, run, t, toolCalls, approvals, rejectedPoNumbers);
    const pending = stepFromResolution(t.turn, r);
    if (pending) return { step: pending };
    messages.push({ role: "user", content: r.results });
  }
  if (lastTurn && (lastTurn.dispositions.length === 0 || lastTurn.response.stop_reason === "refusal")) {
    const { outcome, reason } = deriveOutcome(turns, toolCalls);
    return { step: { type: "done", turn: lastTurn.turn, outcome, reason } };
  }

  const budgets = {
    maxTurns: customer.budgets.maxTurns ?? DEFAULTS.maxTurns,
    maxTokens: customer.budgets.maxTokens ?? DEFAULTS.maxTokens,
    maxCostUsd: customer.budgets.maxCostUsd ?? DEFAULTS.maxCostUsd,
  };
  const c = effectiveCounters(state);
  const turnNo = (lastTurn?.turn ?? 0) + 1;
  if (turnNo > budgets.maxTurns)
    return {
      step: { type: "budget_exceeded", turn: turnNo, reason: `turn budget of ${budgets.maxTurns} model turns used up` },
    };
  if (c.inputTokens + c.outputTokens >= budgets.maxTokens) {
    return {
      step: { type: "budget_exceeded", turn: turnNo, reason: `token budget of ${budgets.maxTokens} tokens used up` },
    };
  }
  if (c.costUsd >= budgets.maxCostUsd)
    return { step: { type: "budget_exceeded", turn: turnNo, reason: `cost budget of $${budgets.maxCostUsd} used up` } };
  if (c.guardRejections > DEFAULTS.maxGuardRejectionsPerRun) {
    return {
      step: {
        type: "done",
        turn: turnNo,
        outcome: "failed",
        reason: `the model sent ${c.guardRejections} invalid tool calls; giving up`,
      },
    };
  }
  if (!deps.model) throw new Error("orchestrate needs a model client");

  const modelStarted = Date.now();
  const mounted = (await mcpOf(deps)).tools;
  // The run's PO versions as they are now: the guard judges a write by the stored version it would write.
  const { artifacts } = state;
  const sink = newSink();
  const response = await callModel(deps, run, turnNo, messages, mounted, sink);
  const modelMs = Date.now() - modelStarted;
  const cost = costUsd(response.model, response.usage);

  const dispositions: Disposition[] = [];
  /** The policy revision behind each guard decision, recorded in the audit log with the run. */
  const revisions = new Map<string, string>();
  const newApprovals: Omit<ApprovalRecord, "schemaVersion" | "createdAt">[] = [];
  const seenIds = new Set<string>();
  for (const block of response.content) {
    if (block.type !== "tool_use") continue;
    if (seenIds.has(block.id)) {
      // Results are keyed by the call's id: a second call under the same id would take the first one's result.
      dispositions.push({
        kind: "rejected",
        toolUseId: block.id,
        name: block.name,
        error: `tool_use id ${block.id.slice(0, 80)} is used twice in one answer; every call needs its own id, this one was not run`,
      });
      continue;
    }
    seenIds.add(block.id);
    if (response.stop_reason === "max_tokens" || response.stop_reason === "refusal") {
      // A cut-off answer may hold a truncated call; a refusal's calls are not the model's intent: none runs.
      const why =
        response.stop_reason === "max_tokens"
          ? `your answer was cut off at the ${DEFAULTS.maxOutputTokens}-token output limit (stop_reason max_tokens), so this call may be incomplete and was not run; send fewer or shorter calls (tools take { artifactId, version }, not a PO)`
          : "you declined to continue (stop_reason refusal); this call was not run";
      dispositions.push({ kind: "rejected", toolUseId: block.id, name: block.name, error: why });
      continue;
    }
    const verdict = (deps.guard ?? guardCall)(customer, block.name, block.input, {
      mounted,
      artifacts,
      rejectedPoNumbers,
    });
    if (verdict.kind !== "rejected") revisions.set(block.id, verdict.policyRevision);
    if (verdict.kind === "rejected") {
      dispositions.push({ kind: "rejected", toolUseId: block.id, name: block.name, error: verdict.error });
    } else if (verdict.kind === "run") {
      dispositions.push({ kind: "run", toolUseId: block.id, name: block.name, argsHash: verdict.argsHash });
    } else {
      // The record binds the call and the revision of a policy decision (not of the model's own escalation).
      const approval = approvalRecordFor({
        runId: run.runId,
        customer: customer.name,
        turn: turnNo,
        call: { toolUseId: block.id, name: block.name, input: block.input },
        argsHash: verdict.argsHash,
        request: verdict.request,
      });
      const { approvalId, policyRevision } = approval;
      dispositions.push({
        kind: "approval",
        toolUseId: block.id,
        name: block.name,
        argsHash: verdict.argsHash,
        approvalId,
        ...(policyRevision ? { policyRevision } : {}),
      });
      newApprovals.push(approval);
    }
  }
  addDelta(sink, {
    ...modelCallDelta(response, cost),
    guardRejections: dispositions.filter((d) => d.kind === "rejected").length,
    estimatedTurns: response.usageEstimated ? 1 : 0,
  });
  for (const d of dispositions) {
    sink.audit.push({
      actor: "guard",
      action: `guard.${d.kind}`,
      detail: {
        turn: turnNo,
        tool: d.name,
        toolUseId: d.toolUseId,
        ...(d.kind === "rejected" ? { error: d.error } : {}),
        ...(d.kind === "approval" ? { approvalId: d.approvalId } : {}),
        ...(revisions.has(d.toolUseId) ? { policyRevision: revisions.get(d.toolUseId) } : {}),
      },
    });
  }

  // Approvals first (idempotent ids), then the turn: a turn in the ledger always has its approvals.
  const stored = new Map<string, ApprovalRecord>(approvals);
  for (const a of newApprovals) stored.set(a.approvalId, (await ledger.putApproval(a)).approval);
  const { turn, created } = await ledger.putTurn(
    {
      runId: run.runId,
      turn: turnNo,
      response: { ...response, content: response.content as unknown as Record<string, unknown>[] },
      dispositions,
      costUsd: cost,
      durationMs: modelMs,
      delta: sink.delta,
    },
    sink.audit,
  );
  // The run record takes the turn's counters in the step's checkpoint (after this returns).
  state.turns.push(turn);
  if (!created) {
    // A concurrent attempt stored this turn first: its calls (and approvals) are the ones that count.
    for (const a of await ledger.getApprovals(
      turn.dispositions.flatMap((d) => (d.kind === "approval" ? [d.approvalId] : [])),
    )) {
      stored.set(a.approvalId, a);
    }
  }
  const po = poNumberFrom(response.content, artifacts);
  if (created) {
    const ref = { runId: run.runId, customer: customer.name, poNumber: po ?? run.poNumber };
    telemetryOf(deps).modelCall({
      ...ref,
      turn: turnNo,
      modelId: response.model,
      usage: response.usage,
      stopReason: response.stop_reason,
      durationMs: modelMs,
      costUsd: cost,
    });
    for (const a of newApprovals) {
      telemetryOf(deps).escalation({ ...ref, turn: turnNo, approvalId: a.approvalId, tool: a.call.name, rule: a.rule });
    }
  }
  crashPoint("after-turn-stored", turn.turn);

  if (turn.dispositions.length === 0 || turn.response.stop_reason === "refusal") {
    const { outcome, reason } = deriveOutcome(state.turns, toolCalls);
    return { step: { type: "done", turn: turn.turn, outcome, reason }, poNumber: po };
  }
  const r = await resolveTurn(deps, run, turn, toolCalls, stored);
  const next = stepFromResolution(turn.turn, r);
  // Every disposition resolved already (all rejected by the guard): loop straight back.
  return { step: next ?? { type: "tools", turn: turn.turn, calls: [] }, poNumber: po };
}

/** The PO number of the stored version a call of this turn names (never what the model writes about it). */
function poNumberFrom(
  content: (ContentBlock | { type: string })[],
  artifacts: readonly ArtifactRecord[],
): string | undefined {
  for (const b of content) {
    if (b.type !== "tool_use") continue;
    const ref = artifactRefOf((b as ToolUseBlock).input);
    const version = ref ? findVersion(artifacts, ref) : undefined;
    const poNumber = version?.po.poNumber;
    if (typeof poNumber === "string") return poNumber;
  }
  return undefined;
}

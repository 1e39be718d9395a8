import type { DocumentStore } from "../aws/documents.js";
import type { CustomerConfig } from "../config/schema.js";
import { DEFAULTS } from "../constants.js";
import { PreparedContext } from "../context/types.js";
import { type AwsUsage, type RunCostRecord, runCostRecord, TRANSITIONS_AFTER } from "../cost-estimate.js";
import { DocumentError } from "../errors.js";
import { type Ledger, sha256 } from "../ledger/ledger.js";
import type {
  ApprovalRecord,
  ArtifactRecord,
  Disposition,
  DocumentRef,
  RunRecord,
  ToolCallRecord,
  TurnRecord,
} from "../ledger/records.js";
import { ZERO_COUNTERS } from "../ledger/records.js";
import type { McpTool, McpToolset } from "../mcp/client.js";
import { PromptTooLongError } from "../model/anthropic.js";
import { costUsd } from "../model/cost.js";
import { RetryingModelClient, type RetryPolicy } from "../model/retry.js";
import { usageFromResponse } from "../model/tokens.js";
import type {
  ContentBlock,
  Message,
  ModelClient,
  ModelResponse,
  ToolResultBlock,
  ToolUseBlock,
} from "../model/types.js";
import type { Step, ToolCallRef } from "../steps.js";
import { noopTelemetry, type Telemetry } from "../telemetry.js";
import { ESCALATE_TOOL, findTool, toolSpecs } from "../tools/registry.js";
import type { ToolContext } from "../tools/types.js";
import { findVersion, poHash } from "./artifacts.js";
import { settleParent } from "./fanout-settle.js";
import { crashPoint } from "./faults.js";
import { approvalIdFor, argsHash, artifactRefOf, bindingProblem, guardCall } from "./guard.js";
import { orderObjectKey, resultObjectKey } from "./keys.js";
import { rulesBlock, SYSTEM_PROMPT, taskMessage } from "./prompt.js";

/** Everything the agent core touches, injected: the same core runs in Lambda and locally. */
export interface AgentDeps {
  ledger: Ledger;
  documents: DocumentStore;
  customer: CustomerConfig;
  /** Bucket for large tool results and saved orders (the customer's intake bucket). */
  bucket: string;
  model?: { client: ModelClient; modelId: string };
  /** @default DEFAULTS.modelRetry */
  modelRetry?: RetryPolicy;
  /** Traces, metrics and logs about the run (Powertools in Lambda, the trace store locally). @default - none */
  telemetry?: Telemetry;
  /**
   * The customer's MCP servers, connected and listed (once per process and customer: the caller
   * caches). Their tools join the built-ins for the model, the guard and runTool. @default - none
   */
  mcp?: () => Promise<Pick<McpToolset, "tools" | "problems">>;
  /** Reads documents for the extract tool (locally: off the event loop). @default - in this thread */
  readDocument?: ToolContext["readDocument"];
  now?: () => Date;
  /**
   * What the run's execution used so far, counted from its history (cost-estimate.ts); Finalize and
   * RecordFailure price it into the cost record. @default - estimated from the run's shape
   */
  executionUsage?: (executionArn: string, extraTransitions: number) => Promise<AwsUsage>;
  /**
   * The guard, injectable only so the compromised-model suite can prove its check fails without
   * it (a guard that lets everything run must let attacks through). @default guardCall
   */
  guard?: typeof guardCall;
}

const TERMINAL = new Set(["saved", "rejected", "failed", "handed_to_human"]);
type Ending = "saved" | "rejected" | "failed" | "handed_to_human";

const telemetryOf = (deps: AgentDeps): Telemetry => deps.telemetry ?? noopTelemetry;

const NO_MCP: Pick<McpToolset, "tools" | "problems"> = { tools: [], problems: [] };
const mcpOf = async (deps: AgentDeps) => (deps.mcp ? deps.mcp() : NO_MCP);

/** Run ids are derived from content: the same bytes for the same customer are one run. */
export function runIdFor(customer: string, documentSha256: string): string {
  return `${customer}-${documentSha256.slice(0, 20)}`;
}

// ---- Ingest ---------------------------------------------------------------------------------

export interface IngestInput {
  bucket: string;
  key: string;
  /** The object version the event announced: another upload under the same key cannot swap the bytes. */
  versionId?: string;
  executionId: string;
}

/** The run's pointer to its document: the uploaded object's version and the hash of its bytes. */
export function documentRefOf(input: IngestInput, digest: string, bytes: Uint8Array): DocumentRef {
  return { bucket: input.bucket, key: input.key, versionId: input.versionId, sha256: digest, size: bytes.byteLength };
}

/**
 * Loads the document, hashes it and opens the run. The same execution resumes its run; another
 * execution for the same bytes (a redelivered event, a second upload) is a duplicate.
 */
export async function ingest(
  deps: AgentDeps,
  input: IngestInput,
): Promise<{ runId: string; status: "new" | "resume" | "duplicate" }> {
  const bytes = await deps.documents.get(input.bucket, input.key, input.versionId);
  const digest = sha256(bytes);
  const runId = runIdFor(deps.customer.name, digest);
  const { run, created } = await deps.ledger.openRun({
    runId,
    customer: deps.customer.name,
    document: documentRefOf(input, digest, bytes),
    executionId: input.executionId,
    status: "running",
    turn: 0,
    counters: { ...ZERO_COUNTERS },
    modelProvider: deps.model?.client.provider,
    modelId: deps.model?.modelId,
  });
  if (created) {
    telemetryOf(deps).runStarted({ runId, customer: deps.customer.name });
    await deps.ledger.audit(runId, "system", "run.opened", {
      key: input.key,
      sha256: digest,
      executionId: input.executionId,
    });
    // Mounted at run start: a server that is down is in the audit log from the first line on.
    for (const problem of (await mcpOf(deps)).problems) {
      await deps.ledger.audit(runId, "system", "mcp.problem", { problem });
    }
    return { runId, status: "new" };
  }
  if (run.executionId === input.executionId) return { runId, status: "resume" };
  await deps.ledger.audit(runId, "system", "run.duplicate", { key: input.key, executionId: input.executionId });
  return { runId, status: "duplicate" };
}

// ---- Orchestrate ----------------------------------------------------------------------------

interface Resolution {
  results: ToolResultBlock[];
  pendingTools: ToolCallRef[];
  pendingApproval?: string;
}

async function resolveTurn(
  deps: AgentDeps,
  run: RunRecord,
  turn: TurnRecord,
  toolCalls: ToolCallRecord[],
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
    const approval = await deps.ledger.getApproval(d.approvalId);
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
    if (approval.status === "rejected" && d.name === "save") rejectedPoNumbers.add(approval.summary.poNumber);
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

function stepFromResolution(turn: number, r: Resolution): Step | undefined {
  if (r.pendingTools.length > 0) return { type: "tools", turn, calls: r.pendingTools };
  if (r.pendingApproval) return { type: "approval", turn, approvalId: r.pendingApproval };
  return undefined;
}

/** The final assistant line `OUTCOME: x — reason`, checked against what really happened. */
function deriveOutcome(turns: TurnRecord[], toolCalls: ToolCallRecord[]): { outcome: Ending; reason: string } {
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

/**
 * One orchestrator step. Replays from the ledger when the turn already exists; otherwise calls
 * the model once, stores the turn with a conditional write, and lets the guard decide each call.
 */
export async function orchestrate(deps: AgentDeps, input: { runId: string }): Promise<Step> {
  const { ledger, customer } = deps;
  const run = await ledger.requireRun(input.runId);
  telemetryOf(deps).runContext({ runId: run.runId, customer: customer.name, poNumber: run.poNumber, turn: run.turn });
  const turns = await ledger.getTurns(run.runId);
  const toolCalls = await ledger.getToolCalls(run.runId);
  const lastTurn = turns.at(-1);

  if (TERMINAL.has(run.status)) {
    return {
      type: "done",
      turn: run.turn,
      outcome: run.status as Ending,
      reason: run.reason ?? run.status,
    };
  }

  const messages: Message[] = [
    { role: "user", content: [{ type: "text", text: taskMessage(run.document, customer, run.createdAt) }] },
  ];
  const rejectedPoNumbers = new Set<string>();
  for (const t of turns) {
    messages.push({ role: "assistant", content: t.response.content as ContentBlock[] });
    if (t.dispositions.length === 0) continue;
    const r = await resolveTurn(deps, run, t, toolCalls, rejectedPoNumbers);
    const pending = stepFromResolution(t.turn, r);
    if (pending) return pending;
    messages.push({ role: "user", content: r.results });
  }
  if (lastTurn && (lastTurn.dispositions.length === 0 || lastTurn.response.stop_reason === "refusal")) {
    const { outcome, reason } = deriveOutcome(turns, toolCalls);
    return { type: "done", turn: lastTurn.turn, outcome, reason };
  }

  const budgets = {
    maxTurns: customer.budgets.maxTurns ?? DEFAULTS.maxTurns,
    maxTokens: customer.budgets.maxTokens ?? DEFAULTS.maxTokens,
    maxCostUsd: customer.budgets.maxCostUsd ?? DEFAULTS.maxCostUsd,
  };
  const c = run.counters;
  const turnNo = (lastTurn?.turn ?? 0) + 1;
  if (turnNo > budgets.maxTurns)
    return { type: "budget_exceeded", turn: turnNo, reason: `turn budget of ${budgets.maxTurns} model turns used up` };
  if (c.inputTokens + c.outputTokens >= budgets.maxTokens) {
    return { type: "budget_exceeded", turn: turnNo, reason: `token budget of ${budgets.maxTokens} tokens used up` };
  }
  if (c.costUsd >= budgets.maxCostUsd)
    return { type: "budget_exceeded", turn: turnNo, reason: `cost budget of $${budgets.maxCostUsd} used up` };
  if (c.guardRejections > DEFAULTS.maxGuardRejectionsPerRun) {
    return {
      type: "done",
      turn: turnNo,
      outcome: "failed",
      reason: `the model sent ${c.guardRejections} invalid tool calls; giving up`,
    };
  }
  if (!deps.model) throw new Error("orchestrate needs a model client");

  const modelStarted = Date.now();
  const mounted = (await mcpOf(deps)).tools;
  // The run's PO versions as they are now: the guard judges a write by the stored version it would write.
  const artifacts = await ledger.getArtifacts(run.runId);
  const response = await callModel(deps, run, turnNo, messages, mounted);
  const modelMs = Date.now() - modelStarted;
  const cost = costUsd(response.model, response.usage);

  const dispositions: Disposition[] = [];
  /** The policy revision behind each guard decision, recorded in the audit log with the run. */
  const revisions = new Map<string, string>();
  const approvals: Omit<ApprovalRecord, "schemaVersion" | "createdAt">[] = [];
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
      // A policy decision binds its revision; the model's own escalation was not a policy decision.
      const revision = verdict.request.rule === "model-escalation" ? undefined : verdict.policyRevision;
      const approvalId = approvalIdFor(run.runId, block.id, block.name, verdict.argsHash, revision);
      dispositions.push({
        kind: "approval",
        toolUseId: block.id,
        name: block.name,
        argsHash: verdict.argsHash,
        approvalId,
        ...(revision ? { policyRevision: revision } : {}),
      });
      approvals.push({
        approvalId,
        runId: run.runId,
        customer: customer.name,
        turn: turnNo,
        call: { toolUseId: block.id, name: block.name, input: block.input },
        callHash: verdict.argsHash,
        ...(revision ? { policyRevision: revision } : {}),
        reason: verdict.request.reason,
        rule: verdict.request.rule,
        approvers: verdict.request.approvers,
        summary: verdict.request.summary,
        ...(verdict.request.artifact ? { artifact: verdict.request.artifact } : {}),
        ...(verdict.request.diff ? { diff: verdict.request.diff } : {}),
        status: "pending",
        emailedTo: [],
        usedNonces: [],
      });
    }
  }

  // Approvals first (idempotent ids), then the turn: a turn in the ledger always has its approvals.
  for (const a of approvals) await ledger.putApproval(a);
  const { turn: stored, created } = await ledger.putTurn({
    runId: run.runId,
    turn: turnNo,
    response: { ...response, content: response.content as unknown as Record<string, unknown>[] },
    dispositions,
    costUsd: cost,
    durationMs: modelMs,
  });
  if (created) {
    await ledger.addCounters(run.runId, {
      inputTokens: response.usage.input_tokens,
      outputTokens: response.usage.output_tokens,
      cacheReadTokens: response.usage.cache_read_input_tokens ?? 0,
      cacheWriteTokens: response.usage.cache_creation_input_tokens ?? 0,
      costUsd: cost,
      guardRejections: dispositions.filter((d) => d.kind === "rejected").length,
      estimatedTurns: response.usageEstimated ? 1 : 0,
    });
    for (const d of dispositions) {
      await ledger.audit(run.runId, "guard", `guard.${d.kind}`, {
        turn: turnNo,
        tool: d.name,
        toolUseId: d.toolUseId,
        ...(d.kind === "rejected" ? { error: d.error } : {}),
        ...(d.kind === "approval" ? { approvalId: d.approvalId } : {}),
        ...(revisions.has(d.toolUseId) ? { policyRevision: revisions.get(d.toolUseId) } : {}),
      });
    }
    const po = poNumberFrom(response.content, artifacts);
    if (po && !run.poNumber) await ledger.updateRun(run.runId, { poNumber: po });
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
    for (const a of approvals) {
      telemetryOf(deps).escalation({ ...ref, turn: turnNo, approvalId: a.approvalId, tool: a.call.name, rule: a.rule });
    }
  }
  crashPoint("after-turn-stored", stored.turn);

  if (stored.dispositions.length === 0 || stored.response.stop_reason === "refusal") {
    const { outcome, reason } = deriveOutcome([...turns, stored], toolCalls);
    return { type: "done", turn: stored.turn, outcome, reason };
  }
  const r = await resolveTurn(deps, run, stored, toolCalls);
  const next = stepFromResolution(stored.turn, r);
  // Every disposition resolved already (all rejected by the guard): loop straight back.
  return next ?? { type: "tools", turn: stored.turn, calls: [] };
}

/**
 * One model turn with the single retry layer (RetryingModelClient) and the "prompt is too long"
 * ladder: compact the conversation and retry once; if it still does not fit, a human is asked
 * (a system escalation), and if that already happened the run fails with the reason.
 */
async function callModel(
  deps: AgentDeps,
  run: RunRecord,
  turnNo: number,
  messages: Message[],
  mounted: readonly McpTool[],
): Promise<ModelResponse> {
  const { ledger, customer } = deps;
  if (!deps.model) throw new Error("orchestrate needs a model client");
  const client = new RetryingModelClient(deps.model.client, deps.modelRetry ?? DEFAULTS.modelRetry, {
    onRetry: (e) => {
      telemetryOf(deps).retry({
        runId: run.runId,
        customer: customer.name,
        turn: turnNo,
        what: "model",
        reason: e.error.message,
      });
      void ledger.addCounters(run.runId, { retries: 1 }).catch(() => {});
      void ledger
        .audit(run.runId, "system", "model.retry", {
          turn: turnNo,
          attempt: e.attempt,
          delayMs: e.delayMs,
          error: e.error.message,
        })
        .catch(() => {});
    },
  });
  const request = (msgs: Message[]) => ({
    model: deps.model?.modelId ?? "",
    system: SYSTEM_PROMPT,
    rules: rulesBlock(customer),
    tools: toolSpecs(mounted),
    messages: msgs,
    maxTokens: DEFAULTS.maxOutputTokens,
  });
  let attempt = messages;
  for (let compactions = 0; ; compactions++) {
    try {
      const sent = request(attempt);
      const raw = await client.create(sent);
      if (raw.stop_reason === "model_context_window_exceeded") {
        // The answer stopped because the context window filled up: the same ladder as "prompt is too long".
        await ledger.addCounters(run.runId, { modelCalls: 1 });
        throw new PromptTooLongError("the model stopped: model_context_window_exceeded", { status: 200 });
      }
      // Billed usage when the model reports it; otherwise the offline tokenizer, labelled an estimate.
      const accounted = usageFromResponse(raw, sent);
      const response: ModelResponse = { ...raw, usage: accounted.usage, usageEstimated: accounted.estimated };
      // Counted once paid, before the turn is stored: a crash in between shows as a paid, lost call.
      await ledger.addCounters(run.runId, { modelCalls: 1 });
      crashPoint("after-model-answer", turnNo);
      return response;
    } catch (err) {
      if (!(err instanceof PromptTooLongError)) throw err;
      await ledger.audit(run.runId, "system", "model.prompt_too_long", {
        turn: turnNo,
        compactions,
        error: err.message,
      });
      if (compactions < DEFAULTS.promptTooLongRetries) {
        await ledger.addCounters(run.runId, { compactions: 1 });
        attempt = compactMessages(attempt);
        continue;
      }
      return promptTooLongEscalation(turnNo, err.message);
    }
  }
}

/**
 * Stronger compression for a prompt that does not fit. The latest exchange stays as it is; in
 * older tool results, long JSON strings (a prepared thread, long notes) and long arrays are cut,
 * and long non-JSON results and older assistant text are shortened, each with a note saying so.
 * JSON stays valid, so structured results remain readable.
 */
export function compactMessages(messages: Message[]): Message[] {
  const lastUser = messages.map((m) => m.role).lastIndexOf("user");
  return messages.map((m, i) => ({
    role: m.role,
    content: m.content.map((b): ContentBlock => {
      if (i >= lastUser) return b;
      if (b.type === "tool_result" && b.content.length > 600) return { ...b, content: compactResult(b.content) };
      if (b.type === "text" && m.role === "assistant" && b.text.length > 300) {
        return { type: "text", text: `${b.text.slice(0, 300)}… [elided to fit the context window]` };
      }
      return b;
    }),
  }));
}

function compactResult(content: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return `${content.slice(0, 600)}… [elided to fit the context window: ${content.length} characters in all]`;
  }
  const shrink = (v: unknown): unknown => {
    if (typeof v === "string" && v.length > 300) {
      return `${v.slice(0, 120)}… [elided to fit the context window: ${v.length} characters; fetch_context reads thread passages in full]`;
    }
    if (Array.isArray(v)) {
      const kept = v.slice(0, 10).map(shrink);
      return v.length > 10 ? [...kept, `[elided to fit the context window: ${v.length - 10} more items]`] : kept;
    }
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shrink(x)]));
    return v;
  };
  return JSON.stringify(shrink(parsed));
}

/** The turn that asks a human when the conversation cannot be made to fit. */
function promptTooLongEscalation(turnNo: number, detail: string): ModelResponse {
  const reason = `The conversation is too long for the model even after compression (${detail.slice(0, 200)}); a human must process this PO.`;
  return {
    model: "po-agent-system",
    content: [
      { type: "text", text: reason },
      { type: "tool_use", id: `toolu_system_too_long_${turnNo}`, name: ESCALATE_TOOL, input: { reason } },
    ],
    stop_reason: "tool_use",
    usage: { input_tokens: 0, output_tokens: 0 },
  };
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

// ---- Tools ----------------------------------------------------------------------------------

/**
 * Executes one tool call exactly once. A replay (Step Functions retry, restarted local run)
 * finds the stored result and returns it without touching the world again.
 */
export async function runTool(
  deps: AgentDeps,
  input: { runId: string; call: ToolCallRef },
): Promise<{ toolUseId: string; isError: boolean }> {
  const { ledger, customer } = deps;
  const run = await ledger.requireRun(input.runId);
  const turns = await ledger.getTurns(run.runId);
  let use: ToolUseBlock | undefined;
  let disposition: Disposition | undefined;
  for (const t of turns) {
    const d = t.dispositions.find((x) => x.toolUseId === input.call.toolUseId);
    if (!d) continue;
    disposition = d;
    use = (t.response.content as unknown as ContentBlock[]).find(
      (b): b is ToolUseBlock => b.type === "tool_use" && b.id === input.call.toolUseId,
    );
  }
  if (!use || !disposition) throw new Error(`tool call ${input.call.toolUseId} is not in run ${run.runId}`);
  const hash = argsHash(use.input);
  const existing = await ledger.getToolCall(run.runId, use.id, hash);
  const toolRef = {
    runId: run.runId,
    customer: customer.name,
    poNumber: run.poNumber,
    toolUseId: use.id,
    tool: use.name,
  };
  if (existing) {
    telemetryOf(deps).toolCall({ ...toolRef, isError: existing.isError, durationMs: 0, replayed: true });
    return { toolUseId: use.id, isError: existing.isError };
  }

  const mounted = (await mcpOf(deps)).tools;
  // Defense in depth: the tool re-checks the guard's decision and the approval binding itself.
  if (disposition.kind === "rejected") throw new Error(`tool call ${use.id} was rejected by the guard and cannot run`);
  const effect = findTool(use.name, mounted)?.effect ?? "dangerous";
  if (disposition.kind === "approval") {
    const approval = await ledger.getApproval(disposition.approvalId);
    let problem = approval ? bindingProblem(approval, run.runId, use) : "the approval record is missing";
    if (approval && problem === undefined && approval.artifact) {
      // The version approved must still hold exactly the content the human saw.
      const stored = await ledger.getArtifact(run.runId, approval.artifact.artifactId, approval.artifact.version);
      if (!stored || stored.poSha256 !== approval.artifact.poSha256 || poHash(stored.po) !== stored.poSha256) {
        problem = "the approved PO version changed after the approval";
      }
    }
    if (!approval || approval.status !== "approved" || approval.callHash !== hash || problem !== undefined) {
      throw new Error(
        `tool call ${use.id} needs an approval bound to exactly this call; none is granted (${problem ?? approval?.status ?? "missing"})`,
      );
    }
  } else if (effect !== "read") {
    const state = {
      mounted,
      artifacts: await ledger.getArtifacts(run.runId),
      rejectedPoNumbers: await rejectedPoNumbersOf(deps, turns),
    };
    if ((deps.guard ?? guardCall)(customer, use.name, use.input, state).kind !== "run") {
      throw new Error(`tool call ${use.id} is not allowed without approval`);
    }
  }

  const tool = findTool(use.name, mounted);
  if (!tool) throw new Error(`unknown tool ${use.name}`);
  const args = tool.input.parse(use.input);
  const started = Date.now();
  const output = await tool.run(args, toolContext(deps, run));
  crashPoint("after-tool-effect");
  let content: string | undefined = output.content;
  let resultKey: string | undefined;
  if (Buffer.byteLength(output.content) > DEFAULTS.maxInlineResultBytes) {
    resultKey = `results/${run.runId}/${use.id}.json`;
    await deps.documents.put(deps.bucket, resultKey, output.content);
    content = undefined;
  }
  const { call, created } = await ledger.putToolCall({
    runId: run.runId,
    toolUseId: use.id,
    name: use.name,
    argsHash: hash,
    content,
    resultKey,
    isError: output.isError === true,
    approvalId: disposition.kind === "approval" ? disposition.approvalId : undefined,
    durationMs: Date.now() - started,
  });
  await ledger.addCounters(run.runId, { toolCalls: 1 });
  telemetryOf(deps).toolCall({ ...toolRef, isError: call.isError, durationMs: Date.now() - started });
  if (created)
    await ledger.audit(run.runId, "agent", "tool.executed", {
      tool: use.name,
      toolUseId: use.id,
      isError: call.isError,
    });
  return { toolUseId: use.id, isError: call.isError };
}

/**
 * Saving is one transaction in effect: claim the PO number (state `writing`), write the object,
 * mark the claim `written`. A failed write releases the claim, so nothing stays claimed and the
 * corrected resend is not "already saved"; a replay of the same run (same key) writes the same
 * object again and finds exactly one order.
 */
export async function saveOrderOnce(
  deps: Pick<AgentDeps, "ledger" | "documents" | "bucket" | "customer">,
  run: Pick<RunRecord, "runId">,
  { poNumber, po, idempotencyKey }: { poNumber: string; po: unknown; idempotencyKey: string },
): Promise<{ created: boolean }> {
  const objectKey = orderObjectKey(poNumber);
  const customer = deps.customer.name;
  let { order } = await deps.ledger.claimOrder({ customer, poNumber, runId: run.runId, idempotencyKey, objectKey });
  if (order.idempotencyKey !== idempotencyKey && order.state === "writing") {
    // A claim left by a run that crashed between claim and write and then failed: nothing was saved.
    const claimant = await deps.ledger.getRun(order.runId);
    if (claimant?.status === "failed" && (await deps.ledger.takeOverOrder(order, run.runId, idempotencyKey))) {
      order = { ...order, runId: run.runId, idempotencyKey };
    }
  }
  if (order.idempotencyKey !== idempotencyKey) {
    throw new DocumentError(
      order.state === "written"
        ? `PO ${poNumber.slice(0, 100)} was already saved by run ${order.runId}`
        : `PO ${poNumber.slice(0, 100)} is being saved by run ${order.runId}`,
    );
  }
  try {
    await deps.documents.put(deps.bucket, order.objectKey, JSON.stringify(po, null, 2));
  } catch (err) {
    await deps.ledger.releaseOrder(customer, poNumber, idempotencyKey);
    throw err;
  }
  const completing = order.state !== "written";
  if (completing) {
    await deps.ledger.completeOrder(customer, poNumber, idempotencyKey);
    await deps.ledger.audit(run.runId, "agent", "order.saved", { poNumber, objectKey: order.objectKey });
  }
  return { created: completing };
}

/** PO numbers whose save a human rejected in this run, from the run's approvals. */
async function rejectedPoNumbersOf(deps: AgentDeps, turns: readonly TurnRecord[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const t of turns) {
    for (const d of t.dispositions) {
      if (d.kind !== "approval" || d.name !== "save") continue;
      const a = await deps.ledger.getApproval(d.approvalId);
      if (a?.status === "rejected") out.add(a.summary.poNumber);
    }
  }
  return out;
}

/** Where a run's prepared thread context lives (S3: it can be larger than a DynamoDB item). */
const contextKey = (runId: string) => `context/${runId}.json`;

/** One extraction call to Claude from inside the extract tool; paid and counted like a turn. */
async function extractWithModel(
  deps: AgentDeps,
  run: RunRecord,
  model: NonNullable<AgentDeps["model"]>,
  content: ContentBlock[],
): Promise<string> {
  const client = new RetryingModelClient(model.client, deps.modelRetry ?? DEFAULTS.modelRetry);
  const response = await client.create({
    model: model.modelId,
    system: "You read purchase-order documents and answer with the requested JSON only.",
    rules: "",
    tools: [],
    messages: [{ role: "user", content }],
    maxTokens: 4_096,
  });
  await deps.ledger.addCounters(run.runId, {
    modelCalls: 1,
    inputTokens: response.usage.input_tokens,
    outputTokens: response.usage.output_tokens,
    cacheReadTokens: response.usage.cache_read_input_tokens ?? 0,
    cacheWriteTokens: response.usage.cache_creation_input_tokens ?? 0,
    costUsd: costUsd(response.model, response.usage),
  });
  return response.content.map((b) => (b.type === "text" ? b.text : "")).join("");
}

function toolContext(deps: AgentDeps, run: RunRecord): ToolContext {
  const model = deps.model;
  return {
    ...(deps.readDocument ? { readDocument: deps.readDocument } : {}),
    runId: run.runId,
    customer: deps.customer,
    document: run.document,
    loadDocument: () => deps.documents.get(run.document.bucket, run.document.key, run.document.versionId),
    artifacts: {
      list: () => deps.ledger.getArtifacts(run.runId),
      async put(version) {
        const all = await deps.ledger.getArtifacts(run.runId);
        // A replay (the tool ran, the result was lost) finds the version it stored the first time.
        const same = all.find(
          (a) =>
            a.artifactId === version.artifactId &&
            a.poSha256 === version.poSha256 &&
            a.origin === version.origin &&
            a.parentVersion === version.parentVersion,
        );
        if (same) return same;
        let next = Math.max(0, ...all.filter((a) => a.artifactId === version.artifactId).map((a) => a.version)) + 1;
        // Tools of one turn run in parallel: a version number taken by a sibling moves this one up.
        for (let tries = 0; ; tries++, next++) {
          const { artifact, created } = await deps.ledger.putArtifact({ ...version, runId: run.runId, version: next });
          if (created || artifact.poSha256 === version.poSha256) return artifact;
          if (tries >= 20) throw new Error(`no free version number for artifact ${version.artifactId}`);
        }
      },
      markValidated: (ref, result) => deps.ledger.setArtifactValidation(run.runId, ref.artifactId, ref.version, result),
    },
    async findSavedOrder(poNumber) {
      const order = await deps.ledger.getOrder(deps.customer.name, poNumber);
      return order ? { runId: order.runId } : undefined;
    },
    saveOrder: (order) => saveOrderOnce(deps, run, order),
    async loadPreparedContext() {
      try {
        const bytes = await deps.documents.get(deps.bucket, contextKey(run.runId));
        return PreparedContext.parse(JSON.parse(new TextDecoder().decode(bytes)));
      } catch (err) {
        if (err instanceof DocumentError) return undefined;
        throw err;
      }
    },
    async savePreparedContext(context) {
      await deps.documents.put(deps.bucket, contextKey(run.runId), JSON.stringify(context));
    },
    ...(model && (model.client.provider === "anthropic" || model.client.provider === "bedrock")
      ? { extractWithModel: (content: ContentBlock[]) => extractWithModel(deps, run, model, content) }
      : {}),
  };
}

// ---- Finalize and failures ------------------------------------------------------------------

export async function finalize(
  deps: AgentDeps,
  input: { runId: string; step: Step },
): Promise<{ outcome: Ending; reason: string }> {
  const { step } = input;
  const outcome = step.type === "done" ? step.outcome : "failed";
  const reason = step.type === "done" || step.type === "budget_exceeded" ? step.reason : `unexpected step ${step.type}`;
  const run = await deps.ledger.requireRun(input.runId);
  if (!TERMINAL.has(run.status)) {
    const now = (deps.now ?? (() => new Date()))();
    // Read the run's turns once: the cost record and the human waiting time both come from them.
    const turns = await deps.ledger.getTurns(run.runId);
    const measured = await measuredUsage(deps, run, TRANSITIONS_AFTER.Finalize);
    const cost = costRecordOf(run, turns, await deps.ledger.getToolCalls(run.runId), measured);
    await deps.ledger.updateRun(input.runId, {
      status: outcome,
      reason,
      finishedAt: now.toISOString(),
      durationMs: now.getTime() - Date.parse(run.createdAt),
      cost,
    });
    await deps.ledger.audit(input.runId, "system", "run.finished", { outcome, reason, totalUsd: cost.totalUsd });
    telemetryOf(deps).runFinished({
      runId: run.runId,
      customer: deps.customer.name,
      poNumber: run.poNumber,
      outcome,
      reason,
      turns: run.turn,
      durationMs: now.getTime() - Date.parse(run.createdAt),
      waitedMs: await waitedMs(deps, turns),
      counters: run.counters,
      ...(step.type === "budget_exceeded" ? { budgetExceeded: budgetKind(step.reason) } : {}),
    });
  }
  await settleParent(deps, input.runId); // a child of a multi-PO document: the last one settles the parent
  return { outcome, reason };
}

export class RetryRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * An operator retries a failed run: the run goes back to `running` under a new execution name,
 * and that execution replays every stored turn and tool result from the ledger (nothing paid or
 * written twice), picking up where the run failed. Audited. A re-upload of the same bytes is still
 * a duplicate: only the execution named here resumes the run. The caller starts the execution
 * (`po-agent retry` locally; in AWS `aws stepfunctions start-execution --name <executionName>` with
 * the run's original input).
 */
export async function retryRun(
  deps: Pick<AgentDeps, "ledger">,
  input: { runId: string; operator: string },
): Promise<{
  runId: string;
  executionName: string;
  executionId: string;
  turnsReused: number;
  toolResultsReused: number;
}> {
  const run = await deps.ledger.getRun(input.runId);
  if (!run) throw new RetryRefusedError(`no run ${input.runId}`);
  if (run.status !== "failed")
    throw new RetryRefusedError(`run ${run.runId} is ${run.status}; only a failed run can be retried`);
  if (!run.document.sha256) {
    throw new RetryRefusedError(`run ${run.runId} failed before its document was read; upload the document again`);
  }
  const audit = await deps.ledger.getAudit(run.runId);
  const attempt = audit.filter((a) => a.action === "run.retried").length + 1;
  const executionName = `${run.runId}-retry-${attempt}`.slice(0, 80);
  const executionId = run.executionId.includes(":execution:")
    ? `${run.executionId.slice(0, run.executionId.lastIndexOf(":") + 1)}${executionName}`
    : executionName;
  const [turns, tools] = await Promise.all([deps.ledger.getTurns(run.runId), deps.ledger.getToolCalls(run.runId)]);
  const moved = await deps.ledger.updateRun(
    run.runId,
    {
      status: "running",
      executionId,
      reason: `retried by ${input.operator} after: ${run.reason ?? "failure"}`.slice(0, 1000),
    },
    { onlyIfStatusIn: ["failed"] },
  );
  if (!moved) throw new RetryRefusedError(`run ${run.runId} changed while retrying; look again`);
  await deps.ledger.audit(run.runId, `operator:${input.operator}`, "run.retried", {
    attempt,
    previousReason: run.reason ?? "",
    previousExecutionId: run.executionId,
    executionId,
    turnsReused: turns.length,
    toolResultsReused: tools.length,
  });
  return { runId: run.runId, executionName, executionId, turnsReused: turns.length, toolResultsReused: tools.length };
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
  if (runId && (await deps.ledger.getRun(runId))) {
    const run = await deps.ledger.requireRun(runId);
    // A run that already reached an outcome keeps it (e.g. saved, then a later audit write failed).
    if (!TERMINAL.has(run.status)) {
      const measured = await measuredUsage(deps, run, TRANSITIONS_AFTER.RecordFailure);
      await deps.ledger.updateRun(runId, {
        status: "failed",
        reason,
        ...(measured
          ? { cost: runCostRecord({ runId, customer: run.customer, counters: run.counters, aws: measured }) }
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

/**
 * The per-run cost record: model tokens and dollars from the counters, plus an AWS estimate.
 * Transitions are counted from the run's shape (a run's state history is not visible to a
 * Lambda); Lambda time is the measured model and tool durations plus a fixed overhead per call.
 */
function costRecordOf(
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
    ...turns.map((t) => ({ durationMs: (t.durationMs ?? 0) + overheadMs, memoryMb: 1024 })),
    { durationMs: overheadMs, memoryMb: 1024 }, // the Orchestrate call that returns "done"
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
async function measuredUsage(deps: AgentDeps, run: RunRecord, extraTransitions: number): Promise<AwsUsage | undefined> {
  if (!deps.executionUsage || !run.executionId.includes(":execution:")) return undefined;
  try {
    return await deps.executionUsage(run.executionId, extraTransitions);
  } catch {
    return undefined; // the record then says source "shape": a cost figure never fails a finished run
  }
}

/** Time the run spent waiting on humans: excluded from the working-time metric. */
async function waitedMs(deps: AgentDeps, turns: TurnRecord[]): Promise<number> {
  let total = 0;
  for (const t of turns) {
    for (const d of t.dispositions) {
      if (d.kind !== "approval") continue;
      const a = await deps.ledger.getApproval(d.approvalId);
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

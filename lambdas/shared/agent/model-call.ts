/** One model turn's call: the single retry layer and the "prompt is too long" ladder. */
import { DEFAULTS } from "../constants.js";
import type { RunRecord } from "../ledger/records.js";
import type { McpTool } from "../mcp/client.js";
import { PromptTooLongError } from "../model/anthropic.js";
import { RetryingModelClient } from "../model/retry.js";
import { usageFromResponse } from "../model/tokens.js";
import type { ContentBlock, Message, ModelResponse } from "../model/types.js";
import { addDelta, flushSink, type StepSink } from "./checkpoint.js";
import { type AgentDeps, telemetryOf } from "./deps.js";
import { crashPoint } from "./faults.js";
import { rulesBlock, SYSTEM_PROMPT } from "./prompt.js";
import { ESCALATE_TOOL, toolSpecs } from "./tool-lookup.js";

/**
 * One model turn with the single retry layer (RetryingModelClient) and the "prompt is too long"
 * ladder: compact the conversation and retry once; if it still does not fit, a human is asked
 * (a system escalation), and if that already happened the run fails with the reason.
 */
export async function callModel(
  deps: AgentDeps,
  run: RunRecord,
  turnNo: number,
  messages: Message[],
  mounted: readonly McpTool[],
  /** Retries, compactions and their audit lines go with the turn's record. */
  sink: StepSink,
): Promise<ModelResponse> {
  const { customer } = deps;
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
      addDelta(sink, { retries: 1 });
      sink.audit.push({
        actor: "system",
        action: "model.retry",
        detail: { turn: turnNo, attempt: e.attempt, delayMs: e.delayMs, error: e.error.message },
      });
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
  try {
    for (let compactions = 0; ; compactions++) {
      try {
        const sent = request(attempt);
        const raw = await client.create(sent);
        if (raw.stop_reason === "model_context_window_exceeded") {
          // The answer stopped because the context window filled up: the same ladder as "prompt is too long".
          addDelta(sink, { modelCalls: 1 });
          throw new PromptTooLongError("the model stopped: model_context_window_exceeded", { status: 200 });
        }
        // Billed usage when the model reports it; otherwise the offline tokenizer, labelled an estimate.
        const accounted = usageFromResponse(raw, sent);
        const response: ModelResponse = {
          ...raw,
          content: storableContent(raw.content, (tool, path) =>
            sink.audit.push({ actor: "system", action: "model.unsafe_key", detail: { turn: turnNo, tool, path } }),
          ),
          usage: accounted.usage,
          usageEstimated: accounted.estimated,
        };
        // Counted with the turn (one write): a crash before it is stored shows as a repeated call in billing.
        crashPoint("after-model-answer", turnNo);
        return response;
      } catch (err) {
        if (!(err instanceof PromptTooLongError)) throw err;
        sink.audit.push({
          actor: "system",
          action: "model.prompt_too_long",
          detail: { turn: turnNo, compactions, error: err.message },
        });
        if (compactions < DEFAULTS.promptTooLongRetries) {
          addDelta(sink, { compactions: 1 });
          attempt = compactMessages(attempt);
          continue;
        }
        return promptTooLongEscalation(turnNo, err.message);
      }
    }
  } catch (err) {
    // No turn will carry them: what the failed attempt counted is written on its own.
    await flushSink(deps, run.runId, sink);
    throw err;
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

/** The name a `__proto__` key of a model's tool arguments is stored under. */
const UNSAFE_KEY_STORED_AS = "[__proto__]";

/**
 * The answer as it can be stored and replayed: a tool call's arguments are JSON, and JSON may hold a key named
 * `__proto__`, which a parsed object carries as an own property but the DynamoDB marshaller assigns, setting a
 * prototype (DynamoDB then refuses the record: a model could fail any run with it). Such a key is renamed
 * `[__proto__]`, wherever it is in the arguments, and said in the audit; no tool takes that name, so the call is
 * refused as an unknown argument, as any other. Blocks without one are returned as they are.
 */
export function storableContent(
  content: ModelResponse["content"],
  onRenamed: (tool: string, path: string) => void,
): ModelResponse["content"] {
  const rename = (v: unknown, path: string, tool: string): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => rename(x, `${path}[${i}]`, tool));
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const at = path ? `${path}.${k}` : k;
      if (k === "__proto__") onRenamed(tool, at);
      // Never "__proto__" here, so a plain assignment makes an own property.
      out[k === "__proto__" ? UNSAFE_KEY_STORED_AS : k] = rename(x, at, tool);
    }
    return out;
  };
  const hasUnsafeKey = (v: unknown): boolean =>
    v !== null && typeof v === "object" && (Object.hasOwn(v, "__proto__") || Object.values(v).some(hasUnsafeKey));
  return content.map((b) =>
    b.type === "tool_use" && hasUnsafeKey(b.input) ? { ...b, input: rename(b.input, "", b.name) } : b,
  );
}

import { lazyModule } from "../lazy.js";
import type { ModelRequest, ModelResponse, Usage } from "./types.js";

/**
 * Claude's tokenizer is not published, so offline counts use OpenAI's cl100k_base BPE from
 * `gpt-tokenizer`: close enough to size a prompt and drive a budget, never a billed number.
 * Every figure computed here is labelled with this method and `estimated: true`.
 */
export const TOKEN_ESTIMATE_METHOD = "gpt-tokenizer@4 cl100k_base (approximation of Claude's tokenizer)";

// About 1 MB of ranks: loaded on the first count, not at every cold start (most functions never count).
const tokenizer = lazyModule<typeof import("gpt-tokenizer/encoding/cl100k_base")>("gpt-tokenizer/encoding/cl100k_base");

/** Text from emails may contain `<|endoftext|>` and friends; count them as plain text, never throw. */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** Offline token estimate for one text (see TOKEN_ESTIMATE_METHOD). */
export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  return tokenizer.countTokens(text, PLAIN_TEXT);
}

/** A token figure that says whether it was billed by the model or estimated here. */
export interface TokenCount {
  tokens: number;
  estimated: boolean;
  method: string;
}

export function estimateTokenCount(text: string): TokenCount {
  return { tokens: estimateTokens(text), estimated: true, method: TOKEN_ESTIMATE_METHOD };
}

/**
 * Input tokens of a request as the offline tokenizer sees them: system prompt, rules, tool
 * definitions (as the JSON the API receives) and every message block. Framing tokens the API
 * adds around blocks are not modelled.
 */
export function estimateRequestTokens(request: ModelRequest): number {
  const parts: string[] = [request.system, request.rules];
  for (const tool of request.tools) parts.push(JSON.stringify(tool));
  for (const message of request.messages) {
    for (const block of message.content) {
      if (block.type === "text") parts.push(block.text);
      else if (block.type === "tool_use") parts.push(block.name, JSON.stringify(block.input ?? null));
      else if (block.type === "tool_result") parts.push(block.content);
      // A document or image: Claude counts it from the pages; offline it is not estimated.
    }
  }
  return parts.reduce((sum, text) => sum + estimateTokens(text), 0);
}

/** Output tokens of a response as the offline tokenizer sees them. */
export function estimateResponseTokens(response: Pick<ModelResponse, "content">): number {
  return response.content.reduce(
    (sum, block) =>
      sum +
      (block.type === "text" ? estimateTokens(block.text) : estimateTokens(block.name + JSON.stringify(block.input))),
    0,
  );
}

/** Usage for the cost ledger, with where it came from. */
export interface AccountedUsage {
  usage: Usage;
  /** `model`: the provider's billed figures (cache reads/writes included); `estimate`: counted here. */
  source: "model" | "estimate";
  estimated: boolean;
  method: string;
}

/**
 * Prefers the usage the model reported (the only billable truth, including cache reads and
 * writes). Falls back to the offline tokenizer when there is no response (a failed or
 * interrupted call) or the response's own usage is itself an estimate (the offline reference
 * model counts characters); the fallback has no cache figures, since caching is the API's doing.
 */
export function usageFromResponse(response: ModelResponse | undefined, request: ModelRequest): AccountedUsage {
  if (response && response.usageEstimated !== true && isUsage(response.usage)) {
    const usage: Usage = { input_tokens: response.usage.input_tokens, output_tokens: response.usage.output_tokens };
    if (response.usage.cache_creation_input_tokens !== undefined) {
      usage.cache_creation_input_tokens = response.usage.cache_creation_input_tokens;
    }
    if (response.usage.cache_read_input_tokens !== undefined) {
      usage.cache_read_input_tokens = response.usage.cache_read_input_tokens;
    }
    return { usage, source: "model", estimated: false, method: "model usage" };
  }
  return {
    usage: {
      input_tokens: estimateRequestTokens(request),
      output_tokens: response ? estimateResponseTokens(response) : 0,
    },
    source: "estimate",
    estimated: true,
    method: TOKEN_ESTIMATE_METHOD,
  };
}

function isUsage(usage: Usage | undefined): usage is Usage {
  return (
    usage !== undefined &&
    Number.isFinite(usage.input_tokens) &&
    Number.isFinite(usage.output_tokens) &&
    usage.input_tokens >= 0 &&
    usage.output_tokens >= 0
  );
}

import type Anthropic from "@anthropic-ai/sdk";
import { PoAgentError, TransientError } from "../errors.js";
import type {
  ContentBlock,
  Message,
  ModelClient,
  ModelRequest,
  ModelResponse,
  TextBlock,
  ToolUseBlock,
  Usage,
} from "./types.js";

/**
 * SDK retries per call: none. Model calls are retried in exactly one layer, RetryingModelClient
 * (model/retry.ts: backoff with full jitter, retry-after respected, bounded attempts), which then
 * fails with ModelUnavailableError, a name Step Functions does not retry. So a persistently
 * overloaded API sees at most DEFAULTS.modelRetry.maxAttempts requests per turn, not a product of layers.
 */
export const DEFAULT_SDK_MAX_RETRIES = 0;

/**
 * Per-request timeout of the SDK (its default is 600 s, the Orchestrate Lambda's old timeout: a hung
 * call killed the Lambda before the retry layer could act). With DEFAULTS.modelRetry's 4 attempts and
 * waits of at most 60 s a turn takes under 4 × 90 + 3 × 60 = 540 s, below the Lambda's 840 s.
 */
export const DEFAULT_SDK_TIMEOUT_MS = 90_000;

/**
 * The Anthropic SDK (about 380 KB minified) is imported on first use, not at module init: a function
 * running the offline reference model, replaying stored turns or reading a text document never loads
 * it (the bundles put it in a chunk of its own beside index.mjs). Both clients and the error mapping use it.
 */
let sdkModule: Promise<typeof import("@anthropic-ai/sdk")> | undefined;
function anthropicSdk(): Promise<typeof import("@anthropic-ai/sdk")> {
  // A chunk that failed to load (a transient read error) is tried again by the next call.
  sdkModule ??= import("@anthropic-ai/sdk").catch((err: unknown) => {
    sdkModule = undefined;
    throw err;
  });
  return sdkModule;
}

/** Statuses worth retrying: throttling, timeouts, server errors and 529 overloaded. */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504, 529]);

/** The request no longer fits the model's context window; the caller must shrink it, not retry. */
export class PromptTooLongError extends PoAgentError {
  override readonly name: string = "PromptTooLongError";
  readonly status: number;
  constructor(message: string, options: { cause?: unknown; status: number }) {
    super(message, options);
    this.status = options.status;
  }
}

/** The model API rejected the request (bad key, bad request, no permission): retrying cannot help. */
export class ModelRequestError extends PoAgentError {
  override readonly name: string = "ModelRequestError";
  readonly status: number | undefined;
  constructor(message: string, options: { cause?: unknown; status?: number }) {
    super(message, options);
    this.status = options.status;
  }
}

/**
 * A retryable model failure. Its `name` stays `TransientError` on purpose: the state machine's
 * Retry matches on the error name, and this subclass only adds the status and retry-after hint.
 */
export class ModelTransientError extends TransientError {
  override readonly name: string = "TransientError";
  readonly status: number | undefined;
  /** Seconds the API asked us to wait (`retry-after` / `retry-after-ms`), when it said. */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, options: { cause?: unknown; status?: number; retryAfterSeconds?: number }) {
    super(message, options);
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The response fields we read; the SDK's `Message` is assignable to it, and test fakes stay small. */
export interface SdkMessageLike {
  model: string;
  content: ReadonlyArray<{ type: string; text?: string; id?: string; name?: string; input?: unknown }>;
  stop_reason: string | null;
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_creation_input_tokens?: number | null;
    cache_read_input_tokens?: number | null;
  };
}

/** The one SDK method we call; both `Anthropic` and `AnthropicBedrock` satisfy it, and so can a fake. */
export interface SdkLike {
  messages: {
    create(params: Anthropic.MessageCreateParamsNonStreaming): PromiseLike<SdkMessageLike>;
  };
}

export interface AnthropicModelClientOptions {
  apiKey?: string;
  /** Any Anthropic-compatible endpoint. */
  baseURL?: string;
  /** An SDK-like object (tests, or a pre-configured SDK client). Wins over the other options. */
  client?: SdkLike;
  /** @default DEFAULT_SDK_MAX_RETRIES */
  maxRetries?: number;
  /** Custom fetch (recorded cassettes, tests). @default - the global fetch */
  fetch?: typeof fetch;
  /** @default DEFAULT_SDK_TIMEOUT_MS */
  timeoutMs?: number;
}

export interface BedrockModelClientOptions {
  /** @default - the SDK reads AWS_REGION */
  region?: string;
  client?: SdkLike;
  /** @default DEFAULT_SDK_MAX_RETRIES */
  maxRetries?: number;
  /** @default DEFAULT_SDK_TIMEOUT_MS */
  timeoutMs?: number;
}

/** Builds the Messages request: system prompt, rules and tool definitions each end a cache breakpoint. */
/**
 * The API accepts tool names of letters, digits, `_` and `-` only; mounted MCP tools are named
 * `server.tool` everywhere else in po-agent (ledger, state machine, audit). So a dot travels as
 * `__` on the wire and is turned back on the way in, only for names the request offered.
 */
export function wireToolName(name: string): string {
  return name.replaceAll(".", "__");
}

function fromWireNames(request: ModelRequest): Map<string, string> {
  return new Map(request.tools.filter((t) => t.name.includes(".")).map((t) => [wireToolName(t.name), t.name]));
}

export function toSdkRequest(request: ModelRequest): Anthropic.MessageCreateParamsNonStreaming {
  const system: Anthropic.TextBlockParam[] = [];
  // The API rejects empty text blocks, so an empty rules string is left out rather than sent.
  for (const text of [request.system, request.rules]) {
    if (text.length > 0) system.push({ type: "text", text, cache_control: { type: "ephemeral" } });
  }
  const tools: Anthropic.Tool[] = request.tools.map((tool, index) => ({
    name: wireToolName(tool.name),
    description: tool.description,
    input_schema: { ...tool.input_schema, type: "object" },
    // One breakpoint on the last tool caches every tool definition before it.
    ...(index === request.tools.length - 1 ? { cache_control: { type: "ephemeral" } } : {}),
  }));
  return {
    model: request.model,
    max_tokens: request.maxTokens,
    ...(system.length > 0 ? { system } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    messages: request.messages.map(toMessageParam),
  };
}

function toMessageParam(message: Message): Anthropic.MessageParam {
  return { role: message.role, content: message.content.map(toContentParam) };
}

function toContentParam(block: ContentBlock): Anthropic.ContentBlockParam {
  if (block.type === "text") return { type: "text", text: block.text };
  if (block.type === "tool_use")
    return { type: "tool_use", id: block.id, name: wireToolName(block.name), input: block.input };
  if (block.type === "document") {
    return {
      type: "document",
      source: block.source,
      ...(block.title ? { title: block.title } : {}),
      cache_control: { type: "ephemeral" },
    };
  }
  if (block.type === "image") return { type: "image", source: block.source };
  return {
    type: "tool_result",
    tool_use_id: block.tool_use_id,
    content: block.content,
    ...(block.is_error === undefined ? {} : { is_error: block.is_error }),
  };
}

/** Keeps text and tool_use blocks; thinking and server-tool blocks are not part of our contract. */
export function fromSdkMessage(message: SdkMessageLike, names: Map<string, string> = new Map()): ModelResponse {
  const content: (TextBlock | ToolUseBlock)[] = [];
  for (const block of message.content) {
    if (block.type === "text" && typeof block.text === "string") {
      content.push({ type: "text", text: block.text });
    } else if (block.type === "tool_use" && typeof block.id === "string" && typeof block.name === "string") {
      content.push({ type: "tool_use", id: block.id, name: names.get(block.name) ?? block.name, input: block.input });
    }
  }
  const usage: Usage = { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens };
  if (typeof message.usage.cache_creation_input_tokens === "number") {
    usage.cache_creation_input_tokens = message.usage.cache_creation_input_tokens;
  }
  if (typeof message.usage.cache_read_input_tokens === "number") {
    usage.cache_read_input_tokens = message.usage.cache_read_input_tokens;
  }
  return { model: message.model, content, stop_reason: message.stop_reason ?? "end_turn", usage };
}

/** Reads `retry-after-ms` or `retry-after` (seconds or an HTTP date) as seconds. */
export function retryAfterSeconds(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && Number.isFinite(Number.parseFloat(ms))) return Number.parseFloat(ms) / 1000;
  const value = headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

/** Anthropic says "prompt is too long: N tokens > M maximum"; Bedrock says "Input is too long for requested model". */
const PROMPT_TOO_LONG = /prompt is too long|input is too long/i;

/**
 * Maps SDK failures onto our error contract; anything that is not an API error passes through. `sdk` is
 * the loaded SDK module, whose error classes are matched (the Bedrock SDK throws the same classes).
 */
export function mapModelError(
  error: unknown,
  provider: string,
  sdk: Pick<typeof Anthropic, "APIConnectionError" | "APIError">,
): unknown {
  if (error instanceof sdk.APIConnectionError) {
    // Includes APIConnectionTimeoutError: the request may not have reached the API; safe to retry.
    return new ModelTransientError(`${provider} model API unreachable: ${error.message}`, { cause: error });
  }
  if (!(error instanceof sdk.APIError) || error.status === undefined) return error;
  const status = error.status;
  const detail = error.apiMessage ?? error.message;
  if (RETRYABLE_STATUSES.has(status) || status >= 500) {
    const wait = retryAfterSeconds(error.headers);
    const hint = wait === undefined ? "" : ` (retry after ${wait}s)`;
    return new ModelTransientError(`${provider} model API returned ${status}${hint}: ${detail}`, {
      cause: error,
      status,
      ...(wait === undefined ? {} : { retryAfterSeconds: wait }),
    });
  }
  if (status === 413 || (status === 400 && PROMPT_TOO_LONG.test(detail))) {
    return new PromptTooLongError(`${provider} model API: prompt is too long (${status}): ${detail}`, {
      cause: error,
      status,
    });
  }
  return new ModelRequestError(`${provider} model API rejected the request (${status}): ${detail}`, {
    cause: error,
    status,
  });
}

/** Shared request/response/error mapping for the Anthropic API and Bedrock. */
abstract class SdkModelClient implements ModelClient {
  abstract readonly provider: string;
  protected constructor(private readonly sdk: SdkLike) {}

  async create(request: ModelRequest): Promise<ModelResponse> {
    let message: SdkMessageLike;
    try {
      message = await this.sdk.messages.create(toSdkRequest(request));
    } catch (error) {
      throw mapModelError(error, this.provider, (await anthropicSdk()).default);
    }
    return fromSdkMessage(message, fromWireNames(request));
  }
}

/** Claude through the Anthropic API, or any Anthropic-compatible `baseURL`. */
export class AnthropicModelClient extends SdkModelClient {
  readonly provider = "anthropic";
  constructor(options: AnthropicModelClientOptions = {}) {
    super(
      options.client ??
        onFirstCall(async () => {
          const { default: Anthropic } = await anthropicSdk();
          return new Anthropic({
            // Without an explicit key the SDK falls back to ANTHROPIC_API_KEY; select.ts resolves it first.
            ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
            ...(options.baseURL === undefined ? {} : { baseURL: options.baseURL }),
            maxRetries: options.maxRetries ?? DEFAULT_SDK_MAX_RETRIES,
            timeout: options.timeoutMs ?? DEFAULT_SDK_TIMEOUT_MS,
            ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
          });
        }),
    );
  }
}

/**
 * Claude on Amazon Bedrock. Model ids (`anthropic.claude-sonnet-4-5-…-v1:0`, inference profiles) pass through.
 * The Bedrock SDK (with the AWS credential chain) is imported on the first call, so functions that never
 * call Bedrock do not pay for loading it.
 */
export class BedrockModelClient extends SdkModelClient {
  readonly provider = "bedrock";
  constructor(options: BedrockModelClientOptions = {}) {
    super(
      options.client ??
        onFirstCall(async () => {
          const { default: AnthropicBedrock } = await import("@anthropic-ai/bedrock-sdk");
          return new AnthropicBedrock({
            ...(options.region === undefined ? {} : { awsRegion: options.region }),
            maxRetries: options.maxRetries ?? DEFAULT_SDK_MAX_RETRIES,
            timeout: options.timeoutMs ?? DEFAULT_SDK_TIMEOUT_MS,
          });
        }),
    );
  }
}

/** An SdkLike whose SDK client is built (its module imported) on the first request, once. */
function onFirstCall(build: () => Promise<SdkLike>): SdkLike {
  let sdk: Promise<SdkLike> | undefined;
  return {
    messages: {
      create: async (params) => {
        sdk ??= build().catch((err: unknown) => {
          sdk = undefined; // a failed import or construction is tried again on the next call
          throw err;
        });
        return (await sdk).messages.create(params);
      },
    },
  };
}

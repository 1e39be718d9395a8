/**
 * A ModelClient speaks a subset of the Anthropic Messages API, so the real SDK, Bedrock,
 * any compatible baseURL and the offline reference model are interchangeable.
 */
export type TextBlock = { type: "text"; text: string };
export type ToolUseBlock = { type: "tool_use"; id: string; name: string; input: unknown };
export type ToolResultBlock = {
  type: "tool_result";
  tool_use_id: string;
  content: string;
  is_error?: boolean;
};
/** A PDF or image sent to Claude for extraction (user messages only). */
export type MediaBlock =
  | { type: "document"; source: { type: "base64"; media_type: "application/pdf"; data: string }; title?: string }
  | {
      type: "image";
      source: { type: "base64"; media_type: "image/jpeg" | "image/png" | "image/gif" | "image/webp"; data: string };
    };
export type ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock | MediaBlock;

export interface Message {
  role: "user" | "assistant";
  content: ContentBlock[];
}

export interface ToolSpec {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

export interface ModelRequest {
  model: string;
  system: string;
  /** The customer's rules, sent as a separately cached system block. */
  rules: string;
  tools: ToolSpec[];
  messages: Message[];
  maxTokens: number;
}

export interface ModelResponse {
  model: string;
  content: (TextBlock | ToolUseBlock)[];
  stop_reason: "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | string;
  usage: Usage;
  /** True when the usage figures are estimates (offline model), not billed numbers. */
  usageEstimated?: boolean;
}

export interface ModelClient {
  /** Identifies the provider in run records and output: `anthropic`, `bedrock`, `reference`, `scripted`. */
  readonly provider: string;
  create(request: ModelRequest): Promise<ModelResponse>;
}

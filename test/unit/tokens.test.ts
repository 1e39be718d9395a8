import { describe, expect, it } from "vitest";
import {
  estimateRequestTokens,
  estimateTokenCount,
  estimateTokens,
  TOKEN_ESTIMATE_METHOD,
  usageFromResponse,
} from "../../lambdas/shared/model/tokens.js";
import type { ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";

const request: ModelRequest = {
  model: "claude-sonnet-5",
  system: "You are po-agent.",
  rules: "Approve orders under EUR 1,000.",
  tools: [{ name: "extract", description: "Read the PO.", input_schema: { type: "object" } }],
  messages: [{ role: "user", content: [{ type: "text", text: "Process purchase order PO-4471802." }] }],
  maxTokens: 100,
};

describe("estimateTokens", () => {
  it("counts BPE tokens, more for longer text, zero for nothing", () => {
    // Act
    const short = estimateTokens("hello world");
    const long = estimateTokens("hello world ".repeat(50));

    // Assess
    expect(short).toBe(2);
    expect(long).toBeGreaterThan(90);
    expect(estimateTokens("")).toBe(0);
  });

  it("treats special-token markers in email text as plain text instead of throwing", () => {
    // Act
    const count = estimateTokens("see <|endoftext|> below");

    // Assess
    expect(count).toBeGreaterThan(3);
  });

  it("labels every offline count as an estimate", () => {
    // Act
    const count = estimateTokenCount("a purchase order");

    // Assess
    expect(count).toMatchObject({ estimated: true, method: TOKEN_ESTIMATE_METHOD });
    expect(count.tokens).toBe(estimateTokens("a purchase order"));
  });
});

describe("usageFromResponse", () => {
  it("prefers the model's billed usage, cache reads and writes included", () => {
    // Prepare
    const response: ModelResponse = {
      model: "claude-sonnet-5",
      content: [{ type: "text", text: "OUTCOME: saved — ok" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 12, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 2900 },
    };

    // Act
    const accounted = usageFromResponse(response, request);

    // Assess
    expect(accounted).toEqual({
      usage: { input_tokens: 12, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 2900 },
      source: "model",
      estimated: false,
      method: "model usage",
    });
  });

  it("estimates with the tokenizer when the response's usage is itself an estimate", () => {
    // Prepare
    const response: ModelResponse = {
      model: "po-agent-reference-v1",
      content: [{ type: "text", text: "OUTCOME: saved — ok" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 999, output_tokens: 999 },
      usageEstimated: true,
    };

    // Act
    const accounted = usageFromResponse(response, request);

    // Assess
    expect(accounted.source).toBe("estimate");
    expect(accounted.estimated).toBe(true);
    expect(accounted.usage.input_tokens).toBe(estimateRequestTokens(request));
    expect(accounted.usage.output_tokens).toBe(estimateTokens("OUTCOME: saved — ok"));
    expect(accounted.usage.cache_read_input_tokens).toBeUndefined();
  });

  it("estimates the input of a call that never answered, with zero output", () => {
    // Act
    const accounted = usageFromResponse(undefined, request);

    // Assess
    expect(accounted.usage.output_tokens).toBe(0);
    expect(accounted.usage.input_tokens).toBeGreaterThan(estimateTokens("Process purchase order PO-4471802."));
  });
});

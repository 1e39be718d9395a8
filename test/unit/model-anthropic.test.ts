import AnthropicBedrock from "@anthropic-ai/bedrock-sdk";
import Anthropic from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { ConfigError, PoAgentError, TransientError } from "../../lambdas/shared/errors.js";
import {
  AnthropicModelClient,
  BedrockModelClient,
  ModelRequestError,
  ModelTransientError,
  PromptTooLongError,
} from "../../lambdas/shared/model/anthropic.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import { NO_KEY_NOTE, resolveApiKey, selectModelClient } from "../../lambdas/shared/model/select.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";

interface Recorded {
  url: string;
  headers: Headers;
  body: Record<string, unknown>;
}

/** A fetch that records each request and answers from a list of canned HTTP responses. */
function cannedFetch(responses: (() => Response)[]) {
  const requests: Recorded[] = [];
  const fetchImpl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    requests.push({
      url,
      headers: new Headers(init?.headers),
      body: JSON.parse(typeof init?.body === "string" ? init.body : "{}") as Record<string, unknown>,
    });
    const next = responses[requests.length - 1];
    if (!next) throw new Error(`unexpected request ${requests.length} to ${url}`);
    return next();
  };
  return { fetch: fetchImpl, requests };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): () => Response {
  return () =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function apiError(status: number, type: string, message: string, headers: Record<string, string> = {}) {
  return json(status, { type: "error", error: { type, message } }, headers);
}

const okMessage = {
  id: "msg_1",
  type: "message",
  role: "assistant",
  model: "claude-sonnet-4-5-20250929",
  content: [
    { type: "thinking", thinking: "weighing the supplier", signature: "sig" },
    { type: "text", text: "Validating the PO." },
    { type: "tool_use", id: "toolu_1", name: "validate_po", input: { poNumber: "PO-7" } },
  ],
  stop_reason: "tool_use",
  stop_sequence: null,
  usage: {
    input_tokens: 120,
    output_tokens: 45,
    cache_creation_input_tokens: 2_000,
    cache_read_input_tokens: 3_000,
  },
};

const request: ModelRequest = {
  model: "claude-sonnet-4-5",
  system: "You are the purchase-order agent.",
  rules: "POs over 10,000 EUR need approval.",
  tools: [
    { name: "extract_po", description: "Extract", input_schema: { type: "object", properties: {} } },
    { name: "validate_po", description: "Validate", input_schema: { type: "object", properties: {} } },
  ],
  messages: [
    { role: "user", content: [{ type: "text", text: "New PO arrived." }] },
    { role: "assistant", content: [{ type: "tool_use", id: "toolu_0", name: "extract_po", input: {} }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_0", content: "{}", is_error: false }] },
  ],
  maxTokens: 1024,
};

function anthropicWith(responses: (() => Response)[], maxRetries = 0) {
  const canned = cannedFetch(responses);
  const client = new AnthropicModelClient({
    apiKey: "sk-test",
    baseURL: "http://model.test",
    maxRetries,
    fetch: canned.fetch,
  });
  return { client, requests: canned.requests };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error: unknown) => error,
  );
}

describe("AnthropicModelClient request mapping", () => {
  it("sends mounted tool names (erp.lookup_vendor) in the API's alphabet and maps the answer back", async () => {
    // Prepare: the model answers with the wire name.
    const answer = {
      ...okMessage,
      content: [{ type: "tool_use", id: "toolu_9", name: "erp__lookup_vendor", input: { vendor: "V-1" } }],
      stop_reason: "tool_use",
    };
    const { client, requests } = anthropicWith([json(200, answer)]);
    const withMounted: ModelRequest = {
      ...request,
      tools: [...request.tools, { name: "erp.lookup_vendor", description: "ERP", input_schema: { type: "object" } }],
      messages: [
        ...request.messages,
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "erp.lookup_vendor", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "{}" }] },
      ],
    };

    // Act
    const response = await client.create(withMounted);

    // Assess
    const sent = requests[0]?.body as { tools: { name: string }[]; messages: { content: { name?: string }[] }[] };
    expect(sent.tools.map((t) => t.name)).toContain("erp__lookup_vendor");
    expect(sent.tools.every((t) => /^[a-zA-Z0-9_-]{1,64}$/.test(t.name))).toBe(true);
    expect(sent.messages.at(-2)?.content[0]?.name).toBe("erp__lookup_vendor");
    expect(response.content[0]).toMatchObject({ type: "tool_use", name: "erp.lookup_vendor" });
  });

  it("caches the system prompt, the rules and all tools, and passes messages through", async () => {
    // Prepare
    const { client, requests } = anthropicWith([json(200, okMessage)]);

    // Act
    await client.create(request);

    // Assess
    expect(requests).toHaveLength(1);
    const sent = requests[0];
    expect(sent?.url).toBe("http://model.test/v1/messages");
    // SDK 1.x sends the key as a bearer token; older ones used x-api-key.
    expect(`${sent?.headers.get("authorization")} ${sent?.headers.get("x-api-key")}`).toContain("sk-test");
    expect(sent?.body).toMatchObject({ model: "claude-sonnet-4-5", max_tokens: 1024 });
    expect(sent?.body.system).toEqual([
      { type: "text", text: request.system, cache_control: { type: "ephemeral" } },
      { type: "text", text: request.rules, cache_control: { type: "ephemeral" } },
    ]);
    const tools = sent?.body.tools as Record<string, unknown>[];
    expect(tools.map((t) => t.name)).toEqual(["extract_po", "validate_po"]);
    expect(tools[0]).not.toHaveProperty("cache_control");
    expect(tools[1]?.cache_control).toEqual({ type: "ephemeral" });
    expect(tools[1]?.input_schema).toEqual({ type: "object", properties: {} });
    expect(sent?.body.messages).toEqual(request.messages);
  });

  it("leaves out an empty rules block and an empty tool list instead of sending invalid blocks", async () => {
    // Prepare
    const { client, requests } = anthropicWith([json(200, okMessage)]);

    // Act
    await client.create({ ...request, rules: "", tools: [] });

    // Assess
    expect(requests[0]?.body.system).toEqual([
      { type: "text", text: request.system, cache_control: { type: "ephemeral" } },
    ]);
    expect(requests[0]?.body).not.toHaveProperty("tools");
  });
});

describe("AnthropicModelClient response mapping", () => {
  it("keeps text and tool_use blocks, drops thinking, and copies usage including cache tokens", async () => {
    // Prepare
    const { client } = anthropicWith([json(200, okMessage)]);

    // Act
    const response = await client.create(request);

    // Assess
    expect(client.provider).toBe("anthropic");
    expect(response).toEqual({
      model: "claude-sonnet-4-5-20250929",
      content: [
        { type: "text", text: "Validating the PO." },
        { type: "tool_use", id: "toolu_1", name: "validate_po", input: { poNumber: "PO-7" } },
      ],
      stop_reason: "tool_use",
      usage: {
        input_tokens: 120,
        output_tokens: 45,
        cache_creation_input_tokens: 2_000,
        cache_read_input_tokens: 3_000,
      },
    });
  });

  it("omits cache token fields the API reported as null", async () => {
    // Prepare
    const { client } = anthropicWith([
      json(200, {
        ...okMessage,
        usage: { input_tokens: 5, output_tokens: 6, cache_creation_input_tokens: null, cache_read_input_tokens: null },
      }),
    ]);

    // Act
    const response = await client.create(request);

    // Assess
    expect(response.usage).toEqual({ input_tokens: 5, output_tokens: 6 });
  });
});

describe("AnthropicModelClient error mapping", () => {
  it("maps 429 to a TransientError carrying the status and retry-after", async () => {
    // Prepare
    const { client } = anthropicWith([
      apiError(429, "rate_limit_error", "Number of requests has exceeded your rate limit", { "retry-after": "7" }),
    ]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toBeInstanceOf(ModelTransientError);
    const transient = error as ModelTransientError;
    expect(transient.name).toBe("TransientError");
    expect(transient.status).toBe(429);
    expect(transient.retryAfterSeconds).toBe(7);
    expect(transient.message).toContain("429");
    expect(transient.message).toContain("retry after 7s");
    expect(transient.cause).toBeInstanceOf(Anthropic.RateLimitError);
  });

  it("maps 529 overloaded to a TransientError", async () => {
    // Prepare
    const { client } = anthropicWith([apiError(529, "overloaded_error", "Overloaded")]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect((error as ModelTransientError).status).toBe(529);
    expect((error as ModelTransientError).retryAfterSeconds).toBeUndefined();
  });

  it("maps a 400 'prompt is too long' to PromptTooLongError, not a retry", async () => {
    // Prepare
    const { client } = anthropicWith([
      apiError(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
    ]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(PromptTooLongError);
    expect(error).toBeInstanceOf(PoAgentError);
    expect(error).not.toBeInstanceOf(TransientError);
    expect((error as PromptTooLongError).name).toBe("PromptTooLongError");
    expect((error as PromptTooLongError).status).toBe(400);
  });

  it("maps 401 to ModelRequestError", async () => {
    // Prepare
    const { client } = anthropicWith([apiError(401, "authentication_error", "invalid x-api-key")]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(ModelRequestError);
    expect(error).not.toBeInstanceOf(TransientError);
    expect((error as ModelRequestError).name).toBe("ModelRequestError");
    expect((error as ModelRequestError).status).toBe(401);
    expect((error as ModelRequestError).message).toContain("invalid x-api-key");
  });

  it("maps other 400s to ModelRequestError, not PromptTooLongError", async () => {
    // Prepare
    const { client } = anthropicWith([apiError(400, "invalid_request_error", "tools.0.name: String should match")]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(ModelRequestError);
  });

  it("maps a connection failure to a TransientError", async () => {
    // Prepare
    const { client } = anthropicWith([
      () => {
        throw new TypeError("fetch failed");
      },
    ]);

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).cause).toBeInstanceOf(Anthropic.APIConnectionError);
  });

  it("lets the SDK retry a transient failure when maxRetries allows it", async () => {
    // Prepare: retry-after-ms keeps the SDK's backoff short.
    const { client, requests } = anthropicWith(
      [apiError(529, "overloaded_error", "Overloaded", { "retry-after-ms": "1" }), json(200, okMessage)],
      1,
    );

    // Act
    const response = await client.create(request);

    // Assess
    expect(requests).toHaveLength(2);
    expect(response.stop_reason).toBe("tool_use");
  });
});

describe("BedrockModelClient", () => {
  it("passes the Bedrock model id through to the invoke path with the same cached request", async () => {
    // Prepare
    const canned = cannedFetch([json(200, okMessage)]);
    const sdk = new AnthropicBedrock({
      awsRegion: "eu-west-1",
      skipAuth: true,
      baseURL: "http://bedrock.test",
      maxRetries: 0,
      fetch: canned.fetch,
    });
    const client = new BedrockModelClient({ client: sdk });
    const modelId = "anthropic.claude-sonnet-4-5-20250929-v1:0";

    // Act
    const response = await client.create({ ...request, model: modelId });

    // Assess
    expect(client.provider).toBe("bedrock");
    expect(decodeURIComponent(canned.requests[0]?.url ?? "")).toBe(`http://bedrock.test/model/${modelId}/invoke`);
    const body = canned.requests[0]?.body;
    expect(body).not.toHaveProperty("model");
    expect(body?.system).toHaveLength(2);
    expect(response.usage.cache_read_input_tokens).toBe(3_000);
  });

  it("maps Bedrock throttling to a TransientError", async () => {
    // Prepare
    const canned = cannedFetch([apiError(429, "rate_limit_error", "Too many requests")]);
    const sdk = new AnthropicBedrock({
      skipAuth: true,
      baseURL: "http://bedrock.test",
      maxRetries: 0,
      fetch: canned.fetch,
    });
    const client = new BedrockModelClient({ client: sdk });

    // Act
    const error = await rejection(client.create(request));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toContain("bedrock");
  });
});

function response(text: string): ModelResponse {
  return {
    model: "scripted",
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    usage: { input_tokens: 1, output_tokens: 1 },
  };
}

describe("ScriptedModelClient", () => {
  it("answers from a list, records each request and fails clearly when the script runs out", async () => {
    // Prepare
    const model = new ScriptedModelClient([response("one"), response("two")]);

    // Act
    const first = await model.create(request);
    const second = await model.create({ ...request, maxTokens: 7 });
    const third = rejection(model.create(request));

    // Assess
    expect(model.provider).toBe("scripted");
    expect(first.content).toEqual([{ type: "text", text: "one" }]);
    expect(second.content).toEqual([{ type: "text", text: "two" }]);
    await expect(third).resolves.toBeInstanceOf(Error);
    expect(((await third) as Error).message).toMatch(/script exhausted: call 3 but only 2/);
    expect(model.callCount).toBe(3);
    expect(model.calls[1]?.maxTokens).toBe(7);
    expect(model.remaining).toBe(0);
  });

  it("calls a script function with the request and the call index", async () => {
    // Prepare
    const model = new ScriptedModelClient((req, index) => response(`${index}:${req.messages.length}`));

    // Act
    await model.create(request);
    const second = await model.create(request);

    // Assess
    expect(second.content).toEqual([{ type: "text", text: "1:3" }]);
    expect(model.callCount).toBe(2);
  });

  it("keeps a copy of each request so later mutation does not rewrite what was recorded", async () => {
    // Prepare
    const model = new ScriptedModelClient([response("one")]);
    const mutable: ModelRequest = structuredClone(request);

    // Act
    await model.create(mutable);
    mutable.messages.push({ role: "user", content: [{ type: "text", text: "later" }] });

    // Assess
    expect(model.calls[0]?.messages).toHaveLength(3);
  });
});

describe("selectModelClient", () => {
  const reference: ModelClient = { provider: "reference", create: async () => response("ref") };
  const base = { modelId: "claude-sonnet-4-5", reference: () => reference };

  it("auto without a key uses the reference model and says why", () => {
    // Act
    const selected = selectModelClient({ ...base, provider: "auto" });

    // Assess
    expect(selected.client).toBe(reference);
    expect(selected.modelId).toBe(REFERENCE_MODEL);
    expect(selected.note).toBe(NO_KEY_NOTE);
  });

  it("auto with a key uses the Anthropic API and keeps the configured model", () => {
    // Act
    const selected = selectModelClient({ ...base, provider: "auto", apiKey: "sk-x", baseURL: "http://gw.test" });

    // Assess
    expect(selected.client).toBeInstanceOf(AnthropicModelClient);
    expect(selected.modelId).toBe("claude-sonnet-4-5");
    expect(selected.note).toContain("http://gw.test");
  });

  it("auto treats an empty key as no key", () => {
    // Act
    const selected = selectModelClient({ ...base, provider: "auto", apiKey: "" });

    // Assess
    expect(selected.client).toBe(reference);
  });

  it("reference always uses the reference model, even with a key", () => {
    // Act
    const selected = selectModelClient({ ...base, provider: "reference", apiKey: "sk-x" });

    // Assess
    expect(selected.client).toBe(reference);
    expect(selected.modelId).toBe(REFERENCE_MODEL);
  });

  it("anthropic without a key is a configuration error", () => {
    // Act + Assess
    expect(() => selectModelClient({ ...base, provider: "anthropic" })).toThrow(ConfigError);
  });

  it("bedrock uses the Bedrock client and passes the model id through", () => {
    // Act
    const selected = selectModelClient({
      ...base,
      provider: "bedrock",
      modelId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
      region: "eu-central-1",
    });

    // Assess
    expect(selected.client).toBeInstanceOf(BedrockModelClient);
    expect(selected.modelId).toBe("anthropic.claude-sonnet-4-5-20250929-v1:0");
    expect(selected.note).toContain("eu-central-1");
  });
});

describe("resolveApiKey", () => {
  it("prefers ANTHROPIC_API_KEY and never asks for the secret then", async () => {
    // Prepare
    const asked: string[] = [];

    // Act
    const key = await resolveApiKey(
      { ANTHROPIC_API_KEY: "sk-local", MODEL_API_KEY_SECRET_ARN: "arn:s" },
      async (arn) => {
        asked.push(arn);
        return "sk-secret";
      },
    );

    // Assess
    expect(key).toBe("sk-local");
    expect(asked).toEqual([]);
  });

  it("reads the secret named by MODEL_API_KEY_SECRET_ARN, bare or as JSON", async () => {
    // Act
    const bare = await resolveApiKey({ MODEL_API_KEY_SECRET_ARN: "arn:bare" }, async () => " sk-bare\n");
    const asJson = await resolveApiKey({ MODEL_API_KEY_SECRET_ARN: "arn:json" }, async () =>
      JSON.stringify({ apiKey: "sk-json" }),
    );

    // Assess
    expect(bare).toBe("sk-bare");
    expect(asJson).toBe("sk-json");
  });

  it("returns undefined when neither is configured", async () => {
    // Act
    const key = await resolveApiKey({}, async () => {
      throw new Error("must not be called");
    });

    // Assess
    expect(key).toBeUndefined();
  });

  it("rejects an empty secret without echoing secret contents", async () => {
    // Act
    const error = await rejection(resolveApiKey({ MODEL_API_KEY_SECRET_ARN: "arn:empty" }, async () => "  "));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("arn:empty");
  });

  it("rejects JSON without a key field, naming the ARN but not the value", async () => {
    // Act
    const error = await rejection(
      resolveApiKey({ MODEL_API_KEY_SECRET_ARN: "arn:j" }, async () => JSON.stringify({ other: "sk-leak" })),
    );

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).not.toContain("sk-leak");
  });
});

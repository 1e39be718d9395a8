import { describe, expect, it } from "vitest";
import { ModelRequestError, ModelTransientError } from "../../lambdas/shared/model/anthropic.js";
import {
  backoffMs,
  ModelUnavailableError,
  RetryingModelClient,
  type RetryPolicy,
} from "../../lambdas/shared/model/retry.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";

const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1_000, maxDelayMs: 20_000, maxRetryAfterMs: 60_000 };
const REQUEST: ModelRequest = { model: "m", system: "s", rules: "r", tools: [], messages: [], maxTokens: 10 };
const OK: ModelResponse = {
  model: "m",
  content: [{ type: "text", text: "ok" }],
  stop_reason: "end_turn",
  usage: { input_tokens: 1, output_tokens: 1 },
};

/** A client that fails with the given errors in order, then answers. */
function failing(errors: Error[]): ModelClient & { calls: number } {
  const client = {
    provider: "test",
    calls: 0,
    async create() {
      const err = errors[client.calls++];
      if (err) throw err;
      return OK;
    },
  };
  return client;
}

describe("RetryingModelClient: the single retry layer for model calls", () => {
  it("retries transient failures with full-jitter backoff and returns the answer", async () => {
    // Prepare
    const inner = failing([new ModelTransientError("529", { status: 529 }), new ModelTransientError("reset", {})]);
    const waits: number[] = [];
    const client = new RetryingModelClient(inner, POLICY, {
      sleep: async (ms) => void waits.push(ms),
      random: () => 0.5,
    });

    // Act
    const answer = await client.create(REQUEST);

    // Assess: attempt 1 waits up to 1 s, attempt 2 up to 2 s (half of each with random 0.5)
    expect(answer).toBe(OK);
    expect(inner.calls).toBe(3);
    expect(waits).toEqual([500, 1_000]);
  });

  it("honours retry-after instead of its own backoff, capped", async () => {
    const inner = failing([
      new ModelTransientError("429", { status: 429, retryAfterSeconds: 7 }),
      new ModelTransientError("429", { status: 429, retryAfterSeconds: 3_600 }),
    ]);
    const waits: number[] = [];
    const client = new RetryingModelClient(inner, POLICY, {
      sleep: async (ms) => void waits.push(ms),
      random: () => 0.99,
    });

    await client.create(REQUEST);

    expect(waits).toEqual([7_000, POLICY.maxRetryAfterMs]);
  });

  it("stops after maxAttempts with ModelUnavailableError, a name Step Functions does not retry", async () => {
    const inner = failing(Array.from({ length: 10 }, () => new ModelTransientError("overloaded", { status: 529 })));
    const retries: number[] = [];
    const client = new RetryingModelClient(inner, POLICY, {
      sleep: async () => {},
      onRetry: (e) => retries.push(e.attempt),
    });

    const err = await client.create(REQUEST).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as Error).name).toBe("ModelUnavailableError");
    expect((err as Error).message).toMatch(/4 attempts/);
    expect(inner.calls).toBe(4);
    expect(retries).toEqual([1, 2, 3]);
  });

  it("does not retry a request the model refused (4xx other than throttling)", async () => {
    const inner = failing([new ModelRequestError("401 invalid key", { status: 401 })]);
    const client = new RetryingModelClient(inner, POLICY, { sleep: async () => {} });

    await expect(client.create(REQUEST)).rejects.toBeInstanceOf(ModelRequestError);
    expect(inner.calls).toBe(1);
  });

  it("caps the jittered backoff at maxDelayMs", () => {
    expect(backoffMs(POLICY, 10, undefined, () => 0.999_999)).toBeLessThanOrEqual(POLICY.maxDelayMs);
    expect(backoffMs(POLICY, 10, undefined, () => 0.999_999)).toBeGreaterThanOrEqual(POLICY.maxDelayMs - 1);
  });
});

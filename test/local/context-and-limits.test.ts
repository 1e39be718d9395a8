import { afterEach, describe, expect, it } from "vitest";
import { ModelTransientError, PromptTooLongError } from "../../lambdas/shared/model/anthropic.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import { reply, sampleBytes, startTestStack, type TestStack, toolUse } from "../support/stack.js";

let current: TestStack | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** The offline model's behaviour, with a hook that may throw before it answers. */
function referenceWith(
  before: (request: ModelRequest, call: number) => void,
): ModelClient & { requests: ModelRequest[] } {
  const inner = new ReferenceModelClient();
  const requests: ModelRequest[] = [];
  return {
    provider: "scripted",
    requests,
    async create(request) {
      requests.push(request);
      before(request, requests.length);
      return inner.create(request);
    },
  };
}

const start = (client: ModelClient) =>
  startTestStack({ model: () => ({ client, modelId: "claude-sonnet-5", note: "scripted" }) });

describe('"prompt is too long": compaction, one retry, then a human', () => {
  it("compacts the conversation and retries once, and the run finishes", async () => {
    // Prepare: the fourth request (the one after validate + transform) is refused once as too long.
    let refused = 0;
    const client = referenceWith((_request, call) => {
      if (call === 4 && refused++ === 0)
        throw new PromptTooLongError("prompt is too long: 201000 tokens > 200000", { status: 400 });
    });
    current = await start(client);

    // Act: an email, so the extract result carries a prepared thread worth compacting.
    const file = "09-email-thread-csv-attachment-saved.eml";
    const runId = await current.stack.submit("acme", file, sampleBytes("acme", file));
    const run = await current.stack.waitSettled(runId, 30_000);

    // Assess
    expect(run?.status, run?.reason).toBe("saved");
    expect(run?.counters.compactions).toBe(1);
    const [refusedRequest, retried] = [client.requests[3], client.requests[4]];
    const size = (r: ModelRequest | undefined) => JSON.stringify(r?.messages ?? []).length;
    expect(size(retried)).toBeLessThan(size(refusedRequest));
    expect(JSON.stringify(retried?.messages)).toContain("elided to fit the context window");
    const audit = await current.stack.ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "model.prompt_too_long")).toHaveLength(1);
  });

  it("asks a human when the conversation still does not fit after compaction", async () => {
    const client = referenceWith((_request, call) => {
      if (call >= 2) throw new PromptTooLongError("prompt is too long: 250000 tokens > 200000", { status: 400 });
    });
    current = await start(client);

    const runId = await current.stack.submit(
      "acme",
      "01-packaging-saved.json",
      sampleBytes("acme", "01-packaging-saved.json"),
    );
    const run = await current.stack.waitSettled(runId, 30_000);

    expect(run?.status).toBe("awaiting_approval");
    expect(run?.reason).toMatch(/too long for the model even after compression/);
    expect(await current.stack.ledger.getOrder("acme", "ACM-PO-22817")).toBeUndefined();
  });
});

describe("an email thread in a run: compressed context and fetch_context", () => {
  it("sends the prepared context with extract and returns a passage in full by its id", async () => {
    // Prepare: the model extracts, then asks for the first passage the context cites.
    const seen: ModelRequest[] = [];
    let citedId = "";
    const client: ModelClient = {
      provider: "scripted",
      async create(request): Promise<ModelResponse> {
        seen.push(request);
        if (seen.length === 1) return reply([toolUse("toolu_x", "extract", {})]);
        if (seen.length === 2) {
          const result = request.messages.at(-1)?.content.find((b) => b.type === "tool_result");
          const extracted = JSON.parse(result?.type === "tool_result" ? result.content : "{}") as { context?: string };
          citedId = /\b(m\d+(?:\/a\d+)?:L\d+-\d+)/.exec(extracted.context ?? "")?.[1] ?? "m1";
          return reply([toolUse("toolu_f", "fetch_context", { id: citedId })]);
        }
        return reply([{ type: "text", text: "OUTCOME: rejected — test ends here" }]);
      },
    };
    current = await start(client);
    const file = "09-email-thread-csv-attachment-saved.eml";

    // Act
    const runId = await current.stack.submit("acme", file, sampleBytes("acme", file));
    await current.stack.waitSettled(runId, 30_000);

    // Assess
    const calls = await current.stack.ledger.getToolCalls(runId);
    const extract = JSON.parse(calls.find((c) => c.name === "extract")?.content ?? "{}") as {
      format?: string;
      context?: string;
    };
    expect(extract.format).toBe("email");
    expect(extract.context).toMatch(/m1/);
    const fetched = calls.find((c) => c.name === "fetch_context");
    expect(fetched?.isError).toBe(false);
    const body = JSON.parse(fetched?.content ?? "{}") as { passages?: { id: string; text: string }[] };
    expect(body.passages?.length).toBeGreaterThan(0);
    expect(body.passages?.[0]?.text.length).toBeGreaterThan(0);
  });
});

describe("a model that stays unavailable", () => {
  it("fails the run with the reason once the retry budget is used up, without spinning", async () => {
    // Prepare: every call is throttled.
    let calls = 0;
    const client: ModelClient = {
      provider: "scripted",
      async create() {
        calls++;
        throw new ModelTransientError("429 rate limited", { status: 429, retryAfterSeconds: 0.001 });
      },
    };
    current = await start(client);

    // Act
    const runId = await current.stack.submit(
      "acme",
      "01-packaging-saved.json",
      sampleBytes("acme", "01-packaging-saved.json"),
    );
    const run = await current.stack.waitSettled(runId, 30_000);

    // Assess: 4 attempts in the one retry layer; Step Functions does not retry ModelUnavailableError.
    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/^ModelUnavailableError: the model stayed unavailable for 4 attempts/);
    expect(calls).toBe(4);
    expect(run?.counters.retries).toBe(3);
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ModelResponse, ToolResultBlock } from "../../lambdas/shared/model/types.js";
import { PRICED_MODEL, reply, sampleBytes, startTestStack, type TestStack, text, toolUse } from "../support/stack.js";

/** Stop reasons other than tool_use/end_turn, each handled on purpose (scripted models). */
let current: TestStack | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const FILE = "01-packaging-saved.json";
const reference = new ReferenceModelClient();
/** The offline model's next answer, as a priced model would send it. */
const behave = async (request: ModelRequest): Promise<ModelResponse> => {
  const { usageEstimated: _e, ...r } = await reference.create(request);
  return { ...r, model: PRICED_MODEL };
};
const results = (request: ModelRequest | undefined): ToolResultBlock[] =>
  (request?.messages.at(-1)?.content ?? []).filter((b): b is ToolResultBlock => b.type === "tool_result");

async function runWith(script: (request: ModelRequest, i: number) => ModelResponse | Promise<ModelResponse>) {
  const client = new ScriptedModelClient(script);
  current = await startTestStack({ model: () => ({ client, modelId: PRICED_MODEL, note: "scripted" }) });
  const runId = await current.stack.submit("acme", FILE, sampleBytes("acme", FILE));
  return { client, run: await current.stack.waitSettled(runId, 30_000) };
}

describe("stop reasons", () => {
  it("max_tokens: a cut-off tool call is not run; the model is told why and recovers", async () => {
    // Act
    const { client, run } = await runWith((request, i) =>
      i === 0 ? { ...reply([toolUse("t_cut", "extract", {})]), stop_reason: "max_tokens" } : behave(request),
    );

    // Assess
    const [cut] = results(client.calls[1]);
    expect(cut).toMatchObject({
      tool_use_id: "t_cut",
      is_error: true,
      content: expect.stringMatching(/cut off .*max_tokens/),
    });
    expect((await current?.stack.ledger.getToolCalls(run?.runId ?? ""))?.map((c) => c.toolUseId)).not.toContain(
      "t_cut",
    );
    expect(run?.status, run?.reason).toBe("saved");
  });

  it("max_tokens without a call: the run fails saying the answer was cut off", async () => {
    // Act
    const { run } = await runWith(() => ({
      ...reply([text("Let me think about this PO at great leng")]),
      stop_reason: "max_tokens",
    }));

    // Assess
    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/cut off at the output limit \(max_tokens\)/);
  });

  it("refusal: nothing the refusing turn asked for runs; the PO is handed to a human", async () => {
    // Act
    const { client, run } = await runWith((request, i) =>
      i === 0
        ? behave(request)
        : { ...reply([text("I can't help with this."), toolUse("t_no", "validate", {})]), stop_reason: "refusal" },
    );

    // Assess
    expect(run?.status).toBe("handed_to_human");
    expect(run?.reason).toMatch(/declined to continue \(refusal\)/);
    expect(client.callCount).toBe(2);
    expect((await current?.stack.ledger.getToolCalls(run?.runId ?? ""))?.map((c) => c.name)).toEqual(["extract"]);
  });

  it("model_context_window_exceeded: the conversation is compacted and retried, then the run goes on", async () => {
    // Act
    const { client, run } = await runWith((request, i) =>
      i === 1 ? { ...reply([text("…")]), stop_reason: "model_context_window_exceeded" } : behave(request),
    );

    // Assess
    expect(run?.status, run?.reason).toBe("saved");
    expect(run?.counters.compactions).toBe(1);
    expect(client.callCount).toBeGreaterThanOrEqual(5);
  });

  it("model_context_window_exceeded every time: a human is asked instead", async () => {
    // Act
    const { run } = await runWith((request, i) =>
      i === 0 ? behave(request) : { ...reply([text("…")]), stop_reason: "model_context_window_exceeded" },
    );

    // Assess
    expect(run?.status).toBe("awaiting_approval");
    expect(run?.reason).toMatch(/too long for the model/);
  });

  it("OUTCOME: handed_to_human ends the run as handed to a human", async () => {
    // Act
    const { client, run } = await runWith((request, i) =>
      i === 0
        ? behave(request)
        : reply([text("OUTCOME: handed_to_human — the buyer called; purchasing takes it over")]),
    );

    // Assess
    expect(run).toMatchObject({ status: "handed_to_human", reason: "the buyer called; purchasing takes it over" });
    // The model was told the date, the policy's weekday reading, and the outcome it may use.
    const first = client.calls[0];
    const task = first?.messages[0]?.content[0];
    expect(task?.type === "text" ? task.text : "").toMatch(
      /Today is \d{4}-\d{2}-\d{2} \((Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\) in America\/New_York/,
    );
    expect(first?.rules).toMatch(/weekday is that of the PO's order date/);
    expect(first?.system).toMatch(/handed_to_human/);
  });
});

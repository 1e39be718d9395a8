import { afterEach, describe, expect, it } from "vitest";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import { PRICED_MODEL, sampleBytes, startTestStack, type TestStack } from "../support/stack.js";

let current: TestStack | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const FILE = "01-packaging-saved.json";

describe("retry of a failed run by an operator", () => {
  it("resumes from the ledger: no model turn or tool call paid twice, audited, and a re-upload stays a duplicate", async () => {
    // Prepare: the model answers the first turn, then fails for good (a missing key, say) until it is fixed.
    const reference = new ReferenceModelClient();
    let broken = true;
    const client = new ScriptedModelClient(async (request: ModelRequest, i): Promise<ModelResponse> => {
      if (i > 0 && broken) throw new Error("401 invalid x-api-key");
      const { usageEstimated: _e, ...r } = await reference.create(request);
      return { ...r, model: PRICED_MODEL };
    });
    current = await startTestStack({ model: () => ({ client, modelId: PRICED_MODEL, note: "scripted" }) });
    const { stack } = current;
    const runId = await stack.submit("acme", FILE, sampleBytes("acme", FILE));
    const failed = await stack.waitSettled(runId, 30_000);
    const callsBefore = client.callCount;

    // Act
    broken = false;
    const retried = await stack.retryRun(runId, "ops-jo");
    const run = await stack.waitSettled(runId, 30_000);
    const callsAfterRetry = client.callCount;
    await stack.submit("acme", FILE, sampleBytes("acme", FILE));
    await stack.waitAllSettled(30_000);

    // Assess: failed first, saved after the retry
    expect(failed?.status).toBe("failed");
    expect(run?.status, run?.reason).toBe("saved");
    expect(retried).toMatchObject({ executionName: `${runId}-retry-1`, turnsReused: 1, toolResultsReused: 1 });
    // Assess: the stored first turn was replayed, not asked again; extract ran once in all
    const turnOneAgain = client.calls.slice(callsBefore).filter((c) => c.messages.length === 1);
    expect(turnOneAgain).toEqual([]);
    const calls = await stack.ledger.getToolCalls(runId);
    expect(calls.filter((c) => c.name === "extract")).toHaveLength(1);
    expect(run?.counters.toolCalls).toBe(calls.length);
    // Assess: audited with who and what was reused; the same bytes again started nothing
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.find((a) => a.action === "run.retried")).toMatchObject({
      actor: "operator:ops-jo",
      detail: { attempt: 1, turnsReused: 1, toolResultsReused: 1 },
    });
    const after = await stack.ledger.getRun(runId);
    expect(after).toMatchObject({ status: "saved", executionId: retried.executionId });
    expect(client.callCount).toBe(callsAfterRetry);
    expect(await stack.ledger.getOrder("acme", "ACM-PO-22817")).toMatchObject({ runId });
  });

  it("refuses a run that did not fail, naming its state", async () => {
    // Prepare
    current = await startTestStack({
      model: () => ({ client: new ReferenceModelClient(), modelId: "ref", note: "ref" }),
    });
    const runId = await current.stack.submit("acme", FILE, sampleBytes("acme", FILE));
    await current.stack.waitSettled(runId, 30_000);

    // Act / Assess
    await expect(current.stack.retryRun(runId, "ops")).rejects.toThrow(/is saved; only a failed run can be retried/);
    await expect(current.stack.retryRun("acme-nope", "ops")).rejects.toThrow(/no run acme-nope/);
  });
});

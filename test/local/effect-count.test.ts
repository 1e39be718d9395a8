import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentDeps, SaveOrder } from "../../lambdas/shared/agent/deps.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { orderObjectKey } from "../../lambdas/shared/agent/keys.js";
import { saveOrderOnce } from "../../lambdas/shared/agent/save.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import type { Ledger } from "../../lambdas/shared/ledger/ledger.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { duplicateWrites, type ObjectWrite, recordObjectWrites } from "../bench/durability-lib.js";
import { realCustomer, sampleBytes } from "../support/stack.js";

/**
 * The durability check counts the side effect itself (saved-order objects written, on the S3
 * client), so it must be able to fail: a save that skips its claim, replayed after the process
 * died between the effect and its checkpoint, shows as a duplicate; the real save does not.
 */
const acme = realCustomer("acme");
let stack: LocalStack;
let dataDir: string;
const writes: ObjectWrite[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "po-agent-effects-"));
  stack = await LocalStack.start({ dataDir, customers: [acme], retryIntervalMs: 0 });
  recordObjectWrites(stack.s3, (w) => writes.push(w));
}, 60_000);

afterAll(async () => {
  await stack?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Skips the claim: writes the object every time it runs (the broken idempotence). */
const saveWithoutClaim: SaveOrder = async (deps, _run, order) => {
  await deps.documents.put(deps.bucket, orderObjectKey(order.poNumber), JSON.stringify(order.po));
  return { created: true };
};

/**
 * Runs a PO to its end; the save's first execution dies after its effect and before its result
 * is stored (the ledger write throws), and the step is run again, as Step Functions would.
 */
async function runWithCrashAfterSave(poNumber: string, saveOrder?: SaveOrder): Promise<ObjectWrite[]> {
  const po = JSON.parse(sampleBytes("acme", "01-packaging-saved.json").toString("utf8")) as Record<string, unknown>;
  const key = `incoming/${poNumber}.json`;
  const bucket = bucketFor("acme");
  await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify({ ...po, poNumber }) }));
  const deps: AgentDeps = {
    ...stack.deps(acme),
    model: { client: new ReferenceModelClient(), modelId: "reference" },
    mcp: undefined,
    ...(saveOrder ? { saveOrder } : {}),
  };
  const dying = Object.create(deps.ledger) as Ledger;
  dying.putToolCall = async () => {
    throw new Error("the process died after the save's effect, before its result was stored");
  };
  const before = writes.length;
  const { runId } = await ingest(deps, { bucket, key, executionId: `exec-${poNumber}` });
  for (let i = 0; i < 12; i++) {
    const step = await orchestrate(deps, { runId });
    if (step.type !== "tools") break;
    for (const call of step.calls) {
      if (call.name === "save") {
        await expect(runTool({ ...deps, ledger: dying }, { runId, call })).rejects.toThrow(/process died/);
      }
      await runTool(deps, { runId, call });
    }
  }
  expect((await stack.ledger.getRun(runId))?.poNumber).toBe(poNumber);
  return writes.slice(before);
}

describe("the durability check counts effects, not log lines", () => {
  it("the real save, replayed after a crash after its effect: one object written, no duplicate", async () => {
    const mine = await runWithCrashAfterSave("ACM-EFFECT-1");

    expect(mine.map((w) => w.key)).toEqual([orderObjectKey("ACM-EFFECT-1")]);
    expect(duplicateWrites(mine)).toBe(0);
    expect(await stack.ledger.getOrder("acme", "ACM-EFFECT-1")).toMatchObject({ state: "written" });
  }, 60_000);

  it("the real save, retried after the mark of its claim was throttled: the object is not written twice", async () => {
    const deps = stack.deps(acme);
    const throttled = Object.create(deps.ledger) as Ledger;
    throttled.completeOrder = async () => {
      throw new Error("DynamoDB ThrottlingException after the SDK's retries");
    };
    const before = writes.length;
    const order = { poNumber: "ACM-EFFECT-3", po: { poNumber: "ACM-EFFECT-3" }, idempotencyKey: "acme-effect-3" };

    await expect(saveOrderOnce({ ...deps, ledger: throttled }, { runId: "acme-effect-3" }, order)).rejects.toThrow(
      /Throttling/,
    );
    const retry = await saveOrderOnce(deps, { runId: "acme-effect-3" }, order);

    expect(retry.created).toBe(true);
    expect(writes.slice(before).map((w) => w.key)).toEqual([orderObjectKey("ACM-EFFECT-3")]);
    expect(await stack.ledger.getOrder("acme", "ACM-EFFECT-3")).toMatchObject({ state: "written" });
  }, 60_000);

  it("a save that skips its claim, replayed the same way: the counter sees the duplicate write", async () => {
    const mine = await runWithCrashAfterSave("ACM-EFFECT-2", saveWithoutClaim);

    expect(mine.map((w) => w.key)).toEqual([orderObjectKey("ACM-EFFECT-2"), orderObjectKey("ACM-EFFECT-2")]);
    expect(duplicateWrites(mine)).toBeGreaterThan(0);
  }, 60_000);
});

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveOrderOnce } from "../../lambdas/shared/agent/core.js";
import type { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { TransientError } from "../../lambdas/shared/errors.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { bucketFor } from "../../local/stack.js";
import { realCustomer, startTestStack, type TestStack } from "../support/stack.js";

/**
 * Saving is one transaction in effect: claim, write the object, complete. A failed write leaves
 * nothing claimed; a retry finds exactly one order; PO numbers that are not plain ids neither
 * escape `processed/` nor crash, on S3 and on the local file-backed emulator.
 */
let t: TestStack;
const acme = realCustomer("acme");
beforeAll(async () => {
  t = await startTestStack({ model: () => ({ client: new ReferenceModelClient(), modelId: "ref", note: "ref" }) });
});
afterAll(async () => t.close());

/** The stack's document store, with the next `failures` object writes failing like an S3 outage. */
function flaky(failures: number): { documents: DocumentStore; writes: string[] } {
  const real = t.stack.deps(acme).documents;
  const writes: string[] = [];
  const documents = Object.create(real) as DocumentStore;
  documents.put = async (bucket, key, body, type) => {
    if (failures-- > 0) throw new TransientError(`S3 InternalError on s3://${bucket}/${key}`);
    writes.push(key);
    return real.put(bucket, key, body, type);
  };
  return { documents, writes };
}

const head = (key: string) => t.stack.s3.send(new HeadObjectCommand({ Bucket: bucketFor("acme"), Key: key }));

describe("save: claim and write as one", () => {
  it("a failed object write leaves nothing claimed; the corrected resend saves exactly one order", async () => {
    // Prepare
    const failing = flaky(1);
    const deps = { ...t.stack.deps(acme), documents: failing.documents };
    const order = { poNumber: "ACM-TX-1", po: { poNumber: "ACM-TX-1" } };

    // Act
    const first = await saveOrderOnce(deps, { runId: "acme-run-a" }, { ...order, idempotencyKey: "acme-run-a" }).then(
      () => "saved",
      (err: Error) => err.name,
    );
    const afterFailure = await t.stack.ledger.getOrder("acme", "ACM-TX-1");
    const resend = await saveOrderOnce(deps, { runId: "acme-run-b" }, { ...order, idempotencyKey: "acme-run-b" });
    const replay = await saveOrderOnce(deps, { runId: "acme-run-b" }, { ...order, idempotencyKey: "acme-run-b" });

    // Assess
    expect(first).toBe("TransientError");
    expect(afterFailure).toBeUndefined();
    expect(resend.created).toBe(true);
    expect(replay.created).toBe(false);
    expect(await t.stack.ledger.getOrder("acme", "ACM-TX-1")).toMatchObject({ runId: "acme-run-b", state: "written" });
    // The resend writes the object; the replay finds its order written and writes nothing again.
    expect(failing.writes).toEqual(["processed/ACM-TX-1.json"]);
    await expect(head("processed/ACM-TX-1.json")).resolves.toBeDefined();
  });

  it("another run's save of a written order is refused, and writes nothing", async () => {
    // Prepare
    const counting = flaky(0);
    const deps = { ...t.stack.deps(acme), documents: counting.documents };
    await saveOrderOnce(deps, { runId: "acme-run-c" }, { poNumber: "ACM-TX-2", po: {}, idempotencyKey: "acme-run-c" });

    // Act
    const again = saveOrderOnce(
      deps,
      { runId: "acme-run-d" },
      { poNumber: "ACM-TX-2", po: {}, idempotencyKey: "acme-run-d" },
    );

    // Assess
    await expect(again).rejects.toThrow(/already saved by run acme-run-c/);
    expect(counting.writes).toEqual(["processed/ACM-TX-2.json"]);
  });

  it.each([
    ["a path climbing out", "../../x"],
    ["a path through another PO", "x/../ACM-PO-1"],
    ["2,000 characters", "P".repeat(2_000)],
    ["a slash and spaces", "PO 1/2"],
  ])("a PO number that is %s stays inside processed/ and saves once", async (_label, poNumber) => {
    // Prepare
    const counting = flaky(0);
    const deps = { ...t.stack.deps(acme), documents: counting.documents };

    // Act
    const { created } = await saveOrderOnce(
      deps,
      { runId: "acme-run-e" },
      { poNumber, po: {}, idempotencyKey: "acme-run-e" },
    );

    // Assess
    expect(created).toBe(true);
    const [key] = counting.writes;
    expect(key).toMatch(/^processed\/_sha256-[0-9a-f]{40}\.json$/);
    await expect(head(key ?? "")).resolves.toBeDefined();
    expect(await t.stack.ledger.getOrder("acme", poNumber)).toMatchObject({ objectKey: key, state: "written" });
    // Nothing landed outside the emulator's bucket directory.
    expect(existsSync(join(t.dataDir, "x"))).toBe(false);
    expect(readdirSync(t.dataDir).filter((f) => f.startsWith("ACM") || f === "x")).toEqual([]);
  });
});

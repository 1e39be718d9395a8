import { GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { bucketFor } from "../../local/stack.js";
import { largeCsvPo } from "../support/large-po.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * Over DynamoDB's 400 KB item from about 2,800 lines on. The issue's case is 60,000 lines (7.6 MiB,
 * under the 10 MiB document limit; ~2.5 min on a loaded 2-core machine, mostly parsing):
 * `PO_AGENT_LARGE_PO_LINES=60000 npx vitest run test/local/large-po.test.ts`. The suite runs 6,000.
 */
const LINES = Number(process.env.PO_AGENT_LARGE_PO_LINES ?? 6_000);

describe("a PO too large for the ledger", () => {
  let t: TestStack;
  beforeAll(async () => {
    t = await startTestStack({
      model: () => ({ client: new ReferenceModelClient(), modelId: "reference", note: "offline" }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`${LINES.toLocaleString("en")} lines: the run fails visibly with one line naming the 400 KB limit, and the document is kept`, async () => {
    // Prepare
    const body = largeCsvPo(LINES);
    expect(body.byteLength).toBeLessThan(10 * 1024 * 1024);

    // Act
    const runId = await t.stack.submit("acme", "catalogue-reorder.csv", body);
    const run = await t.stack.waitSettled(runId, 600_000);

    // Assess: failed, with one line that names the record and the limit (no "UnknownError", no stack)
    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(
      /^RecordTooLargeError: the artifact record of run \S+ would be [\d.]+ MB, over DynamoDB's 400 KB item limit/,
    );
    expect(run?.reason).not.toMatch(/\n|UnknownError|ValidationException/);
    // Assess: the document is kept, byte for byte, and nothing was saved or half-written for the PO
    const kept = await t.stack.s3.send(
      new GetObjectCommand({ Bucket: bucketFor("acme"), Key: "incoming/catalogue-reorder.csv" }),
    );
    expect(Buffer.from((await kept.Body?.transformToByteArray()) ?? []).equals(body)).toBe(true);
    expect(await t.stack.ledger.getOrder("acme", "ACM-PO-60000")).toBeUndefined();
    expect(await t.stack.ledger.getArtifacts(runId)).toEqual([]);
    // Assess: the console's run list shows it failed with that reason
    expect((await t.stack.ledger.listRuns()).find((r) => r.runId === runId)).toMatchObject({
      status: "failed",
      reason: run?.reason,
    });
  }, 600_000);
});

/**
 * `npx tsx test/bench/ledger-calls.ts [--json]`: DynamoDB calls the ledger makes per model turn and per
 * tool call on a normal run (acme 01, offline reference model), counted on the wire by a middleware
 * on the DynamoDB client. Target (issue 12): at most 4 per tool call and per model turn.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { ingest, orchestrate, runTool } from "../../lambdas/shared/agent/core.js";
import { Ledger } from "../../lambdas/shared/ledger/ledger.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { realCustomer, sampleBytes } from "../support/stack.js";

export interface LedgerCallFigures {
  perModelTurn: number[];
  perToolCall: number[];
  ingest: number;
  total: number;
}

/** Runs one sample to its end on the core functions and counts ledger calls per step. */
export async function measureLedgerCalls(
  customerName = "acme",
  file = "01-packaging-saved.json",
): Promise<LedgerCallFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), "po-agent-ledger-calls-"));
  const customer = realCustomer(customerName);
  const stack = await LocalStack.start({ dataDir, customers: [customer], retryIntervalMs: 0 });
  try {
    let calls = 0;
    const client = new DynamoDBClient({
      endpoint: stack.services.dynamodbEndpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    client.middlewareStack.add(
      (next) => async (args) => {
        calls += 1;
        return next(args);
      },
      { step: "initialize", name: "countLedgerCalls" },
    );
    const deps = {
      ...stack.deps(customer),
      ledger: new Ledger(client, stack.ledger.tableName),
      model: { client: new ReferenceModelClient(), modelId: "reference" },
      mcp: undefined,
    };
    const bucket = bucketFor(customer.name);
    const key = `incoming/${file}`;
    await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: sampleBytes(customer.name, file) }));
    const count = async (f: () => Promise<unknown>) => {
      const before = calls;
      await f();
      return calls - before;
    };
    let runId = "";
    const ingestCalls = await count(async () => {
      runId = (await ingest(deps, { bucket, key, executionId: "bench" })).runId;
    });
    const perModelTurn: number[] = [];
    const perToolCall: number[] = [];
    for (let i = 0; i < 12; i++) {
      let step: Awaited<ReturnType<typeof orchestrate>> | undefined;
      perModelTurn.push(
        await count(async () => {
          step = await orchestrate(deps, { runId });
        }),
      );
      if (!step || step.type !== "tools") break;
      for (const call of step.calls) perToolCall.push(await count(() => runTool(deps, { runId, call })));
    }
    return { perModelTurn, perToolCall, ingest: ingestCalls, total: calls };
  } finally {
    await stack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await measureLedgerCalls();
  const max = (xs: number[]) => Math.max(0, ...xs);
  process.stdout.write(
    `ledger calls on acme 01 (reference model): ingest ${f.ingest}; per model turn ${f.perModelTurn.join(", ")} (max ${max(f.perModelTurn)}); per tool call ${f.perToolCall.join(", ")} (max ${max(f.perToolCall)}); run total ${f.total}; target ≤ 4 per turn and per tool call: ${max(f.perModelTurn) <= 4 && max(f.perToolCall) <= 4 ? "met" : "NOT met"}\n`,
  );
  if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify({ ledgerCalls: f })}\n`);
}

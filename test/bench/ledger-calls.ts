/**
 * `npx tsx test/bench/ledger-calls.ts [--json]`: DynamoDB calls the ledger makes per model turn and per
 * tool call (offline reference model), counted on the wire by a middleware on the DynamoDB client:
 * acme 01 (saved without a human) and acme 03 (a save a human approves first). Target (issue 12):
 * at most 4 per tool call and per model turn. Test: test/local/ledger-calls.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { Ledger } from "../../lambdas/shared/ledger/ledger.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type { Step } from "../../lambdas/shared/steps.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { realCustomer, sampleBytes } from "../support/stack.js";

export interface LedgerCallStep {
  kind: "turn" | "tool";
  /** The tool's name, or the step the orchestrator returned (`tools`, `approval`, `done`). */
  label: string;
  calls: number;
  /** The DynamoDB operations, in order (`Query`, `PutItem`...). */
  operations: string[];
}

export interface LedgerCallFigures {
  file: string;
  steps: LedgerCallStep[];
  perModelTurn: number[];
  perToolCall: number[];
  ingest: number;
  total: number;
  outcome?: string;
}

/**
 * Runs one sample to its end on the core functions and counts ledger calls per step. A step that
 * waits for a human is approved through the (uncounted) operator ledger, as a decision would be.
 */
export async function measureLedgerCalls(
  customerName = "acme",
  file = "01-packaging-saved.json",
): Promise<LedgerCallFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), "po-agent-ledger-calls-"));
  const customer = realCustomer(customerName);
  const stack = await LocalStack.start({ dataDir, customers: [customer], retryIntervalMs: 0 });
  try {
    const operations: string[] = [];
    const client = new DynamoDBClient({
      endpoint: stack.services.dynamodbEndpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        operations.push(String(context.commandName ?? "?").replace(/Command$/, ""));
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
    const steps: LedgerCallStep[] = [];
    const count = async <T>(kind: LedgerCallStep["kind"], label: (r: T) => string, f: () => Promise<T>) => {
      const before = operations.length;
      const result = await f();
      const ops = operations.slice(before);
      steps.push({ kind, label: label(result), calls: ops.length, operations: ops });
      return result;
    };
    const before = operations.length;
    const { runId } = await ingest(deps, { bucket, key, executionId: "bench" });
    const ingestCalls = operations.length - before;
    let outcome: string | undefined;
    for (let i = 0; i < 16; i++) {
      const step: Step = await count(
        "turn",
        (s: Step) => s.type,
        () => orchestrate(deps, { runId }),
      );
      if (step.type === "approval") {
        await stack.ledger.decideApproval(step.approvalId, "approved", "ledger-calls-bench", "approved to measure");
        continue;
      }
      if (step.type !== "tools") {
        outcome = step.type === "done" ? step.outcome : step.type;
        break;
      }
      for (const call of step.calls) {
        await count(
          "tool",
          () => call.name,
          () => runTool(deps, { runId, call }),
        );
      }
    }
    const of = (kind: LedgerCallStep["kind"]) => steps.filter((s) => s.kind === kind).map((s) => s.calls);
    return {
      file,
      steps,
      perModelTurn: of("turn"),
      perToolCall: of("tool"),
      ingest: ingestCalls,
      total: operations.length,
      ...(outcome ? { outcome } : {}),
    };
  } finally {
    await stack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** One line per sample, as `npm run bench` prints it. */
export function ledgerCallsLine(f: LedgerCallFigures): string {
  const max = (xs: number[]) => Math.max(0, ...xs);
  const met = max(f.perModelTurn) <= 4 && max(f.perToolCall) <= 4;
  return `ledger calls on ${f.file} (reference model, ${f.outcome ?? "unfinished"}): ingest ${f.ingest}; per orchestrator step ${f.perModelTurn.join(", ")} (max ${max(f.perModelTurn)}); per tool call ${f.perToolCall.join(", ")} (max ${max(f.perToolCall)}); run total ${f.total}; target ≤ 4 per step: ${met ? "met" : "NOT met"}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = [await measureLedgerCalls(), await measureLedgerCalls("acme", "03-controls-needs-approval.json")];
  for (const f of figures) process.stdout.write(`${ledgerCallsLine(f)}\n`);
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify({ ledgerCalls: figures.map(({ steps: _s, ...f }) => f) })}\n`);
  }
}

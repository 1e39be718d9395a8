import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { TransientError } from "../../lambdas/shared/errors.js";
import type { McpToolset } from "../../lambdas/shared/mcp/client.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ToolResultBlock } from "../../lambdas/shared/model/types.js";
import type { ToolContext } from "../../lambdas/shared/tools/types.js";
import { ErpDb } from "../../local/erp/db.js";
import { LocalStack, type RuntimeFaults } from "../../local/stack.js";
import { realCustomer, reply, sampleBytes, tempDir, text, toolUse } from "../support/stack.js";

/**
 * The durability of an MCP write counted on the effect itself: every `erp.create_order` request
 * that reached the sample ERP (a real stdio child on sql.js), with what the ERP answered. The
 * McpTool Lambda dies after the ERP created the order and before the result was stored (the Step
 * Functions Retry runs it again), and the model then asks for the same write a second time. One
 * order is created; every later request is the ERP recognising the idempotency key. The counter
 * can fail: a write repeated under another key shows as a duplicate the ERP had to refuse.
 */
const ORDER = { poNumber: "ACM-MCPW-1", vendorId: "V-1004", costCenter: "CC-200", totalMinor: 5000, currency: "USD" };

const customer: CustomerConfig = {
  ...realCustomer("acme"),
  operatorOverride: { enabled: true, operators: ["ops"] },
};

interface ErpRequest {
  poNumber: string;
  outcome: "created" | "replayed" | "refused";
  message: string;
}

/** What the ERP answered to each create_order request that left the process. */
const requests: ErpRequest[] = [];
let dieAfterEffect = true;
/** The broken client: every request carries another idempotency key. */
let keyPerRequest = false;
let order = ORDER;

/** Writes beyond the first per PO: orders created twice, or a second write the ERP had to refuse. */
const duplicateMcpWrites = (rs: readonly ErpRequest[]) => {
  const first = new Set<string>();
  let dup = 0;
  for (const r of rs) {
    if (r.outcome === "replayed") continue;
    if (first.has(r.poNumber)) dup++;
    first.add(r.poNumber);
  }
  return dup;
};

const faults: RuntimeFaults = {
  hideDocuments: () => {},
  throttleDynamo: () => {},
  installCrashes: () => {},
  wrapModel: (inner) => inner,
  wrapMcpTools: (toolset: McpToolset) => ({
    ...toolset,
    tools: toolset.tools.map((tool) =>
      tool.name !== "erp.create_order"
        ? tool
        : {
            ...tool,
            run: async (input: Record<string, unknown>, ctx: ToolContext) => {
              const out = await tool.run(
                input,
                keyPerRequest ? { ...ctx, runId: `${ctx.runId}#${requests.length}` } : ctx,
              );
              const body = (() => {
                try {
                  return JSON.parse(out.content) as { created?: boolean; replayed?: boolean };
                } catch {
                  return {};
                }
              })();
              requests.push({
                poNumber: String((input as { poNumber?: unknown }).poNumber),
                outcome: body.created ? "created" : body.replayed ? "replayed" : "refused",
                message: out.content.slice(0, 200),
              });
              if (dieAfterEffect) {
                dieAfterEffect = false;
                throw new TransientError("the McpTool Lambda died after the ERP answered (injected)");
              }
              return out;
            },
          },
    ),
  }),
};

/** Asks for the ERP write, then asks for it again once it has a result, then stops. */
const model = new ScriptedModelClient((request: ModelRequest) => {
  const results = request.messages
    .flatMap((m) => m.content)
    .filter((b): b is ToolResultBlock => b.type === "tool_result");
  if (results.length === 0) return reply([toolUse("toolu_w1", "erp.create_order", order)]);
  if (results.length === 1)
    return reply([text("Once more, to be sure."), toolUse("toolu_w2", "erp.create_order", order)]);
  return reply([text("OUTCOME: handed_to_human — the order is in the ERP for AP to book.")]);
});

let stack: LocalStack;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir("mcp-write-effect");
  stack = await LocalStack.start({
    dataDir,
    customers: [customer],
    retryIntervalMs: 0,
    faults,
    model: () => ({ client: model, modelId: "claude-sonnet-5", note: "scripted" }),
  });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Approves every approval the run asks for (each write needs a human), until it settles. */
async function runApprovingWrites(runId: string): Promise<string | undefined> {
  for (let i = 0; i < 6; i++) {
    const run = await stack.waitSettled(runId, 60_000);
    if (run?.status !== "awaiting_approval" || !run.pendingApprovalId) return run?.status;
    await stack.decideByOperator(run.pendingApprovalId, "approve", "ops");
  }
  return "too many approvals";
}

describe("an MCP write is done once, counted at the ERP", () => {
  it("dies after the ERP's answer, is retried, and is asked for again: one order, no duplicate write", async () => {
    const runId = await stack.submit("acme", "mcp-write.json", sampleBytes("acme", "01-packaging-saved.json"));
    const status = await runApprovingWrites(runId);

    expect(status).not.toBe("too many approvals");
    // The retry after the crash and the model's second call both reached the ERP, as replays.
    expect(requests.map((r) => r.outcome)).toEqual(["created", "replayed", "replayed"]);
    expect(duplicateMcpWrites(requests)).toBe(0);
    // And in the ERP's own database (the file the stdio server keeps under the data dir): one open order.
    const erp = await ErpDb.open(join(dataDir, "erp"));
    try {
      expect(erp.openOrders({ vendorId: ORDER.vendorId }).filter((o) => o.poNumber === ORDER.poNumber)).toHaveLength(1);
    } finally {
      erp.close();
    }
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "approval.approved")).toHaveLength(2);
  }, 120_000);

  it("the counter can fail: the same run with a client whose requests carry another key each", async () => {
    requests.length = 0;
    dieAfterEffect = true;
    keyPerRequest = true;
    order = { ...ORDER, poNumber: "ACM-MCPW-2" };
    const doc = JSON.parse(sampleBytes("acme", "01-packaging-saved.json").toString("utf8")) as Record<string, unknown>;
    const runId = await stack.submit(
      "acme",
      "mcp-write-2.json",
      Buffer.from(JSON.stringify({ ...doc, poNumber: "X-2" })),
    );
    await runApprovingWrites(runId);

    expect(requests.map((r) => r.outcome)).toEqual(["created", "refused", "refused"]);
    expect(requests[1]?.message).toMatch(/already exists in the ERP/);
    expect(duplicateMcpWrites(requests)).toBe(2);
  }, 120_000);
});

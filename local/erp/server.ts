/**
 * A sample customer ERP as an MCP server over stdio: vendors, budgets by cost center, open POs,
 * create and cancel orders, on a real embedded SQLite database (sql.js) kept in one file.
 *
 *   node --import tsx local/erp/server.ts --data-dir DIR     (or ERP_DATA_DIR / PO_AGENT_DATA_DIR)
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod/v3";
import { IDEMPOTENCY_META_KEY } from "../../lambdas/shared/mcp/client.js";
import { ErpDb } from "./db.js";

/** The effects a customer config should declare for these tools (see customers/acme.yaml). */
export const ERP_TOOL_EFFECTS = {
  lookup_vendor: "read",
  check_budget: "read",
  list_open_pos: "read",
  create_order: "write",
  cancel_order: "dangerous",
} as const;

const ok = (value: unknown): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value as Record<string, unknown>,
});
const fail = (message: string): CallToolResult => ({ content: [{ type: "text", text: message }], isError: true });

/** The ERP's MCP surface over one database; transport-agnostic so tests can connect in memory too. */
export function createErpServer(db: ErpDb, now: () => Date = () => new Date()): McpServer {
  const server = new McpServer({ name: "sample-erp", version: "1.0.0" });

  server.registerTool(
    "lookup_vendor",
    {
      description:
        "Find vendors in the ERP by id (V-1001) or by name (or part of it). Returns id, name, status (active, on_hold, blocked), payment terms and whether the vendor is preferred.",
      inputSchema: { query: z.string().min(1).describe("vendor id or name") },
      annotations: { readOnlyHint: true },
    },
    async ({ query }) => {
      const vendors = db.findVendors(query);
      return ok({ query, found: vendors.length, vendors });
    },
  );

  server.registerTool(
    "check_budget",
    {
      description:
        "Check whether an amount fits the remaining budget of a cost center. `costCenter` is an id (CC-100) or text naming the department (a buyer such as 'Acme, Shipping Dept.'); the General cost center is used when nothing matches. Amount in integer minor units.",
      inputSchema: {
        costCenter: z.string().min(1),
        amountMinor: z.number().int().nonnegative(),
        currency: z.string().regex(/^[A-Z]{3}$/),
      },
      annotations: { readOnlyHint: true },
    },
    async ({ costCenter, amountMinor, currency }) => {
      const matched = db.findCostCenter(costCenter);
      const cc = matched ?? db.findCostCenter("CC-900");
      if (!cc) return fail(`no cost center matches "${costCenter}"`);
      if (cc.currency !== currency) return fail(`cost center ${cc.id} is kept in ${cc.currency}, not ${currency}`);
      const committedMinor = db.committedMinor(cc.id);
      const availableMinor = cc.budgetMinor - committedMinor;
      return ok({
        costCenter: cc.id,
        name: cc.name,
        matchedBy: matched ? "input" : "default",
        currency: cc.currency,
        budgetMinor: cc.budgetMinor,
        committedMinor,
        availableMinor,
        amountMinor,
        fits: amountMinor <= availableMinor,
      });
    },
  );

  server.registerTool(
    "list_open_pos",
    {
      description: "List open purchase orders in the ERP, optionally for one vendor id or one cost center id.",
      inputSchema: { vendorId: z.string().optional(), costCenter: z.string().optional() },
      annotations: { readOnlyHint: true },
    },
    async ({ vendorId, costCenter }) => {
      const orders = db.openOrders({ vendorId, costCenterId: costCenter });
      return ok({ count: orders.length, orders });
    },
  );

  server.registerTool(
    "create_order",
    {
      description:
        "Create an open purchase order in the ERP, charged to a cost center. A replay with the same idempotency key returns the first result instead of creating a second order.",
      inputSchema: {
        poNumber: z.string().min(1),
        vendorId: z.string().min(1),
        costCenter: z.string().min(1),
        totalMinor: z.number().int().nonnegative(),
        currency: z.string().regex(/^[A-Z]{3}$/),
      },
      annotations: { readOnlyHint: false, idempotentHint: true },
    },
    async (input, extra) => {
      const key = extra._meta?.[IDEMPOTENCY_META_KEY];
      const idempotencyKey = typeof key === "string" ? key : undefined;
      const existing = db.getOrder(input.poNumber);
      if (existing) {
        if (idempotencyKey !== undefined && existing.idempotencyKey === idempotencyKey) {
          return ok({ created: false, replayed: true, order: withoutKey(existing) });
        }
        return fail(`order ${input.poNumber} already exists in the ERP (status ${existing.status})`);
      }
      const vendor = db.findVendors(input.vendorId).find((v) => v.id === input.vendorId);
      if (!vendor) return fail(`unknown vendor ${input.vendorId}`);
      if (vendor.status !== "active") return fail(`vendor ${vendor.id} is ${vendor.status}; no new orders`);
      const cc = db.findCostCenter(input.costCenter);
      if (!cc) return fail(`unknown cost center ${input.costCenter}`);
      db.insertOrder(
        {
          poNumber: input.poNumber,
          vendorId: vendor.id,
          costCenterId: cc.id,
          currency: input.currency,
          totalMinor: input.totalMinor,
          createdAt: now().toISOString(),
        },
        idempotencyKey,
      );
      const order = db.getOrder(input.poNumber);
      return ok({ created: true, replayed: false, order: order ? withoutKey(order) : undefined });
    },
  );

  server.registerTool(
    "cancel_order",
    {
      description: "Cancel an open purchase order in the ERP. Irreversible.",
      inputSchema: { poNumber: z.string().min(1), reason: z.string().min(1) },
      annotations: { destructiveHint: true },
    },
    async ({ poNumber, reason }) => {
      const order = db.getOrder(poNumber);
      if (!order) return fail(`no order ${poNumber} in the ERP`);
      if (order.status === "cancelled") return ok({ cancelled: true, alreadyCancelled: true, poNumber });
      db.cancelOrder(poNumber, reason);
      return ok({ cancelled: true, alreadyCancelled: false, poNumber });
    },
  );

  return server;
}

function withoutKey<T extends { idempotencyKey?: string }>(order: T): Omit<T, "idempotencyKey"> {
  const { idempotencyKey: _key, ...rest } = order;
  return rest;
}

/** Where the database lives: `--data-dir`, ERP_DATA_DIR, `$PO_AGENT_DATA_DIR/erp`, else `.po-agent/erp`. */
export function erpDataDir(argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" } }, strict: false });
  const fromArg = values["data-dir"];
  if (typeof fromArg === "string") return resolve(fromArg);
  if (env.ERP_DATA_DIR) return resolve(env.ERP_DATA_DIR);
  if (env.PO_AGENT_DATA_DIR) return resolve(env.PO_AGENT_DATA_DIR, "erp");
  return resolve(".po-agent", "erp");
}

async function main(): Promise<void> {
  const db = await ErpDb.open(erpDataDir(process.argv.slice(2)));
  const server = createErpServer(db);
  const transport = new StdioServerTransport();
  transport.onclose = () => db.close();
  await server.connect(transport);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`sample-erp: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

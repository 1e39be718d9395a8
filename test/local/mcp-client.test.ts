import { rmSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { type McpToolset, openToolsets } from "../../lambdas/shared/mcp/client.js";
import { McpServers } from "../../lambdas/shared/mcp/config.js";
import type { ToolContext } from "../../lambdas/shared/tools/types.js";
import { ERP_TOOL_EFFECTS } from "../../local/erp/server.js";
import { REPO_DIR, realCustomer, tempDir } from "../support/stack.js";

/**
 * The MCP client against real child processes over stdio: the sample ERP (sql.js on disk), and
 * small misbehaving servers for the bad-input cases (missing command, slow, malformed).
 */
const ctx = (runId: string) => ({ runId }) as ToolContext;
const customerWith = (servers: unknown[]): CustomerConfig => ({
  ...realCustomer("acme"),
  mcpServers: McpServers.parse(servers),
});
const erpServer = (dataDir: string) => ({
  name: "erp",
  transport: "stdio",
  command: process.execPath,
  args: ["--import", "tsx", "local/erp/server.ts", "--data-dir", dataDir],
  tools: Object.fromEntries(Object.entries(ERP_TOOL_EFFECTS).map(([k, effect]) => [k, { effect }])),
  timeoutMs: 20_000,
});

/** A server built on the SDK with one tool that never answers and one that does. */
const SLOW_SERVER = `
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
const s = new McpServer({ name: "slow", version: "1" });
s.registerTool("wait", { description: "never answers" }, () => new Promise(() => {}));
s.registerTool("ping", { description: "answers" }, async () => ({ content: [{ type: "text", text: "pong" }] }));
await s.connect(new StdioServerTransport());
`;

/** A hand-written JSON-RPC server whose answers break the protocol's shapes (MODE picks which). */
const MALFORMED_SERVER = `
import readline from "node:readline";
const mode = process.env.MODE;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  let result = {};
  if (m.method === "initialize")
    result = { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "bad", version: "1" } };
  if (m.method === "tools/list")
    result = mode === "list" ? { tools: "not a list" } : { tools: [{ name: "weird", inputSchema: { type: "object" } }] };
  if (m.method === "tools/call") result = { content: "not an array" };
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }) + "\\n");
});
`;

const inline = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
  name,
  transport: "stdio",
  command: process.execPath,
  args: ["--input-type=module", "-e", script],
  ...extra,
});

describe("MCP client over stdio: the sample ERP", () => {
  let dataDir: string;
  let toolset: McpToolset | undefined;
  beforeAll(() => {
    dataDir = tempDir("erp-stdio");
  });
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("lists the ERP's tools namespaced with their declared effects and answers lookups", async () => {
    // Prepare / Act
    toolset = await openToolsets(customerWith([erpServer(dataDir)]), { cwd: REPO_DIR });
    const tool = (n: string) => toolset?.tools.find((t) => t.name === n);
    const vendor = await tool("erp.lookup_vendor")?.run({ query: "V-1099" }, ctx("r1"));
    const budget = await tool("erp.check_budget")?.run(
      { costCenter: "Acme Manufacturing, Shipping Dept.", amountMinor: 184620, currency: "USD" },
      ctx("r1"),
    );
    // Assess
    expect(toolset.problems).toEqual([]);
    expect(toolset.tools.map((t) => `${t.name}:${t.effect}`).sort()).toEqual([
      "erp.cancel_order:dangerous",
      "erp.check_budget:read",
      "erp.create_order:write",
      "erp.list_open_pos:read",
      "erp.lookup_vendor:read",
    ]);
    expect(JSON.parse(vendor?.content ?? "")).toMatchObject({ vendors: [{ id: "V-1099", status: "blocked" }] });
    expect(JSON.parse(budget?.content ?? "")).toMatchObject({
      costCenter: "CC-100",
      committedMinor: 412500,
      availableMinor: 2000000 - 412500,
      fits: true,
    });
  });

  it("keeps its state in the database file across server restarts", async () => {
    // Prepare
    const order = {
      poNumber: "ACM-PO-MCP-1",
      vendorId: "V-1004",
      costCenter: "CC-200",
      totalMinor: 5000,
      currency: "USD",
    };
    toolset = await openToolsets(customerWith([erpServer(dataDir)]), { cwd: REPO_DIR });
    const created = await toolset.tools.find((t) => t.name === "erp.create_order")?.run(order, ctx("r2"));
    await toolset.close();
    // Act: a new process on the same data dir
    toolset = await openToolsets(customerWith([erpServer(dataDir)]), { cwd: REPO_DIR });
    const open = await toolset.tools
      .find((t) => t.name === "erp.list_open_pos")
      ?.run({ vendorId: "V-1004" }, ctx("r2"));
    const replay = await toolset.tools.find((t) => t.name === "erp.create_order")?.run(order, ctx("r2"));
    // Assess
    expect(created?.isError).toBeUndefined();
    expect(JSON.parse(open?.content ?? "").orders.map((o: { poNumber: string }) => o.poNumber)).toEqual([
      "ACM-PO-22010",
      "ACM-PO-MCP-1",
    ]);
    expect(JSON.parse(replay?.content ?? "")).toMatchObject({ created: false, replayed: true });
  });
});

describe("MCP client over stdio: bad servers", () => {
  let toolset: McpToolset | undefined;
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
  });

  it("a server whose command does not exist: declared tools answer with the reason, nothing throws", async () => {
    // Prepare / Act
    toolset = await openToolsets(
      customerWith([
        {
          name: "down",
          transport: "stdio",
          command: "po-agent-no-such-command",
          tools: { lookup: { effect: "read" } },
        },
      ]),
    );
    const out = await toolset.tools[0]?.run({}, ctx("r"));
    // Assess
    expect(toolset.problems).toEqual([expect.stringMatching(/^MCP server down is unavailable: .*ENOENT/)]);
    expect(toolset.tools.map((t) => [t.name, t.effect, t.listed])).toEqual([["down.lookup", "read", false]]);
    expect(out).toEqual({ content: expect.stringMatching(/^down\.lookup was not called: .*ENOENT/), isError: true });
  });

  it("a slow tool times out with a clear error and the server stays usable", async () => {
    // Prepare
    toolset = await openToolsets(customerWith([inline("slow", SLOW_SERVER, { timeoutMs: 2000 })]), { cwd: REPO_DIR });
    const slowTool = toolset.tools.find((t) => t.name === "slow.wait");
    // Act
    const out = await slowTool?.run({}, ctx("r"));
    const ping = await toolset.tools.find((t) => t.name === "slow.ping")?.run({}, ctx("r"));
    // Assess
    expect(out).toEqual({
      content: expect.stringMatching(/slow\.wait failed: .*no answer within 2000 ms/),
      isError: true,
    });
    expect(ping).toEqual({ content: "pong" });
  });

  it("a malformed call result becomes an isError output", async () => {
    toolset = await openToolsets(customerWith([inline("bad", MALFORMED_SERVER)]), { cwd: REPO_DIR });
    const out = await toolset.tools.find((t) => t.name === "bad.weird")?.run({}, ctx("r"));
    expect(out?.isError).toBe(true);
    expect(out?.content).toMatch(/^bad\.weird failed: bad failed while calling it: the server sent a malformed answer/);
  });

  it("a malformed tool listing marks the server unavailable instead of failing the run", async () => {
    toolset = await openToolsets(
      customerWith([inline("bad", MALFORMED_SERVER, { env: { MODE: "list" }, tools: { weird: { effect: "read" } } })]),
      { cwd: REPO_DIR },
    );
    expect(toolset.problems).toEqual([expect.stringMatching(/^MCP server bad is unavailable: .*malformed answer/)]);
    expect(toolset.tools.map((t) => t.name)).toEqual(["bad.weird"]);
  });
});

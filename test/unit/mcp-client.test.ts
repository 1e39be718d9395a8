import { rmSync } from "node:fs";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod/v3";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { type McpToolset, openToolsets, toolOutput } from "../../lambdas/shared/mcp/client.js";
import { type McpServerConfig, McpServers } from "../../lambdas/shared/mcp/config.js";
import { jsonSchemaToZod, modelInputSchema } from "../../lambdas/shared/mcp/schema.js";
import { NO_SCHEMA_VALIDATION } from "../../lambdas/shared/mcp/validator.js";
import type { ToolContext } from "../../lambdas/shared/tools/types.js";
import { ErpDb } from "../../local/erp/db.js";
import { createErpServer } from "../../local/erp/server.js";
import { realCustomer, tempDir } from "../support/stack.js";

const ctx = (runId: string) => ({ runId }) as ToolContext;

function customerWith(servers: unknown[]): CustomerConfig {
  return { ...realCustomer("acme"), mcpServers: McpServers.parse(servers) };
}

/** Connects each configured server name to an in-process MCP server (no child process). */
function inMemory(servers: Record<string, () => McpServer>) {
  return async (cfg: McpServerConfig) => {
    const make = servers[cfg.name];
    if (!make) throw new Error(`no in-memory server ${cfg.name}`);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await make().connect(serverSide);
    return clientSide;
  };
}

describe("jsonSchemaToZod", () => {
  const schema = jsonSchemaToZod({
    type: "object",
    properties: {
      query: { type: "string" },
      limit: { type: "integer" },
      tags: { type: "array", items: { type: "string" } },
    },
    required: ["query"],
  });

  it("accepts a matching object and keeps unknown keys", () => {
    // Prepare / Act
    const parsed = schema.safeParse({ query: "V-1001", limit: 3, extra: true });
    // Assess
    expect(parsed.success && parsed.data).toEqual({ query: "V-1001", limit: 3, extra: true });
  });

  it("rejects non-objects, missing required keys and wrong primitive types", () => {
    expect(schema.safeParse("V-1001").success).toBe(false);
    expect(schema.safeParse({}).success).toBe(false);
    expect(schema.safeParse({ query: 5 }).success).toBe(false);
    expect(schema.safeParse({ query: "x", limit: 1.5 }).success).toBe(false);
    expect(schema.safeParse({ query: "x", tags: [1] }).success).toBe(false);
  });

  it("is strict when the server says additionalProperties: false, and requires keys it does not describe", () => {
    const strict = jsonSchemaToZod({ type: "object", properties: {}, required: ["id"], additionalProperties: false });
    expect(strict.safeParse({ id: 1 }).success).toBe(true);
    expect(strict.safeParse({}).success).toBe(false);
    expect(strict.safeParse({ id: 1, other: 2 }).success).toBe(false);
  });

  it("shows the model an object schema even when the server gives none", () => {
    expect(modelInputSchema(undefined)).toMatchObject({ type: "object" });
    expect(modelInputSchema({ $schema: "x", type: "object", properties: { a: {} } })).toEqual({
      type: "object",
      properties: { a: {} },
    });
  });
});

describe("mcpServers config", () => {
  it("fills defaults and accepts both transports", () => {
    const [stdio, http] = McpServers.parse([
      { name: "erp", transport: "stdio", command: "node", tools: { lookup_vendor: { effect: "read" } } },
      {
        name: "supplier",
        transport: "http",
        url: "https://mcp.example.com/mcp",
        authSecretArn: "arn:aws:secretsmanager:x",
      },
    ]);
    expect(stdio).toMatchObject({ args: [], env: {}, timeoutMs: 10_000 });
    expect(http).toMatchObject({ authHeader: "Authorization", tools: {} });
  });

  it("rejects duplicate names, built-in names and unknown effects", () => {
    const stdio = { transport: "stdio", command: "node" };
    expect(
      McpServers.safeParse([
        { ...stdio, name: "erp" },
        { ...stdio, name: "erp" },
      ]).success,
    ).toBe(false);
    expect(McpServers.safeParse([{ ...stdio, name: "save" }]).success).toBe(false);
    expect(McpServers.safeParse([{ ...stdio, name: "erp", tools: { x: { effect: "maybe" } } }]).success).toBe(false);
    expect(McpServers.safeParse([{ ...stdio, name: "erp", url: "https://x" }]).success).toBe(false);
  });
});

describe("openToolsets (in-memory servers)", () => {
  let toolset: McpToolset | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const erp = async () => {
    const dir = tempDir("erp-unit");
    dirs.push(dir);
    const db = await ErpDb.open(dir);
    return () => createErpServer(db, () => new Date("2026-11-20T10:00:00Z"));
  };

  it("mounts tools namespaced, with declared effects and dangerous for undeclared ones", async () => {
    // Prepare
    const customer = customerWith([
      {
        name: "erp",
        transport: "stdio",
        command: "unused",
        tools: { lookup_vendor: { effect: "read" }, create_order: { effect: "write" } },
      },
    ]);
    // Act
    toolset = await openToolsets(customer, { transport: inMemory({ erp: await erp() }) });
    // Assess
    const byName = new Map(toolset.tools.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual([
      "erp.cancel_order",
      "erp.check_budget",
      "erp.create_order",
      "erp.list_open_pos",
      "erp.lookup_vendor",
    ]);
    expect(byName.get("erp.lookup_vendor")?.effect).toBe("read");
    expect(byName.get("erp.create_order")?.effect).toBe("write");
    expect(byName.get("erp.cancel_order")?.effect).toBe("dangerous");
    expect(byName.get("erp.check_budget")?.effect).toBe("dangerous");
    expect(byName.get("erp.check_budget")?.description).toMatch(/not declared/);
    expect(byName.get("erp.lookup_vendor")?.input.safeParse({}).success).toBe(false);
    expect(toolset.problems).toEqual([]);
  });

  it("calls a tool and returns its text; a replayed write with the same run is not repeated", async () => {
    // Prepare
    const customer = customerWith([{ name: "erp", transport: "stdio", command: "unused" }]);
    toolset = await openToolsets(customer, { transport: inMemory({ erp: await erp() }) });
    const find = (n: string) => toolset?.tools.find((t) => t.name === n);
    const order = {
      poNumber: "ACM-PO-9",
      vendorId: "V-1003",
      costCenter: "CC-100",
      totalMinor: 12345,
      currency: "USD",
    };
    // Act
    const vendor = await find("erp.lookup_vendor")?.run({ query: "Hudson Valley" }, ctx("run-1"));
    const first = await find("erp.create_order")?.run(order, ctx("run-1"));
    const replay = await find("erp.create_order")?.run(order, ctx("run-1"));
    const otherRun = await find("erp.create_order")?.run(order, ctx("run-2"));
    // Assess
    expect(JSON.parse(vendor?.content ?? "{}")).toMatchObject({ found: 1, vendors: [{ id: "V-1003" }] });
    expect(JSON.parse(first?.content ?? "{}")).toMatchObject({ created: true });
    expect(JSON.parse(replay?.content ?? "{}")).toMatchObject({ created: false, replayed: true });
    expect(otherRun).toEqual({ content: expect.stringMatching(/already exists/), isError: true });
  });

  it("skips a listed tool whose name clashes with a built-in, and says so", async () => {
    // Prepare
    const clashing = () => {
      const s = new McpServer({ name: "clash", version: "1" });
      s.registerTool("save", { inputSchema: { x: z.string() } }, async () => ({ content: [] }));
      s.registerTool("ping", { description: "pong" }, async () => ({ content: [{ type: "text", text: "pong" }] }));
      return s;
    };
    const customer = customerWith([{ name: "sup", transport: "stdio", command: "unused" }]);
    // Act
    toolset = await openToolsets(customer, { transport: inMemory({ sup: clashing }) });
    // Assess
    expect(toolset.tools.map((t) => t.name)).toEqual(["sup.ping"]);
    expect(toolset.problems).toEqual([expect.stringMatching(/"save" clashes with the built-in tool/)]);
  });

  it("does not connect to a skipped server: its declared tools answer with the reason", async () => {
    // Prepare
    const customer = customerWith([
      { name: "erp", transport: "stdio", command: "unused", tools: { lookup_vendor: { effect: "read" } } },
    ]);
    const connectedTo: string[] = [];
    // Act
    toolset = await openToolsets(customer, {
      skip: (s) => (s.transport === "stdio" ? "stdio servers run only locally" : undefined),
      transport: async (s) => {
        connectedTo.push(s.name);
        return (await inMemory({ erp: await erp() }))(s);
      },
    });
    const out = await toolset.tools[0]?.run({ query: "x" }, ctx("r"));
    // Assess
    expect(connectedTo).toEqual([]);
    expect(toolset.problems).toEqual(["MCP server erp is unavailable: stdio servers run only locally"]);
    expect(out).toEqual({ content: "erp.lookup_vendor was not called: stdio servers run only locally", isError: true });
  });

  it("turns a tool's own error into an isError output", async () => {
    const customer = customerWith([{ name: "erp", transport: "stdio", command: "unused" }]);
    toolset = await openToolsets(customer, { transport: inMemory({ erp: await erp() }) });
    const out = await toolset.tools
      .find((t) => t.name === "erp.cancel_order")
      ?.run({ poNumber: "NOPE", reason: "test" }, ctx("run-1"));
    expect(out).toEqual({ content: "no order NOPE in the ERP", isError: true });
  });

  it("calls a tool that declares an outputSchema without the SDK's schema validator (po-agent gives it none)", async () => {
    // Prepare: a server tool with an output schema and structured content
    const customer = customerWith([
      { name: "stock", transport: "stdio", command: "unused", tools: { level: { effect: "read" } } },
    ]);
    const server = () => {
      const s = new McpServer({ name: "stock", version: "1.0.0" });
      s.registerTool(
        "level",
        { inputSchema: { sku: z.string() }, outputSchema: { sku: z.string(), onHand: z.number() } },
        async ({ sku }) => ({ content: [], structuredContent: { sku, onHand: 7 } }),
      );
      return s;
    };
    toolset = await openToolsets(customer, { transport: inMemory({ stock: server }) });
    // Act
    const out = await toolset.tools.find((t) => t.name === "stock.level")?.run({ sku: "A-1" }, ctx("run-1"));
    // Assess: the structured result reaches the model; listing and calling never asked for a validator
    expect(toolset.problems).toEqual([]);
    expect(out).toEqual({ content: '{"sku":"A-1","onHand":7}' });
  });
});

/**
 * A hostile or broken server speaking raw JSON-RPC over an in-memory transport: initialize is answered
 * properly, every other method with the scripted result (which the SDK's or our schemas then reject).
 */
function rawServer(results: Record<string, unknown>) {
  return () => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    serverSide.onmessage = (m) => {
      if (!("id" in m) || !("method" in m)) return;
      const result =
        m.method === "initialize"
          ? {
              protocolVersion: m.params?.protocolVersion,
              capabilities: { tools: {} },
              serverInfo: { name: "x", version: "1" },
            }
          : results[m.method];
      const error = (result as { error?: { code: number; message: string } } | undefined)?.error;
      void serverSide.send(
        error
          ? { jsonrpc: "2.0", id: m.id, error }
          : { jsonrpc: "2.0", id: m.id, result: result as Record<string, unknown> },
      );
    };
    return serverSide.start().then(() => clientSide);
  };
}

describe("a server's malformed answer", () => {
  let toolset: McpToolset | undefined;
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
  });
  const listing = { tools: [{ name: "lookup", inputSchema: { type: "object" } }] };
  const customer = customerWith([
    { name: "bad", transport: "stdio", command: "unused", tools: { lookup: { effect: "read" } } },
  ]);

  it("to a call is said in one line naming the field and what was wrong (the model and the trace read it)", async () => {
    // Prepare: content must be a list of parts
    toolset = await openToolsets(customer, {
      transport: rawServer({ "tools/list": listing, "tools/call": { content: "in stock" } }),
    });
    // Act
    const out = await toolset.tools.find((t) => t.name === "bad.lookup")?.run({}, ctx("run-1"));
    // Assess
    expect(out?.isError).toBe(true);
    expect(out?.content).toMatch(
      /^bad\.lookup failed: bad failed while calling it: the server sent a malformed answer \(content: .*expected array, received string\)$/,
    );
  });

  it("is not what a server's own JSON-RPC error is called: the model reads that the server refused the call", async () => {
    // Prepare: the server rejects the call's params (a well-formed answer, an error one)
    toolset = await openToolsets(customer, {
      transport: rawServer({
        "tools/list": listing,
        "tools/call": { error: { code: -32602, message: "Invalid params: sku is required" } },
      }),
    });
    // Act
    const out = await toolset.tools.find((t) => t.name === "bad.lookup")?.run({}, ctx("run-1"));
    // Assess
    expect(out).toEqual({
      content:
        "bad.lookup failed: bad failed while calling it: the server answered with an error (MCP error -32602: Invalid params: sku is required)",
      isError: true,
    });
  });

  it("to tools/list is said the same way in the problems", async () => {
    // Prepare: tools must be a list
    toolset = await openToolsets(customer, { transport: rawServer({ "tools/list": { tools: "lookup" } }) });
    // Assess
    expect(toolset.problems).toEqual([
      expect.stringMatching(
        /^MCP server bad is unavailable: bad failed while listing its tools: the server sent a malformed answer \(tools: .*expected array, received string\)$/i,
      ),
    ]);
  });
});

describe("NO_SCHEMA_VALIDATION", () => {
  it("fails with its reason if the SDK ever asks it for a validator", () => {
    expect(() => NO_SCHEMA_VALIDATION.getValidator({ type: "object" })).toThrow(/no JSON Schema validator/);
  });
});

describe("toolOutput", () => {
  it("joins text parts, falls back to structured content, and flags a result without content", () => {
    expect(
      toolOutput("a.b", {
        content: [
          { type: "text", text: "x" },
          { type: "image", mimeType: "image/png" },
        ],
      }),
    ).toEqual({
      content: "x\n[image content image/png omitted]",
    });
    expect(toolOutput("a.b", { content: [], structuredContent: { ok: 1 } })).toEqual({ content: '{"ok":1}' });
    expect(toolOutput("a.b", {})).toEqual({ content: "a.b returned a malformed result: no content", isError: true });
    expect(toolOutput("a.b", { content: [{ type: "text", text: "bad" }], isError: true })).toEqual({
      content: "bad",
      isError: true,
    });
  });
});

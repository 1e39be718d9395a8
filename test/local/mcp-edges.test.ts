import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, type Server as HttpServer, type IncomingMessage } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { openToolsets } from "../../lambdas/shared/mcp/client.js";
import { McpServers } from "../../lambdas/shared/mcp/config.js";
import { handleMcpHttp } from "../../lambdas/shared/mcp/http.js";
import { createPoAgentMcpServer } from "../../lambdas/shared/mcp/server.js";
import { wireToolName } from "../../lambdas/shared/model/anthropic.js";
import { localBackend } from "../../local/mcp-server.js";
import { closeServer, listen } from "../../local/ports.js";
import { LocalStack } from "../../local/stack.js";
import { realCustomer, realCustomers, tempDir } from "../support/stack.js";

/** MCP edges with the SDK's real client: protocol error codes, DNS-rebinding checks, and mounting odd servers. */

describe("po-agent as an MCP server: protocol errors", () => {
  let stack: LocalStack;
  let dataDir: string;
  let client: Client;

  beforeAll(async () => {
    dataDir = tempDir("mcp-edges");
    stack = await LocalStack.start({ dataDir, customers: realCustomers() });
    const server = createPoAgentMcpServer(localBackend(stack), { actor: () => "mcp:test" });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(b);
    client = new Client({ name: "edge-client", version: "1.0.0" });
    await client.connect(a);
  });
  afterAll(async () => {
    await client?.close();
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const codeOf = async (p: Promise<unknown>) => {
    try {
      await p;
      return "no error";
    } catch (err) {
      return err instanceof McpError ? err.code : String(err);
    }
  };

  it("an unknown tool is JSON-RPC error -32602, not an isError result", async () => {
    expect(await codeOf(client.callTool({ name: "drop_tables", arguments: {} }))).toBe(-32602);
  });

  it("a missing resource is -32002, for a known template and for an unknown scheme", async () => {
    expect(await codeOf(client.readResource({ uri: "po-agent://runs/acme-nope" }))).toBe(-32002);
    expect(await codeOf(client.readResource({ uri: "other://thing/1" }))).toBe(-32002);
  });

  it("a known tool still answers (wrapping keeps the SDK's path)", async () => {
    const res = (await client.callTool({ name: "list_pending_approvals", arguments: {} })) as {
      content: { text: string }[];
    };
    expect(JSON.parse(res.content[0]?.text ?? "null")).toEqual([]);
  });
});

describe("po-agent's HTTP endpoint: Origin and Host (DNS rebinding)", () => {
  let stack: LocalStack;
  let dataDir: string;
  let created = 0;

  beforeAll(async () => {
    dataDir = tempDir("mcp-origin");
    stack = await LocalStack.start({ dataDir, customers: realCustomers() });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const initialize = (headers: Record<string, string>) =>
    new Request("https://abc.lambda-url.us-east-1.on.aws/", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        host: "abc.lambda-url.us-east-1.on.aws",
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } },
      }),
    });
  const backend = () => {
    const b = localBackend(stack);
    return {
      ...b,
      submit: (c: string, f: string, body: Uint8Array) => {
        created++;
        return b.submit(c, f, body);
      },
    };
  };

  it("refuses a page's Origin and a foreign Host with 403, and serves a client that sends neither", async () => {
    const opts = { bearerToken: async () => undefined };
    const evilOrigin = await handleMcpHttp(initialize({ origin: "https://evil.example" }), backend(), opts);
    const evilHost = await handleMcpHttp(initialize({ host: "evil.example" }), backend(), opts);
    const allowed = await handleMcpHttp(initialize({ origin: "https://console.example" }), backend(), {
      ...opts,
      allowedOrigins: ["https://console.example"],
    });
    const plain = await handleMcpHttp(initialize({}), backend(), opts);
    expect([evilOrigin.status, evilHost.status, allowed.status, plain.status]).toEqual([403, 403, 200, 200]);
    expect(await evilOrigin.text()).toContain("origin https://evil.example is not allowed");
    expect(created).toBe(0);
  });
});

// ---- mounting a customer's odd server --------------------------------------------------------

interface OddServer {
  url: URL;
  http: HttpServer;
  deletes: number;
  calls: string[];
}

/**
 * A stateful Streamable HTTP MCP server (sessions) built on the SDK's low-level Server, so its
 * listing can be anything: `pages` pages of one tool each (0 = page for ever) plus the extra tools.
 */
async function oddServer(pages: number, extra: unknown[]): Promise<OddServer> {
  const state: OddServer = { url: new URL("http://127.0.0.1/"), http: createServer(), deletes: 0, calls: [] };
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const newServer = () => {
    const s = new Server({ name: "odd", version: "1.0.0" }, { capabilities: { tools: {} } });
    s.setRequestHandler(ListToolsRequestSchema, async (req) => {
      const page = Number(req.params?.cursor ?? "0");
      const tools: unknown[] = [{ name: `paged_${page}`, inputSchema: { type: "object" } }];
      if (page === 0) tools.push(...extra);
      const more = pages === 0 || page + 1 < pages;
      return { tools, ...(more ? { nextCursor: String(page + 1) } : {}) } as never;
    });
    s.setRequestHandler(CallToolRequestSchema, async (req) => {
      state.calls.push(req.params.name);
      return { content: [{ type: "text", text: `called ${req.params.name}` }] };
    });
    return s;
  };
  state.http.on("request", (req: IncomingMessage, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.method === "DELETE") state.deletes++;
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      const request = new Request(`http://127.0.0.1${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
      if (!transport) {
        const t = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: true,
          onsessioninitialized: (id) => {
            sessions.set(id, t);
          },
        });
        await newServer().connect(t);
        transport = t;
      }
      const response = await transport.handleRequest(request);
      res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
      res.end(Buffer.from(await response.arrayBuffer()));
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  state.url = new URL(`http://127.0.0.1:${await listen(state.http, 0)}/mcp`);
  return state;
}

function customerMounting(url: URL, tools: Record<string, { effect: "read" | "write" }> = {}): CustomerConfig {
  return {
    ...realCustomer("acme"),
    mcpServers: McpServers.parse([{ name: "inventory", transport: "http", url: url.href, tools, timeoutMs: 5000 }]),
  };
}

describe("mounting a customer's MCP server (the client side)", () => {
  const servers: OddServer[] = [];
  afterAll(async () => {
    for (const s of servers) await closeServer(s.http);
  });

  const LONG_A = `warehouse_${"a".repeat(50)}_reserve_stock`;
  const LONG_B = `warehouse_${"a".repeat(50)}_release_stock`;

  it("drops only the tool without an object schema, follows 25 pages, maps odd names safely, and ends its session", async () => {
    // Prepare
    const odd = await oddServer(25, [
      { name: "no_schema_type", inputSchema: { properties: {} } },
      { name: "stock.lookup", inputSchema: { type: "object" } },
      { name: LONG_A, inputSchema: { type: "object" } },
      { name: LONG_B, inputSchema: { type: "object" } },
    ]);
    servers.push(odd);
    // Act
    const toolset = await openToolsets(customerMounting(odd.url, { "stock.lookup": { effect: "read" } }));
    const names = toolset.tools.map((t) => t.name);
    const dotted = toolset.tools.find((t) => t.remoteName === "stock.lookup");
    const result = await dotted?.run({}, { runId: "acme-edge" } as never);
    await toolset.close();
    // Assess: every page, one tool dropped with its own line, the server not marked unavailable.
    expect(names.filter((n) => n.startsWith("inventory.paged_"))).toHaveLength(25);
    expect(names.some((n) => n.includes("no_schema_type"))).toBe(false);
    expect(toolset.problems).toContainEqual(
      expect.stringMatching(/"no_schema_type" has an inputSchema without type "object"/),
    );
    expect(toolset.problems.some((p) => /unavailable/.test(p))).toBe(false);
    // Odd names: API-safe on the wire, distinct, and calls reach the server under its own name.
    for (const n of names) expect(wireToolName(n)).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(new Set(names).size).toBe(names.length);
    const long = toolset.tools.filter((t) => t.remoteName === LONG_A || t.remoteName === LONG_B);
    expect(long).toHaveLength(2);
    expect(long[0]?.name).not.toBe(long[1]?.name);
    expect(dotted?.effect).toBe("read");
    expect(result?.content).toBe("called stock.lookup");
    expect(odd.calls).toEqual(["stock.lookup"]);
    expect(toolset.problems).toContainEqual(
      expect.stringMatching(/"stock\.lookup" is offered as inventory\.stock_lookup_/),
    );
    // The stateful server's session was ended with DELETE.
    expect(odd.deletes).toBe(1);
  });

  it("a server that pages for ever is cut at a bound, and the cut is said", async () => {
    const odd = await oddServer(0, []);
    servers.push(odd);
    const toolset = await openToolsets(customerMounting(odd.url));
    await toolset.close();
    expect(toolset.tools).toHaveLength(100);
    expect(toolset.problems).toContainEqual(expect.stringMatching(/tool listing cut after 100 pages and 100 tools/));
  });
});

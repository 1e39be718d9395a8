import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { type McpToolset, openToolsets } from "../../lambdas/shared/mcp/client.js";
import { McpServers } from "../../lambdas/shared/mcp/config.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ToolResultBlock } from "../../lambdas/shared/model/types.js";
import type { ToolContext } from "../../lambdas/shared/tools/types.js";
import { closeServer, listen } from "../../local/ports.js";
import { LocalStack } from "../../local/stack.js";
import { REPO_DIR, realCustomer, reply, sampleBytes, tempDir, text, toolUse } from "../support/stack.js";

/**
 * A hostile MCP server answers with each malformed shape the SDK cannot read. The SDK alone drops most
 * of them (or never hears an answer) and the call waits for its timeout; po-agent's client fails the
 * call at once, naming the server, the method and tool, and the problem. Every server here has a 10 s
 * timeout: a call that waited for it says "no answer within 10000 ms" and fails the exact message
 * asserted (no wall-clock assertion). Valid answers, `isError` results and log lines on stdout stay
 * as they were.
 */
const ctx = (runId: string) => ({ runId }) as ToolContext;
const TIMEOUT_MS = 10_000;
const customerWith = (servers: unknown[]): CustomerConfig => ({
  ...realCustomer("acme"),
  mcpServers: McpServers.parse(servers),
});
const TOOLS = { lookup: { effect: "read" }, create_order: { effect: "write" } };

/** A hand-written JSON-RPC server over stdio; MODE picks its answer, CALLS_FILE counts the calls that reached it. */
const HOSTILE_STDIO = `
import readline from "node:readline";
import { appendFileSync } from "node:fs";
const mode = process.env.MODE;
const out = (m) => process.stdout.write((typeof m === "string" ? m : JSON.stringify(m)) + "\\n");
const ok = { content: [{ type: "text", text: "done" }] };
let held;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  const id = m.id;
  if (m.method === "initialize") {
    if (mode === "init-null") return out({ jsonrpc: "2.0", id, result: null });
    return out({ jsonrpc: "2.0", id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "hostile", version: "1" } } });
  }
  if (m.method === "tools/list") {
    if (mode === "list-string") return out({ jsonrpc: "2.0", id, result: "tools" });
    return out({ jsonrpc: "2.0", id, result: { tools: [{ name: "lookup", inputSchema: { type: "object" } }, { name: "create_order", inputSchema: { type: "object" } }] } });
  }
  if (process.env.CALLS_FILE) appendFileSync(process.env.CALLS_FILE, m.params.name + "\\n");
  const answers = {
    "result-null": { jsonrpc: "2.0", id, result: null },
    "result-string": { jsonrpc: "2.0", id, result: "done" },
    "result-array": { jsonrpc: "2.0", id, result: [ok] },
    both: { jsonrpc: "2.0", id, result: ok, error: { code: -32603, message: "and failed" } },
    "code-string": { jsonrpc: "2.0", id, error: { code: "E_FAIL", message: "failed" } },
    "unknown-id": { jsonrpc: "2.0", id: id + 1000, result: ok },
    "jsonrpc-1": { jsonrpc: "1.0", id, result: ok },
    "not-json": '{"jsonrpc":"2.0","id":' + id + ',"result":',
    "null-id-error": { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } },
    batch: [{ jsonrpc: "2.0", id, result: ok }],
    "tool-error": { jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "no such vendor" }], isError: true } },
  };
  if (mode === "late") {
    // The first call is answered only when the second arrives: after the client gave up on it.
    if (held === undefined) return void (held = id);
    out({ jsonrpc: "2.0", id: held, result: ok });
    return out({ jsonrpc: "2.0", id, result: ok });
  }
  if (mode === "object-log-then-valid") {
    // console.log of an object prints it as Node shows it, not as JSON: "{ tool: 'lookup' }".
    console.log({ tool: m.params.name });
    return void setTimeout(() => out({ jsonrpc: "2.0", id, result: ok }), 200);
  }
  if (mode === "inspected-jsonrpc-log-then-valid") {
    // console.log of an object holding JSON text: Node quotes the string, "{ got: '{"jsonrpc":"2.0","id":2}' }".
    console.log({ got: JSON.stringify({ jsonrpc: m.jsonrpc, id }) });
    return void setTimeout(() => out({ jsonrpc: "2.0", id, result: ok }), 200);
  }
  if (mode === "json-log-with-id-then-valid") {
    // A JSON log line that has an id and an error of its own, but no jsonrpc and no id the client sent.
    out({ level: 50, id: "job-7", error: "upstream slow" });
    return void setTimeout(() => out({ jsonrpc: "2.0", id, result: ok }), 200);
  }
  if (mode === "malformed-duplicate") {
    // The first call is answered, then again, malformed, once the second call is pending.
    if (held === undefined) {
      held = id;
      return out({ jsonrpc: "2.0", id, result: ok });
    }
    out({ jsonrpc: "2.0", id: held, result: null });
    return void setTimeout(() => out({ jsonrpc: "2.0", id, result: ok }), 200);
  }
  if (mode === "logs-then-valid") {
    out("hostile server: handling a call");
    out({ level: 30, msg: "calling", error: "none" });
    // The answer comes in a later chunk than the log lines, so they are read while the call is pending.
    return void setTimeout(() => out({ jsonrpc: "2.0", id, result: ok }), 200);
  }
  out(answers[mode] ?? { jsonrpc: "2.0", id, result: ok });
});
`;

const stdioServer = (mode: string, extra: Record<string, string> = {}) => ({
  name: "hostile",
  transport: "stdio",
  command: process.execPath,
  args: ["--input-type=module", "-e", HOSTILE_STDIO],
  env: { MODE: mode, ...extra },
  tools: TOOLS,
  timeoutMs: TIMEOUT_MS,
});

const malformed = (tool: string, problem: string) =>
  `hostile.${tool} failed: MCP server hostile answered tools/call ${tool} with a malformed response: ${problem}`;

describe("a hostile MCP server over stdio: each malformed answer fails the call at once", () => {
  let toolset: McpToolset | undefined;
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
  });

  const call = async (mode: string, tool = "lookup", extra: Record<string, string> = {}) => {
    toolset = await openToolsets(customerWith([stdioServer(mode, extra)]), { cwd: REPO_DIR });
    expect(toolset.problems).toEqual([]);
    const found = toolset.tools.find((t) => t.name === `hostile.${tool}`);
    if (!found) throw new Error(`hostile.${tool} is not mounted`);
    return found.run({}, ctx("r-malformed"));
  };

  it.each([
    ["result-null", "result is null, expected an object"],
    ["result-string", "result is a string, expected an object"],
    ["result-array", "result is an array, expected an object"],
    ["both", "it has both result and error"],
    ["code-string", "error.code is a string, expected an integer"],
    ["unknown-id", 'a response to id "1002", which was never sent'],
    ["jsonrpc-1", 'jsonrpc is "1.0", expected "2.0"'],
    ["not-json", 'a line that is not JSON ("{\\"jsonrpc\\":\\"2.0\\",\\"id\\":2,\\"result\\":")'],
    ["null-id-error", 'an error without a request id (-32700 "Parse error")'],
    ["batch", "a batch (a JSON array), which the SDK does not read over stdio"],
  ])("%s: %s", async (mode, problem) => {
    const out = await call(mode);
    expect(out).toEqual({ content: malformed("lookup", problem), isError: true });
  });

  it("a tool-level isError result stays a tool result, and log lines before a valid answer are skipped", async () => {
    expect(await call("tool-error")).toEqual({ content: "no such vendor", isError: true });
    await toolset?.close();
    expect(await call("logs-then-valid")).toEqual({ content: "done" });
  });

  it("log lines that start with { (console.log of an object, a JSON log with an id of its own) are skipped like any log line", async () => {
    expect(await call("object-log-then-valid")).toEqual({ content: "done" });
    await toolset?.close();
    // Node's view of an object whose string value is JSON text naming "jsonrpc": still a log line.
    expect(await call("inspected-jsonrpc-log-then-valid")).toEqual({ content: "done" });
    await toolset?.close();
    // A JSON log line with an id and an error field of its own (no jsonrpc, an id never sent).
    expect(await call("json-log-with-id-then-valid")).toEqual({ content: "done" });
  });

  it("a malformed second answer to a call already answered is dropped, not blamed on the call now pending", async () => {
    toolset = await openToolsets(customerWith([stdioServer("malformed-duplicate")]), { cwd: REPO_DIR });
    const lookup = toolset.tools.find((t) => t.name === "hostile.lookup");
    expect(await lookup?.run({ n: 1 }, ctx("r-dup"))).toEqual({ content: "done" });
    expect(await lookup?.run({ n: 2 }, ctx("r-dup"))).toEqual({ content: "done" });
  });

  it("a real timeout is still a timeout, and the late answer to it is not taken for a malformed one", async () => {
    toolset = await openToolsets(customerWith([{ ...stdioServer("late"), timeoutMs: 1000 }]), { cwd: REPO_DIR });
    const lookup = toolset.tools.find((t) => t.name === "hostile.lookup");
    const first = await lookup?.run({ n: 1 }, ctx("r-late"));
    const second = await lookup?.run({ n: 2 }, ctx("r-late"));
    expect(first).toEqual({
      content: "hostile.lookup failed: hostile failed while calling it: no answer within 1000 ms",
      isError: true,
    });
    expect(second).toEqual({ content: "done" });
  });

  it("a write whose answer is malformed reached the server: its outcome is said to be unknown, not 'not done'", async () => {
    const dir = tempDir("mcp-malformed-write");
    const calls = join(dir, "calls.txt");
    writeFileSync(calls, "");
    try {
      const out = await call("result-null", "create_order", { CALLS_FILE: calls });
      expect(out).toEqual({
        content: `${malformed("create_order", "result is null, expected an object")}; it reached the server, so hostile.create_order may have been done: check before calling it again`,
        isError: true,
      });
      expect(out.content).not.toMatch(/not called|not done/);
      expect(readFileSync(calls, "utf8")).toBe("create_order\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a malformed answer to initialize or tools/list marks the server unavailable at once", async () => {
    toolset = await openToolsets(customerWith([stdioServer("init-null")]), { cwd: REPO_DIR });
    const init = toolset.problems;
    await toolset.close();
    toolset = await openToolsets(customerWith([stdioServer("list-string")]), { cwd: REPO_DIR });
    expect(init).toEqual([
      "MCP server hostile is unavailable: MCP server hostile answered initialize with a malformed response: result is null, expected an object",
    ]);
    expect(toolset.problems).toEqual([
      "MCP server hostile is unavailable: MCP server hostile answered tools/list with a malformed response: result is a string, expected an object",
    ]);
  });
});

// ---- Streamable HTTP ----------------------------------------------------------------------------

/** What the hostile HTTP server sends for a tools/call: status, headers, body. */
type HttpAnswer = { status: number; headers: Record<string, string>; body: string; pieces?: string[] };
const json = (body: unknown): HttpAnswer => ({
  status: 200,
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const sse = (body: string): HttpAnswer => ({ status: 200, headers: { "content-type": "text/event-stream" }, body });
const OK = { content: [{ type: "text", text: "done" }] };
function inPieces(event: string): HttpAnswer {
  const bytes = Buffer.from(event, "utf8");
  const cuts = [20, bytes.indexOf(Buffer.from("ö", "utf8")) + 1, bytes.length - 3, bytes.length];
  const pieces = cuts.map((end, i) => bytes.subarray(i === 0 ? 0 : cuts[i - 1], end).toString("latin1"));
  return { ...sse(""), pieces };
}

const HTTP_ANSWERS: Record<string, (id: number) => HttpAnswer> = {
  "json-result-null": (id) => json({ jsonrpc: "2.0", id, result: null }),
  "json-empty": () => json(""),
  "json-not-json": () => json("Internal error, sorry"),
  "empty-no-content-type": () => ({ status: 200, headers: {}, body: "" }),
  html: () => ({ status: 200, headers: { "content-type": "text/html" }, body: "<html>hello</html>" }),
  accepted: () => ({ status: 202, headers: {}, body: "" }),
  "sse-result-null": (id) => sse(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, result: null })}\n\n`),
  "sse-ends": () => sse(": keep-alive\n\n"),
  "sse-garbage-then-end": () => sse("data: hello\n\n"),
  "sse-unfinished": (id) => sse(`data: ${JSON.stringify({ jsonrpc: "2.0", id, result: OK })}\n`),
  "sse-valid-crlf": (id) =>
    sse(
      `: hi\r\ndata: not json\r\n\r\nevent: message\r\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, result: OK })}\r\n\r\n`,
    ),
  // A CRLF split between two writes, then the blank line that ends the event in a third.
  "sse-garbage-cr-lf-lf": () => ({ ...sse(""), pieces: ["data: hello\r", "\n", "\n"] }),
  "json-valid": (id) => json({ jsonrpc: "2.0", id, result: OK }),
  // Valid too: a batch holding the response and a notification; the id as a string (the SDK matches Number(id)).
  "json-batch-valid": (id) =>
    json([
      { jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "x" } },
      { jsonrpc: "2.0", id, result: OK },
    ]),
  "json-string-id-valid": (id) => json({ jsonrpc: "2.0", id: String(id), result: OK }),
  // Well-formed, but for another request (one already settled): the call's own answer never comes.
  "json-other-id": (id) => json({ jsonrpc: "2.0", id: id - 1, result: OK }),
  "json-error-without-id": () => json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } }),
  "json-notification-only": () => json({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info" } }),
  // One event written in pieces: split inside the JSON, inside a two-byte character and inside the CRLF.
  "sse-pieces-result-string": (id) =>
    inPieces(`data: ${JSON.stringify({ jsonrpc: "2.0", id, result: "dön" })}\r\n\r\n`),
  "sse-valid-pieces": (id) =>
    inPieces(
      `data: ${JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "dön" }] } })}\r\n\r\n`,
    ),
};

/** A stateless Streamable HTTP server: initialize and tools/list are proper, tools/call answers per `mode.current`. */
async function hostileHttp(mode: { current: string }): Promise<{ url: URL; http: HttpServer }> {
  const held: { answer?: () => void; release?: boolean } = {};
  const http = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.method !== "POST") return res.writeHead(405).end();
      if (req.url?.endsWith("/release")) {
        // Modes *-held: the held call is answered now (or as soon as it arrives).
        if (held.answer) held.answer();
        else held.release = true;
        held.answer = undefined;
        return res.writeHead(200).end();
      }
      const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        id?: number;
        method: string;
        params?: { protocolVersion?: string; arguments?: { n?: number } };
      };
      if (m.id === undefined) return res.writeHead(202).end();
      if (mode.current.endsWith("-held") && m.method === "tools/call") {
        // Call n 2 is answered (validly) only on POST /release; call n 1 gets a response to another id: one
        // never sent (json-stray-held), the held call's, sent just before it (json-cross-held), or an error
        // without an id (json-anonymous-held).
        const id = m.id;
        const send = (a: HttpAnswer) => res.writeHead(a.status, a.headers).end(a.body);
        if (m.params?.arguments?.n !== 2) {
          if (mode.current === "json-stray-held") return send(json({ jsonrpc: "2.0", id: id + 1000, result: OK }));
          if (mode.current === "json-anonymous-held")
            return send(json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } }));
          const notYours = { content: [{ type: "text", text: "not yours" }] };
          return send(json({ jsonrpc: "2.0", id: id - 1, result: notYours }));
        }
        if (held.release) {
          held.release = false;
          return send(json({ jsonrpc: "2.0", id, result: OK }));
        }
        held.answer = () => send(json({ jsonrpc: "2.0", id, result: OK }));
        return;
      }
      const answer: HttpAnswer =
        m.method === "initialize"
          ? json({
              jsonrpc: "2.0",
              id: m.id,
              result: {
                protocolVersion: m.params?.protocolVersion,
                capabilities: { tools: {} },
                serverInfo: { name: "hostile", version: "1" },
              },
            })
          : m.method === "tools/list"
            ? json({
                jsonrpc: "2.0",
                id: m.id,
                result: { tools: [{ name: "lookup", inputSchema: { type: "object" } }] },
              })
            : ((HTTP_ANSWERS[mode.current] ?? HTTP_ANSWERS["json-valid"])?.(m.id) ?? json({}));
      res.writeHead(answer.status, answer.headers);
      // Pieces go out apart, so the client reads them as separate chunks.
      for (const piece of answer.pieces ?? []) {
        res.write(Buffer.from(piece, "latin1"));
        await new Promise((r) => setTimeout(r, 30));
      }
      res.end(answer.body);
    })();
  });
  return { url: new URL(`http://127.0.0.1:${await listen(http, 0)}/mcp`), http };
}

describe("a hostile MCP server over Streamable HTTP: each malformed answer fails the call at once", () => {
  const mode = { current: "json-valid" };
  let server: { url: URL; http: HttpServer };
  beforeAll(async () => {
    server = await hostileHttp(mode);
  });
  afterAll(async () => {
    await closeServer(server.http);
  });

  /** The hostile server mounted as one read tool, `hostile.lookup`. */
  const openHostile = () =>
    openToolsets(
      customerWith([
        {
          name: "hostile",
          transport: "http",
          url: server.url.href,
          tools: { lookup: { effect: "read" } },
          timeoutMs: TIMEOUT_MS,
        },
      ]),
    );

  const call = async (m: string) => {
    mode.current = m;
    const toolset = await openHostile();
    try {
      expect(toolset.problems).toEqual([]);
      return await toolset.tools[0]?.run({}, ctx("r-http"));
    } finally {
      await toolset.close();
    }
  };

  it.each([
    ["json-result-null", "result is null, expected an object"],
    ["json-empty", "an empty body"],
    ["json-not-json", 'a body that is not JSON ("Internal error, sorry")'],
    ["empty-no-content-type", "no content-type, expected application/json or text/event-stream"],
    ["html", 'content-type "text/html", expected application/json or text/event-stream'],
    ["accepted", "HTTP 202 Accepted, which answers no request"],
    ["sse-result-null", "result is null, expected an object"],
    ["sse-ends", "its event stream ended without a response"],
    [
      "sse-garbage-then-end",
      'its event stream ended without a response (before it, an event that is not JSON ("hello"))',
    ],
    [
      "sse-garbage-cr-lf-lf",
      'its event stream ended without a response (before it, an event that is not JSON ("hello"))',
    ],
    ["sse-unfinished", "its event stream ended without a response"],
    ["sse-pieces-result-string", "result is a string, expected an object"],
    ["json-other-id", 'its answer holds no response to it, only to id "1"'],
    ["json-notification-only", "its answer holds no response to it"],
    [
      "json-error-without-id",
      'its answer holds no response to it, only an error without a request id (-32700 "Parse error")',
    ],
  ])("%s: %s", async (m, problem) => {
    expect(await call(m)).toEqual({ content: malformed("lookup", problem), isError: true });
  });

  it.each([
    ["json-stray-held", '"1003"'],
    ["json-cross-held", '"2"'],
    ["json-anonymous-held", "none"],
  ])(
    "%s: a stray response in one call's JSON answer (to id %s) fails that call only, not another call pending beside it, nor answers it",
    async (m, strayId) => {
      mode.current = m;
      const toolset = await openHostile();
      try {
        const lookup = toolset.tools[0];
        const held = lookup?.run({ n: 2 }, ctx("r-http-held"));
        const stray = await lookup?.run({ n: 1 }, ctx("r-http-stray"));
        await fetch(new URL("/release", server.url), { method: "POST" });
        expect(stray).toEqual({
          content: malformed(
            "lookup",
            strayId === "none"
              ? 'its answer holds no response to it, only an error without a request id (-32700 "Parse error")'
              : `its answer holds no response to it, only to id ${strayId}`,
          ),
          isError: true,
        });
        expect(await held).toEqual({ content: "done" });
      } finally {
        await toolset.close();
      }
    },
  );

  it("valid answers are untouched: JSON, SSE with CRLF lines, a comment and a skipped garbage event, SSE in pieces", async () => {
    expect(await call("json-valid")).toEqual({ content: "done" });
    expect(await call("json-batch-valid")).toEqual({ content: "done" });
    expect(await call("json-string-id-valid")).toEqual({ content: "done" });
    expect(await call("sse-valid-crlf")).toEqual({ content: "done" });
    expect(await call("sse-valid-pieces")).toEqual({ content: "dön" });
  });
});

// ---- the write path, end to end -------------------------------------------------------------------

describe("a malformed answer to an MCP write, on the local stack", () => {
  let stack: LocalStack;
  let dataDir: string;
  let calls: string;
  const ORDER = { poNumber: "ACM-MALFORMED-1", vendorId: "V-1004", totalMinor: 5000, currency: "USD" };
  /** Asks for the write once, then stops with whatever the tool said. */
  const model = new ScriptedModelClient((request: ModelRequest) => {
    const results = request.messages
      .flatMap((m) => m.content)
      .filter((b): b is ToolResultBlock => b.type === "tool_result");
    if (results.length === 0) return reply([toolUse("toolu_m1", "hostile.create_order", ORDER)]);
    return reply([text("OUTCOME: handed_to_human — the ERP's answer to the order was unreadable.")]);
  });
  beforeAll(async () => {
    dataDir = tempDir("mcp-malformed-e2e");
    calls = join(dataDir, "calls.txt");
    writeFileSync(calls, "");
    const customer: CustomerConfig = {
      ...customerWith([stdioServer("result-null", { CALLS_FILE: calls })]),
      operatorOverride: { enabled: true, operators: ["ops"] },
    };
    stack = await LocalStack.start({
      dataDir,
      customers: [customer],
      retryIntervalMs: 0,
      model: () => ({ client: model, modelId: "claude-sonnet-5", note: "scripted" }),
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("is recorded once as an error whose outcome is unknown, and the write is not sent again", async () => {
    const runId = await stack.submit("acme", "malformed.json", sampleBytes("acme", "01-packaging-saved.json"));
    let run = await stack.waitSettled(runId, 60_000);
    for (let i = 0; i < 3 && run?.status === "awaiting_approval" && run.pendingApprovalId; i++) {
      await stack.decideByOperator(run.pendingApprovalId, "approve", "ops");
      run = await stack.waitSettled(runId, 60_000);
    }

    const recorded = (await stack.ledger.getToolCalls(runId)).filter((c) => c.name === "hostile.create_order");
    expect(recorded).toEqual([
      expect.objectContaining({
        isError: true,
        content: `${malformed("create_order", "result is null, expected an object")}; it reached the server, so hostile.create_order may have been done: check before calling it again`,
      }),
    ]);
    // The server got the write exactly once: a malformed answer is a tool result, not a crash to retry.
    expect(readFileSync(calls, "utf8")).toBe("create_order\n");
  }, 120_000);
});

import { rmSync } from "node:fs";
import type { LambdaFunctionURLEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleFunctionUrlEvent, handleMcpHttp } from "../../lambdas/shared/mcp/http.js";
import type { PoAgentBackend } from "../../lambdas/shared/mcp/server.js";
import { localBackend } from "../../local/mcp-server.js";
import { LocalStack } from "../../local/stack.js";
import { realCustomers, tempDir } from "../support/stack.js";

/**
 * A hostile client posts malformed JSON-RPC to po-agent's stateless Streamable HTTP endpoint (the
 * Lambda handler's core). Each gets the JSON-RPC 2.0 code for its fault with a one-line message
 * naming it, no zod dump and no stack trace, and nothing reaches the backend: the bodies mostly
 * carry a submit_document call, so a leak would be a counted submission and ledger write.
 */

interface RpcError {
  jsonrpc: string;
  id: unknown;
  error?: { code: number; message: string; data?: unknown };
  result?: unknown;
}

const URL_HOST = "abc.lambda-url.us-east-1.on.aws";

const post = (body: string | undefined, headers: Record<string, string> = {}) =>
  new Request(`https://${URL_HOST}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      host: URL_HOST,
      ...headers,
    },
    ...(body === undefined ? {} : { body }),
  });

/** A submit_document call that would create a run if it got through. */
const submitParams = (text: string) => ({
  name: "submit_document",
  arguments: { customer: "acme", fileName: "po.json", text },
});

const rpc = (fields: Record<string, unknown>) => JSON.stringify(fields);

/** Fails if an answer looks like an internal dump: zod's issue list, a stack, several lines. */
function expectPlainMessage(message: string) {
  expect(message).not.toMatch(/\n/);
  expect(message).not.toMatch(/\bat \S+ \(|\.ts:\d+|\.js:\d+/);
  expect(message).not.toMatch(/"code"\s*:|"path"\s*:|invalid_type|"expected"/);
  expect(message.length).toBeLessThanOrEqual(300);
  // No raw control character (a terminal escape reflected from the body would reach a log or a console).
  expect(message).not.toMatch(/\p{Cc}/u);
}

describe("po-agent's MCP endpoint answers malformed JSON-RPC clearly", () => {
  let stack: LocalStack;
  let dataDir: string;
  const effects = { submits: 0, ledgerWrites: 0, decisions: 0 };

  /** The local backend with its submissions, decisions and every ledger write counted. */
  const backend = (): PoAgentBackend => {
    const b = localBackend(stack);
    const ledger = new Proxy(b.ledger, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        const reads = typeof prop === "string" && /^(get|list|require|read|find|query)/.test(prop);
        return (...args: unknown[]) => {
          if (!reads) effects.ledgerWrites++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return {
      ...b,
      ledger,
      decideDeps: (c) => {
        effects.decisions++;
        return b.decideDeps(c);
      },
      submit: (c, f, body) => {
        effects.submits++;
        return b.submit(c, f, body);
      },
    };
  };
  const send = async (body: string | undefined, headers?: Record<string, string>) => {
    const res = await handleMcpHttp(post(body, headers), backend(), { bearerToken: async () => undefined });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get("content-type"), text };
  };

  beforeAll(async () => {
    dataDir = tempDir("mcp-malformed");
    stack = await LocalStack.start({ dataDir, customers: realCustomers() });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // [case, body, HTTP status, JSON-RPC code, id answered, what the message must name]
  const table: [string, string, number, number, unknown, RegExp][] = [
    ["an empty body", "", 400, -32700, null, /body is empty/],
    ["a body of spaces", "  \n ", 400, -32700, null, /body is empty/],
    ["a body that is not JSON", '{"jsonrpc":"2.0","id":1,', 400, -32700, null, /not JSON/],
    [
      "a body that is not JSON, with terminal escapes where the id should be",
      '{"jsonrpc":"2.0","id":\u001b[2J\u001b[31m}',
      400,
      -32700,
      null,
      /not JSON/,
    ],
    ["a JSON number", "42", 400, -32600, null, /must be a JSON object, got a number/],
    ["a JSON string", '"tools/list"', 400, -32600, null, /must be a JSON object, got a string/],
    ["JSON null", "null", 400, -32600, null, /must be a JSON object, got null/],
    ["an empty batch", "[]", 400, -32600, null, /batch is empty/],
    [
      "params as a string",
      rpc({ jsonrpc: "2.0", id: 1, method: "tools/list", params: "x" }),
      400,
      -32600,
      1,
      /params must be an object, got a string/,
    ],
    [
      "params as a number on a tool call",
      rpc({ jsonrpc: "2.0", id: 2, method: "tools/call", params: 7 }),
      400,
      -32600,
      2,
      /params must be an object, got a number/,
    ],
    [
      "params as null",
      rpc({ jsonrpc: "2.0", id: 3, method: "tools/call", params: null }),
      400,
      -32600,
      3,
      /params must be an object, got null/,
    ],
    [
      "params as an array (positional)",
      rpc({ jsonrpc: "2.0", id: 4, method: "tools/call", params: ["submit_document", {}] }),
      400,
      -32602,
      4,
      /params must be an object, got an array/,
    ],
    [
      "jsonrpc 1.0",
      rpc({ jsonrpc: "1.0", id: 5, method: "tools/call", params: submitParams("a") }),
      400,
      -32600,
      5,
      /jsonrpc must be "2.0", got "1.0"/,
    ],
    [
      "jsonrpc as a number",
      rpc({ jsonrpc: 2, id: 6, method: "tools/call", params: submitParams("b") }),
      400,
      -32600,
      6,
      /jsonrpc must be "2.0", got 2/,
    ],
    [
      "no jsonrpc member",
      rpc({ id: 7, method: "tools/call", params: submitParams("c") }),
      400,
      -32600,
      7,
      /jsonrpc must be "2.0", got nothing/,
    ],
    ["no method", rpc({ jsonrpc: "2.0", id: 8, params: submitParams("d") }), 400, -32600, 8, /method is missing/],
    [
      "method as a number",
      rpc({ jsonrpc: "2.0", id: 9, method: 42, params: submitParams("e") }),
      400,
      -32600,
      9,
      /method must be a string, got 42/,
    ],
    [
      "id as a boolean (unreadable: answered with id null)",
      rpc({ jsonrpc: "2.0", id: true, method: "tools/call", params: submitParams("f") }),
      400,
      -32600,
      null,
      /id must be a string or an integer, got a boolean/,
    ],
    [
      "id as an object",
      rpc({ jsonrpc: "2.0", id: { x: 1 }, method: "tools/call", params: submitParams("g") }),
      400,
      -32600,
      null,
      /id must be a string or an integer, got an object/,
    ],
    [
      "id as a fraction",
      rpc({ jsonrpc: "2.0", id: 1.5, method: "tools/call", params: submitParams("h") }),
      400,
      -32600,
      null,
      /id must be a string or an integer, got 1.5/,
    ],
    [
      "id null (MCP forbids it)",
      rpc({ jsonrpc: "2.0", id: null, method: "tools/call", params: submitParams("i") }),
      400,
      -32600,
      null,
      /id must not be null/,
    ],
    [
      "an unexpected envelope member",
      rpc({ jsonrpc: "2.0", id: 10, method: "tools/call", params: submitParams("j"), approved: true }),
      400,
      -32600,
      10,
      /unexpected member "approved"/,
    ],
    [
      "_meta that is not an object",
      rpc({ jsonrpc: "2.0", id: 11, method: "tools/call", params: { ...submitParams("k"), _meta: "x" } }),
      400,
      -32602,
      11,
      /params\._meta must be an object, got a string/,
    ],
    [
      "a notification with params as a string",
      rpc({ jsonrpc: "2.0", method: "notifications/initialized", params: "x" }),
      400,
      -32600,
      null,
      /params must be an object, got a string/,
    ],
    [
      "a response whose result is not an object",
      rpc({ jsonrpc: "2.0", id: 12, result: "ok" }),
      400,
      -32600,
      12,
      /result must be an object, got a string/,
    ],
    // Valid envelopes the SDK's method schemas refuse: it answered -32603 with the zod issues as JSON.
    [
      "tool arguments as a string",
      rpc({ jsonrpc: "2.0", id: 13, method: "tools/call", params: { name: "submit_document", arguments: "x" } }),
      200,
      -32602,
      13,
      /params\.arguments must be an object, got a string/,
    ],
    [
      "tool arguments as an array",
      rpc({ jsonrpc: "2.0", id: 14, method: "tools/call", params: { name: "submit_document", arguments: ["l"] } }),
      200,
      -32602,
      14,
      /params\.arguments must be an object, got an array/,
    ],
    [
      "initialize without params",
      rpc({ jsonrpc: "2.0", id: 15, method: "initialize" }),
      200,
      -32602,
      15,
      /initialize: params is missing/,
    ],
    [
      "initialize with a numeric protocolVersion",
      rpc({ jsonrpc: "2.0", id: 16, method: "initialize", params: { protocolVersion: 5 } }),
      200,
      -32602,
      16,
      /params\.protocolVersion must be a string, got a number/,
    ],
    [
      "resources/read without a uri",
      rpc({ jsonrpc: "2.0", id: 17, method: "resources/read", params: {} }),
      200,
      -32602,
      17,
      /params\.uri is missing/,
    ],
    [
      "tools/list with a numeric cursor",
      rpc({ jsonrpc: "2.0", id: 18, method: "tools/list", params: { cursor: 5 } }),
      200,
      -32602,
      18,
      /params\.cursor must be a string, got a number/,
    ],
    [
      "an unknown method",
      rpc({ jsonrpc: "2.0", id: 19, method: "tools/delete_everything", params: {} }),
      200,
      -32601,
      19,
      /method not found: "tools\/delete_everything"/,
    ],
  ];

  it.each(table)(
    "%s: answered with the spec's code, naming the problem, and nothing runs",
    async (_, body, status, code, id, names) => {
      const before = { ...effects };

      const res = await send(body);

      expect(res.status).toBe(status);
      expect(res.contentType).toMatch(/application\/json/);
      const answer = JSON.parse(res.text) as RpcError;
      expect(answer).toMatchObject({ jsonrpc: "2.0", id, error: { code } });
      expect(answer.error?.message).toMatch(names);
      expectPlainMessage(answer.error?.message ?? "");
      expect(answer.error?.data).toBeUndefined();
      expect(effects).toEqual(before);
    },
  );

  it("a batch runs its good messages and answers each bad one by its id (JSON-RPC 2.0 section 6)", async () => {
    const before = { ...effects };
    const batch = JSON.stringify([
      { jsonrpc: "2.0", id: "good", method: "tools/call", params: submitParams('{"batch":"good"}') },
      { jsonrpc: "1.0", id: "old", method: "tools/call", params: submitParams('{"batch":"old"}') },
      { jsonrpc: "2.0", id: "str", method: "tools/call", params: "submit_document" },
      { jsonrpc: "2.0", id: false, method: "tools/call", params: submitParams('{"batch":"false"}') },
      { jsonrpc: "2.0", id: "list", method: "tools/list" },
    ]);

    const res = await send(batch);

    expect(res.status).toBe(200);
    const answers = JSON.parse(res.text) as RpcError[];
    const byId = new Map(answers.map((a) => [a.id, a]));
    expect(answers).toHaveLength(5);
    expect(byId.get("good")).toMatchObject({
      result: { content: [{ text: expect.stringContaining('"status": "submitted"') }] },
    });
    expect(byId.get("good")?.result).not.toHaveProperty("isError");
    expect(byId.get("list")?.result).toHaveProperty("tools");
    expect(byId.get("old")?.error).toMatchObject({
      code: -32600,
      message: expect.stringMatching(/jsonrpc must be "2.0"/),
    });
    expect(byId.get("str")?.error).toMatchObject({
      code: -32600,
      message: expect.stringMatching(/params must be an object/),
    });
    expect(byId.get(null)?.error).toMatchObject({
      code: -32600,
      message: expect.stringMatching(/id must be a string/),
    });
    for (const a of answers) if (a.error) expectPlainMessage(a.error.message);
    // Only the good call ran: one submission (its submitter recorded, then the run).
    expect(effects.submits - before.submits).toBe(1);
    expect(effects.ledgerWrites).toBeGreaterThan(before.ledgerWrites);
  });

  it("a batch of bad messages only is 400 with one error each, and nothing runs", async () => {
    const before = { ...effects };
    const res = await send(
      JSON.stringify([
        7,
        { jsonrpc: "2.0", id: 1, method: "tools/call", params: "x" },
        { jsonrpc: "2.0", method: "notifications/initialized", params: [] },
      ]),
    );
    expect(res.status).toBe(400);
    const answers = JSON.parse(res.text) as RpcError[];
    expect(answers.map((a) => [a.id, a.error?.code])).toEqual([
      [null, -32600],
      [1, -32600],
      [null, -32602],
    ]);
    expect(effects).toEqual(before);
  });

  it("a second request with the same id in a batch is refused, so every request gets an answer", async () => {
    const before = { ...effects };
    const res = await send(
      JSON.stringify([
        { jsonrpc: "2.0", id: 1, method: "ping" },
        { jsonrpc: "2.0", id: 1, method: "tools/call", params: submitParams('{"dup":1}') },
      ]),
    );
    const answers = JSON.parse(res.text) as RpcError[];
    expect(res.status).toBe(200);
    expect(answers).toHaveLength(2);
    expect(answers.find((a) => a.result)).toMatchObject({ id: 1, result: {} });
    expect(answers.find((a) => a.error)?.error).toMatchObject({
      code: -32600,
      message: expect.stringMatching(/id 1 is used twice in this batch/),
    });
    expect(effects).toEqual(before);
  });

  // Before: the SDK cancelled the request and never answered it, and the POST (the Lambda) waited for ever.
  it("a cancellation of a request in the same batch is ignored and the request is answered", async () => {
    const res = await send(
      JSON.stringify([
        { jsonrpc: "2.0", id: "c1", method: "tools/list" },
        { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "c1", reason: "hostile" } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ id: "c1", result: { tools: expect.any(Array) } });
  });

  it("valid messages are served as before: a notification 202 without a body, a request 200, a tool's bad argument an isError result", async () => {
    const note = await send(rpc({ jsonrpc: "2.0", method: "notifications/initialized" }));
    const list = await send(rpc({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
    // MCP 2025-11-25 (SEP-1303): a tool's input validation error is a tool execution error the model can read.
    const wrongArg = await send(
      rpc({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "get_run", arguments: { runId: 5 } } }),
    );
    expect([note.status, note.text]).toEqual([202, ""]);
    expect(list.status).toBe(200);
    expect(
      (JSON.parse(list.text) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name),
    ).toContain("submit_document");
    expect(JSON.parse(wrongArg.text)).toMatchObject({
      id: 2,
      result: { isError: true, content: [{ text: expect.stringMatching(/runId/) }] },
    });
  });

  it("the SDK's own header checks still come first (406 without text/event-stream in Accept, 415 for text/plain)", async () => {
    const noSse = await send("not json", { accept: "application/json" });
    const plain = await send('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}', {
      "content-type": "text/plain",
    });
    expect([noSse.status, plain.status]).toEqual([406, 415]);
  });

  it("through the Lambda glue (a Function URL event): params as a string is -32600 naming it, and nothing is submitted", async () => {
    const before = { ...effects };
    const event = {
      version: "2.0",
      rawPath: "/mcp",
      rawQueryString: "",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", host: URL_HOST },
      requestContext: { domainName: URL_HOST, http: { method: "POST", path: "/mcp" } },
      body: Buffer.from(rpc({ jsonrpc: "2.0", id: 1, method: "tools/call", params: "submit_document" })).toString(
        "base64",
      ),
      isBase64Encoded: true,
    } as unknown as LambdaFunctionURLEvent;

    const result = await handleFunctionUrlEvent(event, backend(), { bearerToken: async () => undefined });

    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: { code: -32600, message: "invalid request: params must be an object, got a string" },
    });
    expect(effects).toEqual(before);
  });
});

import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike, Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  ErrorCode,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  McpError,
  type MessageExtraInfo,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod/v3";
import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import type { Effect, Tool, ToolOutput } from "../tools/types.js";
import { BUILT_IN_TOOL_NAMES, type McpServerConfig } from "./config.js";
import { kindOf as kindOfValue } from "./kind.js";
import { jsonSchemaToZod, modelInputSchema } from "./schema.js";
import { NO_SCHEMA_VALIDATION } from "./validator.js";

/** The separator between a server's name and its tool's name: `erp.lookup_vendor`. */
export const NAMESPACE_SEPARATOR = ".";

/** `_meta` key carrying a key derived from run, tool and arguments: a server may dedupe a replayed write on it. */
export const IDEMPOTENCY_META_KEY = "po-agent/idempotency-key";

/** Longest tool result kept (characters); the rest is cut with a note. Large results go to S3 in runTool. */
const MAX_RESULT_CHARS = 200_000;

/** Most `tools/list` pages followed (a server that pages for ever is broken) and most tools kept. */
export const MAX_LIST_PAGES = 100;
export const MAX_LISTED_TOOLS = 1_000;

/** Tool names a server may use (MCP 2025-11-25: 1–128 of letters, digits, `_`, `-`, `.`; `/` seen too). */
const SPEC_TOOL_NAME = /^[A-Za-z0-9_./-]{1,128}$/;
/** What the Anthropic API accepts as a tool name; a mounted tool travels as `<server>__<local>`. */
const API_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const API_NAME_MAX = 64;
const WIRE_SEPARATOR = "__";

/**
 * The name a server's tool gets inside po-agent (`<server>.<local>`): the server's own name when
 * it is API-safe and short enough, else a sanitized prefix plus a hash of the original (so two
 * long names that share a prefix do not collide). Calls always use the server's own name.
 */
export function localToolName(server: string, remote: string): string {
  const room = API_NAME_MAX - server.length - WIRE_SEPARATOR.length;
  if (/^[A-Za-z0-9_-]+$/.test(remote) && remote.length <= room) return remote;
  const hash = sha256(remote).slice(0, 8);
  const base = remote.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, Math.max(1, room - hash.length - 1));
  return `${base}_${hash}`;
}

/** A tool of a customer's MCP server, shaped like a built-in tool; `inputSchema` is what the model sees. */
export interface McpTool extends Tool<Record<string, unknown>> {
  server: string;
  /** The tool's name on its server (without the namespace). */
  remoteName: string;
  /** The server's JSON input schema, forced to an object schema. */
  inputSchema: Record<string, unknown>;
  /** False when the tool is a stand-in for a declared tool of a server that could not be listed. */
  listed: boolean;
}

export interface McpToolset {
  tools: McpTool[];
  /** What was not mounted and why (server down, name clash, malformed listing); for the audit log. */
  problems: string[];
  /** Closes every connection (kills stdio children); safe to call twice. */
  close(): Promise<void>;
}

export interface OpenToolsetsOptions {
  /** Reads an `authSecretArn` (Secrets Manager in Lambda). @default - a server with a secret fails to connect */
  secretValue?: (arn: string) => Promise<string>;
  /** Extra environment for every stdio server (e.g. `PO_AGENT_DATA_DIR`). */
  env?: Record<string, string>;
  /** Working directory of stdio servers. @default process.cwd() */
  cwd?: string;
  /** Names already taken (built-ins). @default BUILT_IN_TOOL_NAMES */
  reservedNames?: readonly string[];
  /** Only these servers (a tool Lambda connects to the one it calls). @default - all */
  only?: readonly string[];
  /**
   * A reason not to connect to a server here (Lambda: stdio servers run only locally); its declared
   * tools are mounted as stand-ins that answer with the reason. @default - connect to every server
   */
  skip?: (server: McpServerConfig) => string | undefined;
  /** Builds the transport (tests inject in-memory transports). @default - stdio or Streamable HTTP per config */
  transport?: (server: McpServerConfig) => Promise<Transport> | Transport;
}

/** Why a connection or call failed, said so a model (and a human reading the trace) understands it. */
export class McpUnavailableError extends Error {
  override readonly name: string = "McpUnavailableError";
}

export const namespacedName = (server: string, tool: string) => `${server}${NAMESPACE_SEPARATOR}${tool}`;

/** True for names of mounted tools (the state machine routes these to the McpTool task). */
export const isMountedToolName = (name: string) => name.includes(NAMESPACE_SEPARATOR);

/**
 * Connects to each of the customer's MCP servers, lists their tools and mounts them as `Tool`s
 * named `<server>.<tool>` with the effect the config declares (`dangerous` when undeclared). A
 * server that cannot be reached, times out or lists garbage does not fail the run: its declared
 * tools are mounted as stand-ins that answer with the reason, and `problems` says what happened.
 */
export async function openToolsets(customer: CustomerConfig, opts: OpenToolsetsOptions = {}): Promise<McpToolset> {
  const reserved = new Set(opts.reservedNames ?? BUILT_IN_TOOL_NAMES);
  const servers = customer.mcpServers.filter((s) => !opts.only || opts.only.includes(s.name));
  const connections = servers.map((s) => new ServerConnection(s, opts));
  const listed = await Promise.all(
    connections.map((c): Promise<ListResult> => {
      const reason = opts.skip?.(c.config);
      return reason === undefined ? c.listTools() : Promise.resolve({ ok: false, error: reason });
    }),
  );
  const tools: McpTool[] = [];
  const problems: string[] = [];
  const taken = new Set(reserved);
  connections.forEach((conn, i) => {
    const result = listed[i];
    if (!result) return;
    const server = conn.config;
    if (!result.ok) {
      problems.push(`MCP server ${server.name} is unavailable: ${result.error}`);
      for (const [remoteName, decl] of Object.entries(server.tools)) {
        tools.push(stubTool(conn, remoteName, decl.effect, opts.skip?.(server)));
        taken.add(namespacedName(server.name, localToolName(server.name, remoteName)));
      }
      return;
    }
    problems.push(...result.problems);
    for (const t of result.tools) {
      if (!SPEC_TOOL_NAME.test(t.name)) {
        problems.push(`${server.name}: tool "${t.name.slice(0, 80)}" has a name outside the MCP spec; skipped`);
        continue;
      }
      const local = localToolName(server.name, t.name);
      const name = namespacedName(server.name, local);
      if (!API_TOOL_NAME.test(`${server.name}${WIRE_SEPARATOR}${local}`)) {
        problems.push(`${server.name}: tool "${t.name.slice(0, 80)}" cannot be given an API-safe name; skipped`);
        continue;
      }
      if (reserved.has(t.name) || reserved.has(local)) {
        problems.push(`${server.name}: tool "${t.name}" clashes with the built-in tool of that name; skipped`);
        continue;
      }
      if (taken.has(name)) {
        problems.push(
          `${server.name}: tool "${t.name}" is listed twice (or maps to a name already taken); the second is skipped`,
        );
        continue;
      }
      if (local !== t.name) problems.push(`${server.name}: tool "${t.name}" is offered as ${name} (API-safe name)`);
      taken.add(name);
      tools.push(mountedTool(conn, t, local));
    }
  });
  let closed = false;
  return {
    tools,
    problems,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}

interface ListedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
}

function mountedTool(conn: ServerConnection, listed: ListedTool, local: string): McpTool {
  const server = conn.config;
  const effect: Effect = server.tools[listed.name]?.effect ?? "dangerous";
  const declared = server.tools[listed.name] !== undefined;
  const description = (listed.description ?? "").trim() || `${listed.name} on ${server.name}`;
  return {
    name: namespacedName(server.name, local),
    server: server.name,
    remoteName: listed.name,
    description: `${description} (from the customer's ${server.name} system${declared ? "" : "; not declared in the customer config, so every call needs a human"})`,
    effect,
    input: jsonSchemaToZod(listed.inputSchema),
    inputSchema: modelInputSchema(listed.inputSchema),
    listed: true,
    run: (input, ctx) => conn.call(listed.name, input, ctx.runId),
  };
}

function stubTool(conn: ServerConnection, remoteName: string, effect: Effect, skipped?: string): McpTool {
  const server = conn.config;
  const name = namespacedName(server.name, localToolName(server.name, remoteName));
  return {
    name,
    server: server.name,
    remoteName,
    description: `${remoteName} on the customer's ${server.name} system (currently unavailable; a call reports why)`,
    effect,
    input: jsonSchemaToZod({ type: "object" }),
    inputSchema: modelInputSchema({ type: "object" }),
    listed: false,
    run: async (input, ctx) =>
      skipped === undefined
        ? conn.call(remoteName, input, ctx.runId)
        : { content: `${name} was not called: ${skipped}`, isError: true },
  };
}

type ListResult = { ok: true; tools: ListedTool[]; problems: string[] } | { ok: false; error: string };

/** One `tools/list` page, read loosely: each tool is checked on its own, so one bad tool drops alone. */
const ListPage = z.object({ tools: z.array(z.unknown()), nextCursor: z.string().optional() }).passthrough();

/** A listed tool as po-agent needs it; anything else about it is the server's business. */
function readListedTool(server: string, raw: unknown): ListedTool | string {
  const t = raw as { name?: unknown; description?: unknown; inputSchema?: unknown };
  if (typeof t !== "object" || t === null || typeof t.name !== "string")
    return `${server}: a listed tool has no name; dropped`;
  const schema = t.inputSchema as { type?: unknown } | undefined;
  if (typeof schema !== "object" || schema === null || schema.type !== "object") {
    return `${server}: tool "${t.name.slice(0, 80)}" has an inputSchema without type "object" (MCP requires one); dropped`;
  }
  return {
    name: t.name,
    ...(typeof t.description === "string" ? { description: t.description } : {}),
    inputSchema: schema,
  };
}

/** One server: connects lazily, reconnects after the connection dropped, bounds every request in time. */
class ServerConnection {
  private client: Client | undefined;
  private transportInUse: Transport | undefined;
  private connecting: Promise<Client> | undefined;
  private stderrTail = "";

  constructor(
    readonly config: McpServerConfig,
    private readonly opts: OpenToolsetsOptions,
  ) {}

  async listTools(): Promise<ListResult> {
    try {
      const client = await this.ensure();
      const tools: ListedTool[] = [];
      const problems: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      // Follow pagination, bounded: a server that pages for ever is a broken server; say where it was cut.
      do {
        const res = await client.request(
          { method: "tools/list", ...(cursor ? { params: { cursor } } : {}) },
          ListPage,
          { timeout: this.config.timeoutMs },
        );
        pages++;
        for (const raw of res.tools) {
          const t = readListedTool(this.config.name, raw);
          if (typeof t === "string") problems.push(t);
          else tools.push(t);
        }
        cursor = res.nextCursor;
      } while (cursor && pages < MAX_LIST_PAGES && tools.length < MAX_LISTED_TOOLS);
      if (cursor) {
        problems.push(
          `${this.config.name}: tool listing cut after ${pages} pages and ${tools.length} tools (at most ${MAX_LIST_PAGES} pages, ${MAX_LISTED_TOOLS} tools)`,
        );
      }
      return { ok: true, tools: tools.slice(0, MAX_LISTED_TOOLS), problems };
    } catch (err) {
      await this.drop();
      return { ok: false, error: this.describe(err, "listing its tools") };
    }
  }

  async call(remoteName: string, input: Record<string, unknown>, runId: string): Promise<ToolOutput> {
    const full = namespacedName(this.config.name, remoteName);
    let client: Client;
    try {
      client = await this.ensure();
    } catch (err) {
      return { content: `${full} was not called: ${this.describe(err, "connecting")}`, isError: true };
    }
    const key = sha256(`${runId}\n${full}\n${canonicalJson(input)}`);
    try {
      const result = await client.callTool(
        { name: remoteName, arguments: input, _meta: { [IDEMPOTENCY_META_KEY]: key } },
        undefined,
        { timeout: this.config.timeoutMs },
      );
      return toolOutput(full, result);
    } catch (err) {
      if (err instanceof McpError && err.code === ErrorCode.ConnectionClosed) await this.drop();
      const malformed = malformedAnswerOf(err);
      if (malformed === undefined)
        return { content: `${full} failed: ${this.describe(err, "calling it")}`, isError: true };
      // The request reached the server: a write may have been done even though its answer is garbage.
      // Unknown stays unknown; the model must not read this as "not done" and simply call again.
      const effect = this.config.tools[remoteName]?.effect ?? "dangerous";
      const unknown =
        effect === "read"
          ? ""
          : `; it reached the server, so ${full} may have been done: check before calling it again`;
      return { content: `${full} failed: ${malformed}${unknown}`, isError: true };
    }
  }

  private ensure(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const transport = new AnswerCheckingTransport(this.config.name);
    const inner = await this.transport(transport.fetch);
    transport.wrap(inner);
    this.transportInUse = inner;
    const client = new Client(
      { name: "po-agent", version: "0.1.0" },
      { capabilities: {}, jsonSchemaValidator: NO_SCHEMA_VALIDATION },
    );
    const timeoutMs = this.config.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new McpError(ErrorCode.RequestTimeout, `no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([client.connect(transport, { timeout: timeoutMs }), deadline]);
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    client.onclose = () => {
      if (this.client === client) this.client = undefined;
    };
    this.client = client;
    return client;
  }

  private async transport(fetch: FetchLike): Promise<Transport> {
    if (this.opts.transport) return this.opts.transport(this.config);
    const server = this.config;
    if (server.transport === "stdio") {
      // A local-mode transport (a Lambda skips stdio servers): its module and cross-spawn load here.
      const { getDefaultEnvironment, StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
      const t = new StdioClientTransport({
        command: server.command,
        args: server.args,
        env: { ...getDefaultEnvironment(), ...this.opts.env, ...server.env },
        cwd: this.opts.cwd ?? process.cwd(),
        stderr: "pipe",
      });
      (t.stderr as Readable | null)?.on("data", (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-2000);
      });
      return t;
    }
    const headers: Record<string, string> = {};
    if (server.authSecretArn) {
      if (!this.opts.secretValue) throw new McpUnavailableError(`no secret reader for ${server.authSecretArn}`);
      const secret = (await this.opts.secretValue(server.authSecretArn)).trim();
      const isAuthorization = server.authHeader.toLowerCase() === "authorization";
      headers[server.authHeader] = isAuthorization && !/^\w+ /.test(secret) ? `Bearer ${secret}` : secret;
    }
    return new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers }, fetch });
  }

  private describe(err: unknown, doing: string): string {
    const ms = this.config.timeoutMs;
    const malformed = malformedAnswerOf(err);
    if (malformed !== undefined) return malformed;
    let why: string;
    if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) why = `no answer within ${ms} ms`;
    else if (err instanceof McpError && err.code === ErrorCode.ConnectionClosed)
      why = "the server closed the connection";
    // Any other McpError is the server's own JSON-RPC error (unknown tool, invalid params): a well-formed
    // answer, so the model reads that the server refused the call, not that the server is broken.
    else if (err instanceof McpError) why = `the server answered with an error (${firstLine(err)})`;
    else if (isValidationError(err)) why = `the server sent a malformed answer (${validationSummary(err)})`;
    else why = firstLine(err);
    const tail = this.stderrTail.trim().split("\n").slice(-2).join(" | ").slice(0, 300);
    return `${this.config.name} failed while ${doing}: ${why}${tail ? ` (server stderr: ${tail})` : ""}`;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    const transport = this.transportInUse;
    this.client = undefined;
    this.transportInUse = undefined;
    // A stateful Streamable HTTP server keeps a session per connection: end it (DELETE), as the spec asks.
    if (c && transport instanceof StreamableHTTPClientTransport && transport.sessionId) {
      await withTimeout(transport.terminateSession(), this.config.timeoutMs).catch(() => {});
    }
    await c?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.connecting?.catch(() => {});
    await this.drop();
  }
}

// ---- malformed answers: a prompt failure instead of a timeout ----------------------------------

/**
 * Why a server's answer could not be read, carried as the `data` of the JSON-RPC error the checking
 * transport hands the SDK in place of the answer: a class instance, so no JSON a server sends can forge it.
 */
class MalformedAnswer {
  constructor(readonly text: string) {}
}

/** The one-line text of a malformed answer, when `err` is the SDK's rejection for one. */
function malformedAnswerOf(err: unknown): string | undefined {
  return err instanceof McpError && err.data instanceof MalformedAnswer ? err.data.text : undefined;
}

/** The key the SDK's Protocol matches responses on (`Number(response.id)`), so ours agree with it. */
const idKey = (id: unknown) => String(Number(id));

/** A value's kind, said for a message: `null`, `a string`, `an array`, `missing`. */
const kindOf = (v: unknown) => kindOfValue(v, "missing");

/** Server-chosen text quoted in a message: one line, bounded. */
const quote = (v: unknown) => JSON.stringify(String(v).replace(/\s+/g, " ").slice(0, 80));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * What is wrong with a message the SDK would not accept as JSON-RPC (the SDK's own schema decides, so
 * we never fail an answer the SDK would have taken); `undefined` when the SDK accepts it.
 */
function problemOf(raw: unknown): string | undefined {
  const parsed = JSONRPCMessageSchema.safeParse(raw);
  if (parsed.success) return undefined;
  if (!isObject(raw)) return `the message is ${kindOf(raw)}, expected a JSON-RPC object`;
  if (raw.jsonrpc !== "2.0")
    return `jsonrpc is ${raw.jsonrpc === undefined ? "missing" : quote(raw.jsonrpc)}, expected "2.0"`;
  if (!("method" in raw)) {
    const hasResult = "result" in raw;
    const hasError = "error" in raw;
    if (hasResult && hasError) return "it has both result and error";
    if (!hasResult && !hasError) return "it has neither result nor error";
    if (hasResult && !isObject(raw.result)) return `result is ${kindOf(raw.result)}, expected an object`;
    const e = raw.error;
    if (hasError && !isObject(e)) return `error is ${kindOf(e)}, expected an object`;
    if (isObject(e) && !Number.isInteger(e.code)) return `error.code is ${kindOf(e.code)}, expected an integer`;
    if (isObject(e) && typeof e.message !== "string") return `error.message is ${kindOf(e.message)}, expected a string`;
    if (raw.id === null && isObject(e)) return `an error without a request id (${String(e.code)} ${quote(e.message)})`;
    if (typeof raw.id !== "string" && !Number.isInteger(raw.id))
      return `id is ${kindOf(raw.id)}, expected a string or an integer`;
  }
  return validationSummary(parsed.error);
}

/** The media type of a Content-Type header, lowercased without parameters. */
const mediaType = (header: string | null) => (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";

/** The ids of the requests in a POST body the SDK sent (one message, or a batch). */
function requestIdsIn(body: unknown): unknown[] {
  if (typeof body !== "string") return [];
  try {
    const parsed: unknown = JSON.parse(body);
    return (Array.isArray(parsed) ? parsed : [parsed])
      .filter((m): m is Record<string, unknown> => isObject(m) && typeof m.method === "string" && m.id !== undefined)
      .map((m) => m.id);
  } catch {
    return [];
  }
}

/**
 * Sits between the SDK's Client and the real transport and turns every malformed answer to a pending
 * request into a prompt JSON-RPC error for that request, instead of the timeout the SDK would give.
 *
 * Why a transport and not `Client.onerror`: the SDK's transports parse each message before `onmessage`,
 * and one that does not parse (result null, a string or array result, both result and error, an error
 * without a numeric code, jsonrpc "1.0", a line or body that is not JSON) goes to `onerror` without its
 * id, and the Protocol drops a response to an id it never sent with only an `onerror`; an SSE stream
 * that ends without the response, or a 202 for a request, is not reported at all. In each case the
 * request waits for its timeout. The id and the raw message are only visible below the SDK's parse:
 * so Streamable HTTP answers are read by the `fetch` the transport is given (a public option; the
 * POST body says which request the answer is for), stdio lines by a second listener on the child's
 * stdout, and in-memory messages (not parsed by their transport) here in `onmessage`. Failing a request
 * goes through the SDK's own path (an error response for its id), so its timer and handlers are
 * cleaned up as for any error. What counts as malformed is the SDK's own schema, so an answer the SDK
 * would accept is never failed; valid answers and timeouts are untouched.
 */
class AnswerCheckingTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private inner: Transport | undefined;
  /** Requests sent and not yet answered, by id key: what to name in a failure (`tools/call create_order`). */
  private readonly pending = new Map<string, { id: unknown; label: string }>();
  private readonly sent = new Set<string>();

  constructor(private readonly server: string) {}

  wrap(inner: Transport): void {
    this.inner = inner;
    inner.onclose = () => {
      this.pending.clear();
      this.onclose?.();
    };
    // The transports' parse errors carry no id: the raw message is read below them instead (see above).
    inner.onerror = (error) => this.onerror?.(error);
    inner.onmessage = (message, extra) => this.receive(message, extra);
  }

  get sessionId(): string | undefined {
    return this.inner?.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.inner?.setProtocolVersion?.(version);
  }

  async start(): Promise<void> {
    const inner = this.requireInner();
    await inner.start();
    // The SDK's stdio transport keeps its child private; its stdout is read a second time, line by line
    // as the SDK splits it, to see the raw message and its id (test/local/mcp-client-malformed.test.ts fails
    // if an SDK update moves it: malformed stdio answers would wait for the timeout again).
    const stdout = (inner as unknown as { _process?: { stdout?: Readable | null } })._process?.stdout;
    if (stdout) {
      const lines = new LineSplitter(/\n/g, (line) => this.inspectLine(line.replace(/\r$/, "")));
      const decoder = new StringDecoder("utf8");
      stdout.on("data", (chunk: Buffer) => lines.push(decoder.write(chunk)));
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as { id?: unknown; method?: unknown; params?: { name?: unknown; requestId?: unknown } };
    if (typeof m.method === "string" && m.id !== undefined) {
      const tool = m.method === "tools/call" && typeof m.params?.name === "string" ? ` ${m.params.name}` : "";
      this.pending.set(idKey(m.id), { id: m.id, label: `${m.method}${tool}` });
      this.sent.add(idKey(m.id));
    } else if (m.method === "notifications/cancelled") {
      // The SDK gave up on the request (its timeout): a later answer is late, not malformed.
      this.pending.delete(idKey(m.params?.requestId));
    }
    return this.requireInner().send(message, options);
  }

  async close(): Promise<void> {
    await this.inner?.close();
  }

  /**
   * The `fetch` the Streamable HTTP transport is given: it sees each POST's answer before the SDK does,
   * knows from the POST body which requests it answers, and fails those the answer cannot serve.
   */
  readonly fetch: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    const ids = init?.method === "POST" ? requestIdsIn(init.body) : [];
    if (ids.length === 0 || res.status < 200 || res.status >= 300) return res;
    const fail = (problem: string) => {
      for (const id of ids) this.fail(id, problem);
    };
    if (res.status === 202) {
      fail("HTTP 202 Accepted, which answers no request");
      return res;
    }
    const type = mediaType(res.headers.get("content-type"));
    const rebuilt = (body: ConstructorParameters<typeof Response>[0]) =>
      new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    if (type === "application/json") {
      const text = await res.text();
      const problem = bodyProblem(text);
      if (problem !== undefined) fail(problem);
      // A JSON answer is the POST's whole answer (the transport spec: the responses to its requests): a
      // request it does not answer would wait for the timeout.
      else {
        for (const id of unansweredIn(text, ids)) this.fail(id, answeredElse(text));
        // Its responses to other ids (or to none) are no one's answer: the POST's own requests were judged
        // on them, and handed on they would be blamed on the other pending calls or answer one of them.
        return rebuilt(withoutStrays(text, ids));
      }
      return rebuilt(text);
    }
    if (type === "text/event-stream" && res.body) {
      return rebuilt(res.body.pipeThrough(this.sseObserver(ids)));
    }
    fail(`${type ? `content-type ${quote(type)}` : "no content-type"}, expected application/json or text/event-stream`);
    return res;
  };

  /**
   * Passes an SSE answer through unchanged while reading its events as the SDK's parser does (an
   * event ends at a blank line; an unfinished one at the end is dropped): a malformed event fails the
   * POST's requests, and so does the end of a stream that carried no answer and cannot be resumed
   * (no event id: the SDK reconnects only after one).
   */
  private sseObserver(ids: unknown[]): TransformStream<Uint8Array, Uint8Array> {
    const keys = new Set(ids.map(idKey));
    const decoder = new TextDecoder();
    let data: string[] = [];
    let event = "";
    let resumable = false;
    let seen: string | undefined;
    let answered = false;
    let first = true;
    let afterCr = false;
    const line = (l: string) => {
      if (l === "") {
        if (data.length > 0 && (event === "" || event === "message")) {
          const said = data.join("\n");
          const raw = parseOrUndefined(said);
          const problem = raw === undefined ? `an event that is not JSON (${quote(said)})` : problemOf(raw);
          // A malformed answer naming one of this POST's ids fails it now; other garbage on the stream is
          // kept and said if the stream ends without the answer (the SDK skips it and reads on).
          const names = isObject(raw) && !("method" in raw) && keys.has(idKey(raw.id));
          if (problem !== undefined && names) for (const id of ids) this.fail(id, problem);
          else if (problem !== undefined) seen ??= problem;
          else if (names) answered = true;
        }
        data = [];
        event = "";
        return;
      }
      if (l.startsWith(":")) return;
      const colon = l.indexOf(":");
      const field = colon === -1 ? l : l.slice(0, colon);
      let value = colon === -1 ? "" : l.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && value !== "" && !value.includes("\0")) resumable = true;
    };
    // Lines end at \r\n, \r or \n (as the EventSource spec and the SDK's parser say).
    const lines = new LineSplitter(/\r\n|\r|\n/g, line);
    return new TransformStream({
      transform: (chunk, controller) => {
        controller.enqueue(chunk);
        let text = decoder.decode(chunk, { stream: true });
        if (first && text.length > 0) {
          first = false;
          if (text.startsWith("\uFEFF")) text = text.slice(1);
        }
        // A \r that ended the last chunk was a line end; a \n opening this one is its second half (and
        // only that one: a chunk that was just this \n leaves none pending, the next \n is a line of its own).
        if (text.length > 0) {
          if (afterCr && text.startsWith("\n")) text = text.slice(1);
          afterCr = text.endsWith("\r");
        }
        lines.push(text);
      },
      flush: () => {
        if (!answered && !resumable) {
          const why = seen === undefined ? "" : ` (before it, ${seen})`;
          for (const id of ids) this.fail(id, `its event stream ended without a response${why}`);
        }
      },
    });
  }

  /**
   * One stdout line. The SDK reports and skips a line it cannot read and keeps waiting, so a server that
   * logs to stdout still works; only a line that tries to be an answer (opens with `{"` and names
   * `"jsonrpc"` but is not JSON, or is JSON naming a response's members and `jsonrpc` or a pending id)
   * fails a request: the one of its id, else every pending one. A log line such as console.log's
   * `{ tool: 'lookup' }` is not JSON either. A batch line fails the pending requests it answers.
   */
  private inspectLine(line: string): void {
    const opening = line.trimStart()[0];
    if (opening !== "{" && opening !== "[") return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      // Opening as JSON does (`{"`), not as Node prints an object (`{ got: '{"jsonrpc":...}' }`).
      if (/^\s*\{\s*"/.test(line) && /"jsonrpc"\s*:/.test(line))
        this.failAll(`a line that is not JSON (${quote(line)})`);
      return;
    }
    if (Array.isArray(raw)) {
      // The SDK's stdio transport reads one message a line and drops a batch whole: the responses in it
      // are lost, so the pending requests it names fail now (a JSON array log line names none).
      for (const m of raw)
        if (looksLikeResponse(m) && (typeof m.id === "string" || typeof m.id === "number"))
          this.fail(m.id, "a batch (a JSON array), which the SDK does not read over stdio");
      return;
    }
    if (!looksLikeResponse(raw)) return;
    // Without "jsonrpc", only an id the client is waiting for makes a JSON line an answer: a JSON log
    // line may have an id and an error of its own ({"level":50,"id":"job-7","error":"upstream slow"}).
    if (!("jsonrpc" in raw) && !this.pending.has(idKey(raw.id))) return;
    const problem = problemOf(raw);
    if (problem !== undefined) this.failMatching(raw, problem);
  }

  /**
   * Fails the request a malformed answer names by id, or, when it names none we sent, every pending one.
   * One naming a request already settled (answered, or given up after its timeout) is dropped, as the SDK
   * drops a late answer: it says nothing about the requests pending now.
   */
  private failMatching(raw: Record<string, unknown>, problem: string): void {
    const id = raw.id;
    const readable = typeof id === "string" || typeof id === "number";
    if (readable && this.pending.has(idKey(id))) this.fail(id, problem);
    else if (!(readable && this.sent.has(idKey(id)))) this.failAll(problem);
  }

  private receive(message: JSONRPCMessage, extra?: MessageExtraInfo): void {
    // Only a transport that does not parse (in memory) lets an unreadable message get this far.
    const problem = looksLikeResponse(message) ? problemOf(message) : undefined;
    if (problem !== undefined) {
      this.failMatching(message as unknown as Record<string, unknown>, problem);
      return;
    }
    const m = message as { id?: unknown; method?: unknown; error?: { code?: unknown; message?: unknown } };
    if (m.method === undefined) {
      if (m.id === undefined) {
        // JSON-RPC allows an error without an id (the server could not read the request): it answers
        // no request the SDK can match, so each pending one gets it.
        this.failAll(`an error without a request id (${String(m.error?.code)} ${quote(m.error?.message)})`);
        return;
      }
      const key = idKey(m.id);
      if (!this.sent.has(key)) {
        this.failAll(`a response to id ${quote(m.id)}, which was never sent`);
        return;
      }
      this.pending.delete(key);
    }
    this.onmessage?.(message, extra);
  }

  /** Fails one pending request through the SDK's own error path; a request already settled is left alone. */
  private fail(id: unknown, problem: string): void {
    const request = this.pending.get(idKey(id));
    if (!request) return;
    this.pending.delete(idKey(id));
    const text = `MCP server ${this.server} answered ${request.label} with a malformed response: ${problem}`;
    this.onmessage?.({
      jsonrpc: "2.0",
      id: request.id as string | number,
      error: { code: ErrorCode.InternalError, message: text, data: new MalformedAnswer(text) },
    });
  }

  /** A malformed message no request can be matched to: every pending request fails (usually the one). */
  private failAll(problem: string): void {
    for (const { id } of [...this.pending.values()]) this.fail(id, problem);
  }

  private requireInner(): Transport {
    if (!this.inner) throw new Error("the MCP transport was not set up");
    return this.inner;
  }
}

/** Longest line kept while splitting a stdio stream or an SSE stream (the SDK's stdio buffer limit). */
const MAX_LINE_CHARS = 10 * 1024 * 1024;

/** Splits text that arrives in chunks into lines, searching each chunk once (a long line costs no rescans). */
class LineSplitter {
  private parts: string[] = [];
  private length = 0;

  private readonly re: RegExp;

  constructor(
    separator: RegExp,
    private readonly onLine: (line: string) => void,
  ) {
    this.re = new RegExp(separator.source, "g");
  }

  push(text: string): void {
    const re = this.re;
    re.lastIndex = 0;
    let start = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      this.parts.push(text.slice(start, m.index));
      const line = this.parts.join("");
      this.parts = [];
      this.length = 0;
      start = m.index + m[0].length;
      this.onLine(line);
    }
    if (start < text.length) {
      this.parts.push(text.slice(start));
      this.length += text.length - start;
      // Past the bound the line is dropped (the SDK's stdio transport closes the connection there).
      if (this.length > MAX_LINE_CHARS) {
        this.parts = [];
        this.length = 0;
      }
    }
  }
}

/** What is wrong with an HTTP body holding one message or a batch (the SDK refuses the whole body); `undefined` if nothing. */
function bodyProblem(text: string): string | undefined {
  if (text.trim() === "") return "an empty body";
  const raw = parseOrUndefined(text);
  if (raw === undefined) return `a body that is not JSON (${quote(text)})`;
  for (const m of Array.isArray(raw) ? raw : [raw]) {
    const problem = problemOf(m);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** The responses (not requests or notifications) in a well-formed JSON answer. */
function responsesIn(text: string): Record<string, unknown>[] {
  const raw = parseOrUndefined(text);
  return (Array.isArray(raw) ? raw : [raw]).filter(
    (m): m is Record<string, unknown> => isObject(m) && !("method" in m),
  );
}

/** The POST's request ids that a well-formed JSON answer holds no response for. */
function unansweredIn(text: string, ids: unknown[]): unknown[] {
  const answered = new Set(responsesIn(text).map((m) => idKey(m.id)));
  return ids.filter((id) => !answered.has(idKey(id)));
}

/** A well-formed JSON answer without its responses that answer none of its POST's requests (`[]` if none is left). */
function withoutStrays(text: string, ids: unknown[]): string {
  const own = new Set(ids.map(idKey));
  const raw = parseOrUndefined(text);
  const all = Array.isArray(raw) ? raw : [raw];
  const kept = all.filter((m) => !isObject(m) || "method" in m || own.has(idKey(m.id)));
  if (kept.length === all.length) return text;
  return JSON.stringify(kept);
}

/** What a JSON answer that leaves a request unanswered held instead, for the message. */
function answeredElse(text: string): string {
  const responses = responsesIn(text);
  const anonymous = responses.find((m) => (m.id === undefined || m.id === null) && isObject(m.error));
  if (anonymous) {
    const e = anonymous.error as { code?: unknown; message?: unknown };
    return `its answer holds no response to it, only an error without a request id (${String(e.code)} ${quote(e.message)})`;
  }
  const ids = responses.filter((m) => m.id !== undefined && m.id !== null).map((m) => quote(m.id));
  return ids.length > 0
    ? `its answer holds no response to it, only to id ${ids.slice(0, 3).join(", ")}`
    : "its answer holds no response to it";
}

/**
 * True for a message that is trying to be a JSON-RPC response (not a request or notification, nor a JSON
 * log line a server prints to stdout): it names `jsonrpc`, or an `id` with a `result` or an `error`.
 */
function looksLikeResponse(raw: unknown): raw is Record<string, unknown> {
  if (!isObject(raw) || "method" in raw) return false;
  return "jsonrpc" in raw || ("id" in raw && ("result" in raw || "error" in raw));
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function isValidationError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === "ZodError" || /invalid_type|Expected|validat/i.test(err.message);
}

/**
 * A schema failure as one line, `field: what was wrong`, for the model and the trace: a ZodError's message
 * (the SDK's zod/v4 protocol schemas and our zod/v3 ones alike) is its issues as multi-line JSON.
 */
function validationSummary(err: unknown): string {
  const issues = (err as { issues?: unknown }).issues;
  if (!Array.isArray(issues) || issues.length === 0) return firstLine(err);
  const said = issues.slice(0, 3).map((i: { path?: unknown; message?: unknown }) => {
    const path = Array.isArray(i.path) && i.path.length > 0 ? i.path.join(".") : "(the answer)";
    return `${path}: ${String(i.message)}`;
  });
  const more = issues.length > 3 ? `; and ${issues.length - 3} more` : "";
  return `${said.join("; ")}${more}`.replace(/\s+/g, " ").slice(0, 300);
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split("\n").find((l) => l.trim()) ?? text).trim().slice(0, 300);
}

interface CallResultLike {
  content?: unknown;
  structuredContent?: unknown;
  isError?: unknown;
}

/** An MCP call result as the model reads it: the text parts, else the structured content, else a note. */
export function toolOutput(name: string, raw: object): ToolOutput {
  const result = raw as CallResultLike;
  const parts: string[] = [];
  if (Array.isArray(result.content)) {
    for (const c of result.content as { type?: unknown; text?: unknown; uri?: unknown; mimeType?: unknown }[]) {
      if (c.type === "text" && typeof c.text === "string") parts.push(c.text);
      else if (c.type === "resource_link" && typeof c.uri === "string") parts.push(`[resource ${c.uri}]`);
      else parts.push(`[${String(c.type)} content${typeof c.mimeType === "string" ? ` ${c.mimeType}` : ""} omitted]`);
    }
  }
  if (parts.length === 0 && result.structuredContent !== undefined)
    parts.push(JSON.stringify(result.structuredContent));
  if (parts.length === 0 && result.content === undefined) {
    return { content: `${name} returned a malformed result: no content`, isError: true };
  }
  let content = parts.join("\n") || `${name} returned no content`;
  if (content.length > MAX_RESULT_CHARS) {
    content = `${content.slice(0, MAX_RESULT_CHARS)}\n[cut: ${content.length - MAX_RESULT_CHARS} more characters]`;
  }
  return result.isError === true ? { content, isError: true } : { content };
}

/** The tool list the model is shown for mounted tools (beside `toolSpecs()` of the built-ins). */
export function mcpToolSpecs(
  tools: readonly McpTool[],
): { name: string; description: string; input_schema: Record<string, unknown> }[] {
  return tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema }));
}

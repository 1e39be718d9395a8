import type { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import type { Effect, Tool, ToolOutput } from "../tools/types.js";
import { BUILT_IN_TOOL_NAMES, type McpServerConfig } from "./config.js";
import { jsonSchemaToZod, modelInputSchema } from "./schema.js";

/** The separator between a server's name and its tool's name: `erp.lookup_vendor`. */
export const NAMESPACE_SEPARATOR = ".";

/** `_meta` key carrying a key derived from run, tool and arguments: a server may dedupe a replayed write on it. */
export const IDEMPOTENCY_META_KEY = "po-agent/idempotency-key";

/** Longest tool result kept (characters); the rest is cut with a note. Large results go to S3 in runTool. */
const MAX_RESULT_CHARS = 200_000;

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
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
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
        taken.add(namespacedName(server.name, remoteName));
      }
      return;
    }
    for (const t of result.tools) {
      const name = namespacedName(server.name, t.name);
      if (!/^[A-Za-z0-9_-]{1,48}$/.test(t.name)) {
        problems.push(`${server.name}: tool "${t.name.slice(0, 80)}" has a name that cannot be mounted; skipped`);
        continue;
      }
      if (reserved.has(t.name)) {
        problems.push(`${server.name}: tool "${t.name}" clashes with the built-in tool of that name; skipped`);
        continue;
      }
      if (taken.has(name)) {
        problems.push(`${server.name}: tool "${t.name}" is listed twice; the second is skipped`);
        continue;
      }
      taken.add(name);
      tools.push(mountedTool(conn, t));
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

function mountedTool(conn: ServerConnection, listed: ListedTool): McpTool {
  const server = conn.config;
  const effect: Effect = server.tools[listed.name]?.effect ?? "dangerous";
  const declared = server.tools[listed.name] !== undefined;
  const description = (listed.description ?? "").trim() || `${listed.name} on ${server.name}`;
  return {
    name: namespacedName(server.name, listed.name),
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
  const name = namespacedName(server.name, remoteName);
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

type ListResult = { ok: true; tools: ListedTool[] } | { ok: false; error: string };

/** One server: connects lazily, reconnects after the connection dropped, bounds every request in time. */
class ServerConnection {
  private client: Client | undefined;
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
      let cursor: string | undefined;
      // Follow pagination, bounded: a server that pages forever is a broken server.
      for (let page = 0; page < 20; page++) {
        const res = await client.listTools(cursor ? { cursor } : undefined, { timeout: this.config.timeoutMs });
        tools.push(...res.tools);
        cursor = res.nextCursor;
        if (!cursor) break;
      }
      return { ok: true, tools };
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
      return { content: `${full} failed: ${this.describe(err, "calling it")}`, isError: true };
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
    const transport = await this.transport();
    const client = new Client({ name: "po-agent", version: "0.1.0" }, { capabilities: {} });
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

  private async transport(): Promise<Transport> {
    if (this.opts.transport) return this.opts.transport(this.config);
    const server = this.config;
    if (server.transport === "stdio") {
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
    return new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers } });
  }

  private describe(err: unknown, doing: string): string {
    const ms = this.config.timeoutMs;
    let why: string;
    if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) why = `no answer within ${ms} ms`;
    else if (err instanceof McpError && err.code === ErrorCode.ConnectionClosed)
      why = "the server closed the connection";
    else if (isValidationError(err)) why = `the server sent a malformed answer (${firstLine(err)})`;
    else why = firstLine(err);
    const tail = this.stderrTail.trim().split("\n").slice(-2).join(" | ").slice(0, 300);
    return `${this.config.name} failed while ${doing}: ${why}${tail ? ` (server stderr: ${tail})` : ""}`;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.connecting?.catch(() => {});
    await this.drop();
  }
}

function isValidationError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === "ZodError" ||
    (err instanceof McpError && err.code === ErrorCode.InvalidParams) ||
    /invalid_type|Expected|validat/i.test(err.message)
  );
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

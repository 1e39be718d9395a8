import { timingSafeEqual } from "node:crypto";
import { MAX_BATCH_SIZE, readRequestBody } from "@modelcontextprotocol/sdk/server/requestBody.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isJsonContentType } from "@modelcontextprotocol/sdk/shared/mediaType.js";
import {
  ErrorCode,
  JSONRPCErrorResponseSchema,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { LambdaFunctionURLEvent } from "aws-lambda";
import { kindOf } from "./kind.js";
import { createPoAgentMcpServer, describeIssue, type PoAgentBackend } from "./server.js";

export interface McpHttpOptions {
  /** The bearer token clients must send; `undefined` when the Function URL's IAM auth already checked the caller. */
  bearerToken(): Promise<string | undefined>;
  /** The caller for the audit log when IAM authenticated it (its ARN). @default "http" */
  principal?: string;
  /**
   * Browser origins allowed to call (a request without `Origin` is not from a page). The spec asks
   * servers to validate `Origin` against DNS rebinding. @default - none: any `Origin` is refused
   */
  allowedOrigins?: readonly string[];
  /** `Host` values this endpoint answers to. @default - the host of the request URL only */
  allowedHosts?: readonly string[];
}

/** 403 for a foreign `Origin` or `Host` (MCP Streamable HTTP, "Security Warning"), else undefined. */
export function rebindingProblem(request: Request, opts: Pick<McpHttpOptions, "allowedOrigins" | "allowedHosts">) {
  const origin = request.headers.get("origin");
  if (origin !== null && !(opts.allowedOrigins ?? []).includes(origin)) {
    return jsonError(403, `origin ${origin.slice(0, 100)} is not allowed`);
  }
  const host = request.headers.get("host");
  const hosts = opts.allowedHosts ?? [new URL(request.url).host];
  if (host !== null && !hosts.includes(host)) return jsonError(403, `host ${host.slice(0, 100)} is not allowed`);
  return undefined;
}

const jsonError = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message }, id: null }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/** Constant-time comparison of the presented bearer token with the expected one. */
export function bearerMatches(header: string | null, expected: string): boolean {
  const presented = /^Bearer\s+(.+)$/i.exec(header ?? "")?.[1]?.trim() ?? "";
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/**
 * One stateless Streamable HTTP exchange: each POST gets a fresh server and transport (no
 * session to keep between Lambda invocations) and a JSON response instead of an SSE stream.
 */
export async function handleMcpHttp(
  request: Request,
  backend: PoAgentBackend,
  opts: McpHttpOptions,
): Promise<Response> {
  const refused = rebindingProblem(request, opts);
  if (refused) return refused;
  const expected = await opts.bearerToken();
  if (expected !== undefined && !bearerMatches(request.headers.get("authorization"), expected)) {
    return jsonError(401, "missing or wrong bearer token", { "www-authenticate": 'Bearer realm="po-agent"' });
  }
  if (request.method !== "POST") {
    // Stateless: no server-initiated stream (GET) and no session to delete (DELETE).
    return jsonError(405, "method not allowed: this endpoint is stateless, POST only", { allow: "POST" });
  }
  const checked = await checkMessages(request);
  if (checked instanceof Response) return checked;
  const principal = opts.principal ?? "http";
  const server = createPoAgentMcpServer(backend, { actor: () => `mcp:${principal}` });
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  await server.connect(transport);
  let response: Response;
  try {
    response = await transport.handleRequest(
      request,
      checked.messages === undefined ? undefined : { parsedBody: checked.messages },
    );
  } finally {
    await server.close();
  }
  return checked.refused.length ? withRefusals(response, checked.refused) : response;
}

// ---- the JSON-RPC envelope, checked before the SDK sees it -------------------------------------

type RequestId = string | number;

/** A JSON-RPC error response for one message we refused. */
interface Refusal {
  jsonrpc: "2.0";
  id: RequestId | null;
  error: { code: number; message: string };
}

/** A control character as its JSON escape: the parser's message quotes the body raw (a terminal escape). */
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

const refusal = (code: number, message: string, id: RequestId | null = null): Refusal => ({
  jsonrpc: "2.0",
  id,
  error: {
    code,
    message: message
      .replace(/\s+/g, " ")
      .replace(/\p{Cc}/gu, escaped)
      .slice(0, 300),
  },
});

const refusedResponse = (body: Refusal | Refusal[]) =>
  new Response(JSON.stringify(body), { status: 400, headers: { "content-type": "application/json" } });

const ENVELOPE_KEYS = new Set(["jsonrpc", "id", "method", "params", "result", "error"]);
const shown = (v: unknown) =>
  typeof v === "string" ? JSON.stringify(v.slice(0, 40)) : typeof v === "number" ? String(v) : kindOf(v);

/**
 * What is wrong with one message of the body, in JSON-RPC 2.0's terms (section 5.1): not a Request
 * object is -32600, params MCP cannot take (an array: MCP's params are named) -32602; the id is
 * echoed when it can be read, else null. Whatever the SDK's own message schema still refuses (it
 * would answer a bare "Invalid JSON-RPC message") is named by its first issue.
 */
function messageProblem(message: unknown): Refusal | undefined {
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return refusal(
      ErrorCode.InvalidRequest,
      `invalid request: a message must be a JSON object, got ${kindOf(message)}`,
    );
  }
  const m = message as Record<string, unknown>;
  const id = typeof m.id === "string" || Number.isSafeInteger(m.id) ? (m.id as RequestId) : null;
  const invalid = (problem: string) => refusal(ErrorCode.InvalidRequest, `invalid request: ${problem}`, id);
  if (m.jsonrpc !== "2.0")
    return invalid(`jsonrpc must be "2.0", got ${"jsonrpc" in m ? shown(m.jsonrpc) : "nothing"}`);
  if ("id" in m && id === null) {
    // MCP: "Unlike base JSON-RPC, the ID MUST NOT be null".
    return invalid(m.id === null ? "id must not be null" : `id must be a string or an integer, got ${shown(m.id)}`);
  }
  const response = !("method" in m) && ("result" in m || "error" in m);
  if (!response) {
    if (!("method" in m)) return invalid("method is missing");
    if (typeof m.method !== "string") return invalid(`method must be a string, got ${shown(m.method)}`);
    if ("params" in m && (typeof m.params !== "object" || m.params === null)) {
      return invalid(`params must be an object, got ${kindOf(m.params)}`);
    }
    if (Array.isArray(m.params)) {
      return refusal(ErrorCode.InvalidParams, `invalid params: params must be an object, got an array`, id);
    }
  }
  const extra = Object.keys(m).find((k) => !ENVELOPE_KEYS.has(k));
  if (extra !== undefined) return invalid(`unexpected member ${JSON.stringify(extra.slice(0, 50))}`);
  const schema = response
    ? "error" in m
      ? JSONRPCErrorResponseSchema
      : JSONRPCResultResponseSchema
    : "id" in m
      ? JSONRPCRequestSchema
      : JSONRPCNotificationSchema;
  const parsed = schema.safeParse(m);
  if (parsed.success) return undefined;
  const first = parsed.error.issues[0];
  const named = first ? describeIssue(first, m) : "is not a valid JSON-RPC message";
  return first?.path[0] === "params"
    ? refusal(ErrorCode.InvalidParams, `invalid params: ${named}`, id)
    : invalid(named);
}

/**
 * Reads and checks the body of a POST the SDK's transport would take (its Accept and Content-Type
 * checks, 406 and 415, stay its own; so does a body over its size limit, 413). Returns the answer
 * when nothing in the body can run, else the messages to hand the SDK (undefined: let it read the
 * body) and the refusals to add to its answer.
 */
async function checkMessages(request: Request): Promise<Response | { messages: unknown; refused: Refusal[] }> {
  const accept = request.headers.get("accept") ?? "";
  const sdkReadsIt = !accept.includes("application/json") || !accept.includes("text/event-stream");
  if (sdkReadsIt || !isJsonContentType(request.headers.get("content-type"))) {
    return { messages: undefined, refused: [] };
  }
  const body = await readRequestBody(request.clone());
  if (body.tooLarge) return { messages: undefined, refused: [] };
  if (body.text.trim() === "") {
    return refusedResponse(
      refusal(ErrorCode.ParseError, "parse error: the body is empty, expected a JSON-RPC message"),
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body.text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return refusedResponse(refusal(ErrorCode.ParseError, `parse error: the body is not JSON (${why.slice(0, 120)})`));
  }
  if (!Array.isArray(raw)) {
    const problem = messageProblem(raw);
    return problem ? refusedResponse(problem) : { messages: raw, refused: [] };
  }
  if (raw.length === 0)
    return refusedResponse(refusal(ErrorCode.InvalidRequest, "invalid request: the batch is empty"));
  if (raw.length > MAX_BATCH_SIZE) return { messages: raw, refused: [] }; // the SDK's -32600 names its limit
  // A batch (JSON-RPC 2.0 section 6): the good messages run, each bad one gets its own error.
  const refused: Refusal[] = [];
  const good: Record<string, unknown>[] = [];
  const requestIds = new Set<RequestId>();
  for (const message of raw) {
    const problem = messageProblem(message);
    if (problem) {
      refused.push(problem);
      continue;
    }
    const m = message as Record<string, unknown>;
    if ("method" in m && "id" in m) {
      const id = m.id as RequestId;
      // The SDK keys the answers by id: a second request with the same id would never be answered.
      if (requestIds.has(id)) {
        refused.push(
          refusal(ErrorCode.InvalidRequest, `invalid request: id ${shown(id)} is used twice in this batch`, id),
        );
        continue;
      }
      requestIds.add(id);
    }
    good.push(m);
  }
  // A cancellation of a request in the same batch would leave the SDK with a request it never
  // answers, and the POST waiting until the Lambda times out: it is ignored, as MCP lets a
  // receiver do (the request is answered).
  const messages = good.filter(
    (m) =>
      !(
        m.method === "notifications/cancelled" &&
        requestIds.has((m.params as { requestId?: RequestId } | undefined)?.requestId as RequestId)
      ),
  );
  if (messages.length === 0) return refusedResponse(refused);
  return { messages, refused };
}

/** The SDK's answer to the good messages of a batch, with the errors for the bad ones added. */
async function withRefusals(response: Response, refused: Refusal[]): Promise<Response> {
  // 202: only notifications or responses ran, nothing to answer but the refusals.
  if (response.status === 202) return refusedResponse(refused);
  if (response.status !== 200 || !response.headers.get("content-type")?.includes("application/json")) return response;
  const answered: unknown = await response.json();
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  return new Response(JSON.stringify([...(Array.isArray(answered) ? answered : [answered]), ...refused]), {
    status: 200,
    headers,
  });
}

/** Converts a Function URL event to a web Request (the SDK's web-standard transport takes one). */
export function toRequest(event: LambdaFunctionURLEvent): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  const url = `https://${event.requestContext.domainName}${event.rawPath}${query}`;
  const method = event.requestContext.http.method;
  const body =
    event.body === undefined || method === "GET" || method === "HEAD"
      ? undefined
      : event.isBase64Encoded
        ? Buffer.from(event.body, "base64")
        : event.body;
  return new Request(url, { method, headers, body });
}

/** What a Function URL handler returns (the structured form). */
export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** Converts the SDK's web Response back to a Function URL result. */
export async function fromResponse(response: Response): Promise<FunctionUrlResult> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return { statusCode: response.status, headers, body: await response.text() };
}

/** The Lambda glue, kept here so it is tested without the Lambda runtime's environment. */
export async function handleFunctionUrlEvent(
  event: LambdaFunctionURLEvent,
  backend: PoAgentBackend,
  opts: McpHttpOptions,
): Promise<FunctionUrlResult> {
  return fromResponse(await handleMcpHttp(toRequest(event), backend, opts));
}

import { timingSafeEqual } from "node:crypto";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { LambdaFunctionURLEvent } from "aws-lambda";
import { createPoAgentMcpServer, type PoAgentBackend } from "./server.js";

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
  const principal = opts.principal ?? "http";
  const server = createPoAgentMcpServer(backend, { actor: () => `mcp:${principal}` });
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  await server.connect(transport);
  try {
    return await transport.handleRequest(request);
  } finally {
    await server.close();
  }
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

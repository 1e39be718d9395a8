import { basename } from "node:path";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { type CallToolResult, ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod/v3";
import { type ApprovalDeps, decide } from "../agent/approvals.js";
import { runIdFor } from "../agent/deps.js";
import type { CustomerConfig } from "../config/schema.js";
import { type Ledger, sha256 } from "../ledger/ledger.js";
import type { RunRecord } from "../ledger/records.js";
import { decodeBase64 } from "./base64.js";
import { kindOf } from "./kind.js";
import { NO_SCHEMA_VALIDATION } from "./validator.js";

/** Largest document submit_document accepts (bytes, decoded). */
export const MAX_SUBMIT_BYTES = 5 * 1024 * 1024;

/**
 * What po-agent's MCP surface needs from where it runs: the LocalStack locally, the stack's
 * clients in Lambda. Decisions always go through `decide()` with these deps: never around it.
 */
export interface PoAgentBackend {
  ledger: Ledger;
  /** The customers this endpoint serves (one per stack in AWS). */
  customers: readonly CustomerConfig[];
  /**
   * Deps for `decide()`: the ledger and the Step Functions client that wakes the waiting execution
   * (in Lambda a getter: the client loads with the first decision).
   */
  decideDeps(customer: CustomerConfig): Pick<ApprovalDeps, "ledger" | "sfn">;
  /**
   * Drops a document into the customer's intake bucket and returns its run id once the upload is
   * durable: locally once the run record exists (the process may stop right after), in AWS once
   * S3 holds it (EventBridge delivers at least once). Throws when that cannot be confirmed.
   */
  submit(customer: string, fileName: string, body: Uint8Array): Promise<string>;
  /** The run's trace events (states, model and tool calls), when this backend keeps them. */
  traceEvents?(runId: string): Promise<unknown[]>;
  /**
   * An operator retries a failed run (core retryRun, then a new execution of it); `operator` is the
   * caller's principal, recorded in the audit. Unset: no retry_run tool.
   */
  retry?(
    runId: string,
    operator: string,
  ): Promise<{ runId: string; executionId: string; turnsReused: number; toolResultsReused: number }>;
}

export interface PoAgentMcpOptions {
  /** Who is calling, for the audit log: `mcp:<client>`. Called per request (stdio knows the client after initialize). */
  actor(): string;
}

const text = (value: unknown): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value, null, 2) }],
});
const fail = (message: string): CallToolResult => ({ content: [{ type: "text", text: message }], isError: true });

/**
 * po-agent as an MCP server: submit documents, read runs and traces, list and decide pending
 * approvals. Approve and reject act only on pending approvals, only for an approver the policy
 * named for that request, only while the request still matches the call and the policy in force;
 * every attempt, refused or not, is in the run's audit log.
 */
export function createPoAgentMcpServer(backend: PoAgentBackend, opts: PoAgentMcpOptions): McpServer {
  const server = new McpServer(
    { name: "po-agent", version: "0.1.0" },
    {
      instructions: "Purchase-order agent: submit POs, follow runs, decide pending approvals as a named approver.",
      jsonSchemaValidator: NO_SCHEMA_VALIDATION,
    },
  );
  const names = backend.customers.map((c) => c.name);
  const customerOf = (name: string) => backend.customers.find((c) => c.name === name);
  const runOf = async (runId: string): Promise<RunRecord | undefined> => {
    const run = await backend.ledger.getRun(runId);
    return run && customerOf(run.customer) ? run : undefined;
  };

  server.registerTool(
    "submit_document",
    {
      description: `Submit a purchase-order document (JSON, CSV, cXML, UBL, X12, PDF or .eml) for a customer (${names.join(", ")}). Returns the run id; the same bytes are one run. Give the content as base64 or, for text formats, as text.`,
      inputSchema: {
        customer: z.string(),
        fileName: z.string().min(1).max(200),
        contentBase64: z.string().optional(),
        text: z.string().optional(),
      },
    },
    async ({ customer, fileName, contentBase64, text: plain }) => {
      if (!customerOf(customer)) return fail(`unknown customer "${customer}"; known: ${names.join(", ")}`);
      if ((contentBase64 === undefined) === (plain === undefined))
        return fail("give exactly one of contentBase64 or text");
      const body = contentBase64 !== undefined ? decodeBase64(contentBase64) : Buffer.from(plain ?? "", "utf8");
      if (body === undefined) return fail("contentBase64 is not valid base64 (RFC 4648); nothing was submitted");
      if (body.byteLength === 0) return fail("the document is empty");
      if (body.byteLength > MAX_SUBMIT_BYTES) return fail(`the document is larger than ${MAX_SUBMIT_BYTES} bytes`);
      const name = basename(fileName);
      if (!/^[A-Za-z0-9._ -]+$/.test(name)) return fail(`file name "${name}" has characters that are not allowed`);
      let runId: string;
      try {
        // Who submitted is on record before the document is dropped: it cannot approve this PO.
        await backend.ledger.recordSubmitter(runIdFor(customer, sha256(body)), opts.actor());
        runId = await backend.submit(customer, name, body);
      } catch (err) {
        return fail(`not submitted: ${err instanceof Error ? err.message : String(err)}`);
      }
      return text({ runId, customer, fileName: name, status: "submitted" });
    },
  );

  server.registerTool(
    "get_run",
    {
      description: "A run's status, outcome, reason, PO number, pending approval and counters (tokens, cost, calls).",
      inputSchema: { runId: z.string().min(1) },
      annotations: { readOnlyHint: true },
    },
    async ({ runId }) => {
      const run = await runOf(runId);
      return run ? text(run) : fail(`no run ${runId}`);
    },
  );

  server.registerTool(
    "get_trace",
    {
      description:
        "A run's trace: model turns (tool calls asked for, tokens), tool results (errors), the audit log, and trace events when kept.",
      inputSchema: { runId: z.string().min(1) },
      annotations: { readOnlyHint: true },
    },
    async ({ runId }) => {
      const run = await runOf(runId);
      if (!run) return fail(`no run ${runId}`);
      const [turns, toolCalls, audit, events] = await Promise.all([
        backend.ledger.getTurns(runId),
        backend.ledger.getToolCalls(runId),
        backend.ledger.getAudit(runId),
        backend.traceEvents?.(runId) ?? Promise.resolve(undefined),
      ]);
      return text({
        runId,
        status: run.status,
        turns: turns.map((t) => ({
          turn: t.turn,
          model: t.response.model,
          usage: t.response.usage,
          costUsd: t.costUsd,
          dispositions: t.dispositions.map((d) => ({ kind: d.kind, tool: d.name, toolUseId: d.toolUseId })),
        })),
        toolCalls: toolCalls.map((c) => ({
          tool: c.name,
          toolUseId: c.toolUseId,
          isError: c.isError,
          durationMs: c.durationMs,
          at: c.createdAt,
        })),
        audit: audit.map((a) => ({ at: a.at, actor: a.actor, action: a.action, detail: a.detail })),
        ...(events ? { events } : {}),
      });
    },
  );

  server.registerTool(
    "list_pending_approvals",
    {
      description:
        "Approval requests waiting for a human: id, run, tool, PO number, supplier, amount, reason, and the approvers the policy named.",
      inputSchema: { customer: z.string().optional() },
      annotations: { readOnlyHint: true },
    },
    async ({ customer }) => {
      const pending = (await backend.ledger.listApprovals("pending")).filter(
        (a) => customerOf(a.customer) && (customer === undefined || a.customer === customer),
      );
      return text(
        pending.map((a) => ({
          approvalId: a.approvalId,
          runId: a.runId,
          customer: a.customer,
          tool: a.call.name,
          ...a.summary,
          reason: a.reason,
          rule: a.rule,
          approvers: a.approvers,
          createdAt: a.createdAt,
        })),
      );
    },
  );

  const retry = backend.retry;
  if (retry) {
    server.registerTool(
      "retry_run",
      {
        description:
          "Retry a failed run (e.g. after the model key was set): it resumes under a new execution, reusing every stored model turn and tool result; recorded in the run's audit under your principal. A re-upload of the same bytes stays a duplicate.",
        inputSchema: { runId: z.string().min(1) },
        annotations: { destructiveHint: false, idempotentHint: false },
      },
      async ({ runId }) => {
        if (!(await runOf(runId))) return fail(`no run ${runId}`);
        try {
          return text({ ...(await retry(runId, opts.actor())), status: "running" });
        } catch (err) {
          return fail(`not retried: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    );
  }

  const decideTool =
    (decision: "approved" | "rejected") =>
    async (input: { approvalId: string; approver?: string; comment?: string }): Promise<CallToolResult> => {
      const approval = await backend.ledger.getApproval(input.approvalId);
      const customer = approval ? customerOf(approval.customer) : undefined;
      if (!approval || !customer) return fail(`no approval ${input.approvalId}`);
      // The caller's identity is its authenticated principal, mapped to an approver in the config; `approver`
      // only picks among the approvers it is mapped to. Every check is decide()'s.
      const {
        decided,
        approval: after,
        refused,
      } = await decide(
        { ...backend.decideDeps(customer), customer },
        {
          approvalId: approval.approvalId,
          decision: decision === "approved" ? "approve" : "reject",
          decider: {
            via: "mcp",
            principal: opts.actor(),
            ...(input.approver !== undefined ? { as: input.approver } : {}),
          },
          ...(input.comment !== undefined ? { comment: input.comment.slice(0, 1000) } : {}),
        },
      );
      if (!decided) return fail(`not ${decision}: ${refused ?? after.status}`);
      return text({ approvalId: after.approvalId, runId: after.runId, decided, status: after.status });
    };
  const decideInput = {
    approvalId: z.string().min(1),
    /** Optional: which of the approvers the caller's principal is mapped to it decides as. */
    approver: z.string().min(1).optional(),
    comment: z.string().max(1000).optional(),
  };
  server.registerTool(
    "approve",
    {
      description:
        "Approve a pending request as one of its approvers (an approver id from list_pending_approvals). The run continues with exactly the call that was approved.",
      inputSchema: decideInput,
      annotations: { destructiveHint: false, idempotentHint: true },
    },
    decideTool("approved"),
  );
  server.registerTool(
    "reject",
    {
      description: "Reject a pending request as one of its approvers; `comment` is the reason the run records.",
      inputSchema: { ...decideInput, comment: z.string().min(1).max(1000) },
      annotations: { destructiveHint: true, idempotentHint: true },
    },
    decideTool("rejected"),
  );

  server.registerResource(
    "run",
    new ResourceTemplate("po-agent://runs/{runId}", {
      list: async () => {
        const runs = (await backend.ledger.listRuns()).filter((r) => customerOf(r.customer));
        return {
          resources: runs.slice(-200).map((r) => ({
            uri: `po-agent://runs/${encodeURIComponent(r.runId)}`,
            name: r.runId,
            description: `${r.customer} ${r.poNumber ?? r.document.key}: ${r.status}`,
            mimeType: "application/json",
          })),
        };
      },
    }),
    { description: "A run record: status, outcome, reason, counters.", mimeType: "application/json" },
    async (uri, variables) => {
      const raw = variables.runId;
      const runId = decodeURIComponent(Array.isArray(raw) ? (raw[0] ?? "") : (raw ?? ""));
      const run = await runOf(runId);
      if (!run) throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: no run ${runId}`, { uri: uri.href });
      return { contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(run, null, 2) }] };
    },
  );

  enforceProtocolErrors(server);
  readableRequestErrors(server);
  return server;
}

/** JSON-RPC error code the MCP spec gives a resource that does not exist. */
export const RESOURCE_NOT_FOUND = -32002;

type RawHandler = (request: { params?: Record<string, unknown> }, extra: unknown) => Promise<unknown>;

/**
 * The SDK's McpServer answers an unknown tool with an `isError` result and a missing resource
 * with -32602; the spec (server/tools "Error Handling", server/resources) asks for JSON-RPC errors
 * -32602 and -32002. The SDK offers no hook for either, so its two handlers are wrapped (a test of
 * both codes fails if an SDK upgrade changes this).
 */
function enforceProtocolErrors(server: McpServer): void {
  const handlers = (server.server as unknown as { _requestHandlers?: Map<string, RawHandler> })._requestHandlers;
  const tools = (server as unknown as { _registeredTools?: Record<string, { enabled: boolean }> })._registeredTools;
  if (!handlers || !tools) throw new Error("MCP SDK internals changed: cannot enforce protocol error codes");
  const call = handlers.get("tools/call");
  if (call) {
    handlers.set("tools/call", (request, extra) => {
      const name = request.params?.name;
      if (typeof name !== "string" || !tools[name]?.enabled) {
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${String(name).slice(0, 100)}`);
      }
      return call(request, extra);
    });
  }
  const read = handlers.get("resources/read");
  if (read) {
    handlers.set("resources/read", async (request, extra) => {
      try {
        return await read(request, extra);
      } catch (err) {
        if (err instanceof McpError && err.code === ErrorCode.InvalidParams && /not found/i.test(err.message)) {
          throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${String(request.params?.uri).slice(0, 200)}`, {
            uri: request.params?.uri,
          });
        }
        throw err;
      }
    });
  }
}

/** A JSON-RPC error the SDK's Protocol sends as is: its `code` and a message without the "MCP error" prefix. */
const jsonRpcError = (code: number, message: string) => Object.assign(new Error(message), { code });

interface Issue {
  code?: string;
  path?: readonly PropertyKey[];
  message?: string;
  expected?: string;
  keys?: readonly string[];
}

const EXPECTED: Record<string, string> = {
  record: "an object",
  object: "an object",
  array: "an array",
  int: "an integer",
};

/**
 * One zod issue (the SDK's schemas are zod 4) as one line naming the field: `params.arguments must be
 * an object, got a string`, `params.uri is missing`, `params has an unexpected member "x"`.
 */
export function describeIssue(issue: Issue, input: unknown): string {
  const path = (issue.path ?? []).map(String);
  const where = path.length ? path.join(".") : "the message";
  let value: unknown = input;
  for (const key of path)
    value = value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
  let line: string;
  if (issue.code === "invalid_type" && value === undefined) line = `${where} is missing`;
  else if (issue.code === "invalid_type" && issue.expected)
    line = `${where} must be ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}, got ${kindOf(value)}`;
  else if (issue.code === "unrecognized_keys" && issue.keys?.length)
    line = `${where} has an unexpected member ${issue.keys.map((k) => JSON.stringify(k.slice(0, 50))).join(", ")}`;
  else line = `${where}: ${(issue.message ?? "is not valid").replace(/^Invalid input: /, "")}`;
  return line.replace(/\s+/g, " ").slice(0, 300);
}

/** A zod error's issues (duck-typed: the SDK's zod is not ours), else undefined. */
function zodIssues(err: unknown): Issue[] | undefined {
  const issues = (err as { issues?: unknown } | null)?.issues;
  return err instanceof Error && Array.isArray(issues) && issues.length > 0 ? (issues as Issue[]) : undefined;
}

/**
 * The SDK checks a request's params against the method's schema inside its handler and, when they
 * do not fit, answers -32603 with the zod issues dumped as JSON. Those are the caller's invalid
 * params (JSON-RPC -32602): every handler is wrapped so the answer names the first issue in one
 * line. An unknown method is -32601 naming the method (the SDK's says only "Method not found").
 */
function readableRequestErrors(server: McpServer): void {
  const protocol = server.server as unknown as {
    _requestHandlers?: Map<string, RawHandler>;
    fallbackRequestHandler?: (request: { method: string }) => Promise<never>;
  };
  const handlers = protocol._requestHandlers;
  if (!handlers) throw new Error("MCP SDK internals changed: cannot name invalid params");
  for (const [method, handler] of handlers) {
    handlers.set(method, async (request, extra) => {
      try {
        return await handler(request, extra);
      } catch (err) {
        // Only the request's own schema: its issues are paths into the request, starting at params.
        const first = zodIssues(err)?.[0];
        if (first?.path?.[0] !== "params") throw err;
        throw jsonRpcError(ErrorCode.InvalidParams, `invalid params for ${method}: ${describeIssue(first, request)}`);
      }
    });
  }
  protocol.fallbackRequestHandler = async (request) => {
    throw jsonRpcError(ErrorCode.MethodNotFound, `method not found: ${JSON.stringify(request.method.slice(0, 100))}`);
  };
}

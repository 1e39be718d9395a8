/**
 * The local runtime's one HTTP server, behind the door of control.ts: the approval links (the
 * approval-callback Lambda's hono routes), the control API (api-routes.ts), the local Step
 * Functions API for the SDK clients, and the console.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { APPROVAL_LINK_PATH, approvalRoutes } from "../lambdas/approval-callback/routes.js";
import type { ApprovalDeps } from "../lambdas/shared/agent/approvals.js";
import { DocumentStore } from "../lambdas/shared/aws/documents.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import type { Ledger } from "../lambdas/shared/ledger/ledger.js";
import type { RunRecord } from "../lambdas/shared/ledger/records.js";
import { pdfTextLines } from "../lambdas/shared/po/pdf.js";
import { controlRoutes } from "./api-routes.js";
import type { ControlBackend } from "./backend.js";
import { handleConsoleRequest } from "./console/index.js";
import { checkRequest, type DoorOptions, exchangeKeyForCookie, refuse, SECURITY_HEADERS } from "./control.js";
import type { LocalEngine } from "./engine.js";
import type { ExecutionHistories } from "./execution-history.js";
import { LOOPBACK, listen } from "./ports.js";
import { bucketFor, STATE_MACHINE_ARN } from "./runtime.js";
import { createSfnApiHandler } from "./sfn-api.js";
import type { TraceStore } from "./trace.js";

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** What the door serves from the runtime. */
export interface DoorHost {
  httpUrl: string;
  controlKey: string;
  sesEndpoint: string;
  ledger: Ledger;
  s3: S3Client;
  traces: TraceStore;
  engine: LocalEngine;
  histories: ExecutionHistories;
  customer(name: string): CustomerConfig;
  /** The wiring for an approval link's token (the customer of the approval it names). */
  approvalDeps(token: string): Promise<ApprovalDeps>;
  /** The CLI backend the control API calls. */
  backend: ControlBackend;
  /** StartExecution of the local Step Functions API (Ingest's child runs). */
  startNamedExecution(name: string, input: unknown): { executionArn: string };
}

/**
 * Listens on the loopback port before the runtime exists (the engine's SDK client needs the URL);
 * requests get 503 until `handler()` returns the door.
 */
export async function listenHttp(
  port: number,
  handler: () => HttpHandler | undefined,
): Promise<{ server: Server; httpUrl: string }> {
  const server = createServer((req, res) => {
    const handle = handler();
    if (!handle) {
      res.writeHead(503).end("starting");
      return;
    }
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`internal error: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  const bound = await listen(server, port);
  return { server, httpUrl: `http://${LOOPBACK}:${bound}` };
}

/** The request handler: the door's checks first, then the approval links, the APIs or the console. */
export function createDoor(host: DoorHost): HttpHandler {
  const app = new Hono();
  app.route("/", approvalRoutes({ deps: (token) => host.approvalDeps(token) }));
  app.route("/", controlRoutes(host.backend));
  app.notFound((c) => c.text("not found", 404));
  // overrideGlobalObjects: false keeps Node's own Request/Response for the rest of the process.
  const routes = getRequestListener(app.fetch, { overrideGlobalObjects: false });
  const door: DoorOptions = {
    port: Number(new URL(host.httpUrl).port),
    key: host.controlKey,
    // Signed approval links (the emails) carry their own credential.
    selfAuthenticating: (path) => APPROVAL_LINK_PATH.test(path),
  };
  const sfnApi = createSfnApiHandler(host.engine, {
    stateMachineArn: STATE_MACHINE_ARN,
    startExecution: (name, input) => host.startNamedExecution(name, input),
    executionHistory: (arn) => host.histories.history(arn),
  });

  return async (req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const verdict = checkRequest(req, door);
    if (!verdict.ok) {
      // The key in the console URL becomes the cookie; anything else without a key is refused.
      if (verdict.status === 401 && exchangeKeyForCookie(req, res, door)) return;
      refuse(res, verdict);
      return;
    }
    if (exchangeKeyForCookie(req, res, door)) return;
    const url = new URL(req.url ?? "/", host.httpUrl);
    if (req.method === "POST" && req.headers["x-amz-target"]) {
      // The task API is for holders of the key (the SDK clients add it); a signed link's path is no way in.
      if (!verdict.authenticated) {
        refuse(res, { ok: false, status: 401, message: "the Step Functions API needs the key of the running process" });
        return;
      }
      sfnApi(req, res);
      return;
    }
    if (url.pathname.startsWith("/api/") || APPROVAL_LINK_PATH.test(url.pathname)) {
      await routes(req, res);
      return;
    }
    const served = await handleConsoleRequest(
      {
        ledger: host.ledger,
        traces: host.traces,
        httpUrl: host.httpUrl,
        sesEndpoint: host.sesEndpoint,
        approverOf: (a) => {
          const approverId = a.approvers[0] ?? "";
          return host.customer(a.customer).approvers.find((x) => x.id === approverId)?.email ?? approverId;
        },
        loadResult: async (run, key) =>
          new TextDecoder().decode(await new DocumentStore(host.s3).get(bucketFor(run.customer), key)),
        loadDocument: (run) => documentText(host.s3, run),
      },
      req,
      res,
    );
    if (served) return;
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  };
}

/** The run's original bytes as text for the console: a PDF's text layer, a note for other binaries. */
async function documentText(s3: S3Client, run: RunRecord): Promise<{ text?: string; note?: string }> {
  const { bucket, key, versionId } = run.document;
  const res = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
  );
  const bytes = (await res.Body?.transformToByteArray()) ?? new Uint8Array();
  if (Buffer.from(bytes.subarray(0, 5)).toString("latin1") === "%PDF-") {
    const lines = await pdfTextLines(bytes);
    return lines.length
      ? { text: lines.join("\n"), note: "PDF, text layer" }
      : { note: "a PDF without a text layer (a scan)" };
  }
  if (bytes.subarray(0, 8192).includes(0)) return { note: `a binary document (${bytes.byteLength} bytes)` };
  return { text: new TextDecoder().decode(bytes) };
}

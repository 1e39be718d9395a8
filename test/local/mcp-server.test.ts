import { readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { LambdaFunctionURLEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { handleFunctionUrlEvent } from "../../lambdas/shared/mcp/http.js";
import { localBackend, localMcpPrincipal } from "../../local/mcp-server.js";
import { LocalStack } from "../../local/stack.js";
import { customersDirWith, REPO_DIR, realCustomers, SAMPLES_DIR, tempDir } from "../support/stack.js";

/** The tool's JSON answer (text content), or its error text. */
async function call(client: Client, name: string, args: Record<string, unknown>) {
  const res = (await client.callTool({ name, arguments: args })) as { content: { text?: string }[]; isError?: boolean };
  const text = res.content[0]?.text ?? "";
  return res.isError ? { error: text } : (JSON.parse(text) as Record<string, unknown>);
}

async function waitForStatus(client: Client, runId: string, status: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const run = await call(client, "get_run", { runId });
    if (run.status === status) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${runId} never reached ${status}`);
}

const sample = (file: string) => readFileSync(join(SAMPLES_DIR, "acme", file)).toString("base64");

describe("po-agent mcp over stdio (a real SDK client to `po-agent mcp`)", () => {
  let dataDir: string;
  let customersDir: string;
  let client: Client;

  beforeAll(async () => {
    dataDir = tempDir("mcp-stdio");
    // The caller's identity maps to an approver in the config: this client decides as priya, nobody else.
    customersDir = customersDirWith({
      acme: (doc) => doc.setIn(["approvers", 0, "principals"], [localMcpPrincipal()]),
    });
    client = new Client({ name: "approver-bot", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ["--import", "tsx", "local/mcp-server.ts", "--data-dir", dataDir, "--customers", customersDir],
        cwd: REPO_DIR,
        stderr: "pipe",
      }),
    );
  });
  afterAll(async () => {
    await client?.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(customersDir, { recursive: true, force: true });
  });

  it("offers po-agent's operations as tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "approve",
      "get_run",
      "get_trace",
      "list_pending_approvals",
      "reject",
      "submit_document",
    ]);
  });

  it("submits a PO, refuses a decision by someone the policy did not name and its own approval as submitter, rejects through decide() and audits it", async () => {
    // Prepare
    const { runId } = (await call(client, "submit_document", {
      customer: "acme",
      fileName: "03-controls-needs-approval.json",
      contentBase64: sample("03-controls-needs-approval.json"),
    })) as { runId: string };
    await waitForStatus(client, runId, "awaiting_approval");
    const pending = (await call(client, "list_pending_approvals", { customer: "acme" })) as unknown as {
      approvalId: string;
      runId: string;
      approvers: string[];
    }[];
    const approval = pending.find((p) => p.runId === runId);
    if (!approval) throw new Error("no pending approval for the run");

    // Act
    const refused = await call(client, "approve", { approvalId: approval.approvalId, approver: "mallory" });
    const asMarcus = await call(client, "approve", { approvalId: approval.approvalId, approver: "marcus" });
    // This client submitted the document: it may reject the PO, never approve it.
    const selfApproved = await call(client, "approve", { approvalId: approval.approvalId, approver: "priya" });
    const rejected = await call(client, "reject", {
      approvalId: approval.approvalId,
      approver: "priya",
      comment: "no",
    });
    const again = await call(client, "approve", { approvalId: approval.approvalId, approver: "priya" });
    const run = await waitForStatus(client, runId, "rejected");
    const trace = (await call(client, "get_trace", { runId })) as { audit: { actor: string; action: string }[] };
    const resource = await client.readResource({ uri: `po-agent://runs/${runId}` });

    // Assess
    expect(refused).toEqual({ error: expect.stringMatching(/not approved: "mallory" is not an approver/) });
    // marcus is an approver of the request, but this caller is not mapped to him: the field decides nothing.
    expect(asMarcus).toEqual({
      error: expect.stringMatching(
        new RegExp(`not approved: "marcus" is not an approver that ${localMcpPrincipal()} is mapped to`),
      ),
    });
    expect(selfApproved).toEqual({
      error: expect.stringMatching(/not approved: .* submitted this document; a submitter cannot approve its own PO/),
    });
    expect(rejected).toMatchObject({ decided: true, status: "rejected", runId });
    expect(again).toEqual({ error: expect.stringMatching(/not approved: the approval is rejected/) });
    expect(run).toMatchObject({ status: "rejected" });
    expect(trace.audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: localMcpPrincipal(), action: "approval.mcp_refused" }),
        expect.objectContaining({
          actor: `${localMcpPrincipal()} as priya.raman@acme-mfg.example`,
          action: "approval.rejected",
        }),
      ]),
    );
    const first = resource.contents[0] as { text?: string } | undefined;
    expect(JSON.parse(first?.text ?? "{}")).toMatchObject({ runId, status: "rejected" });
  });

  it("answers bad input with a tool error, not a crash", async () => {
    expect(await call(client, "get_run", { runId: "nope" })).toEqual({ error: "no run nope" });
    expect(await call(client, "submit_document", { customer: "globex", fileName: "a.json", text: "{}" })).toEqual({
      error: expect.stringMatching(/unknown customer "globex"/),
    });
    expect(await call(client, "approve", { approvalId: "apr_missing", approver: "priya" })).toEqual({
      error: "no approval apr_missing",
    });
  });
});

/** Plays the Function URL: turns a Node request into the event the Lambda receives. */
async function functionUrlEvent(req: IncomingMessage): Promise<LambdaFunctionURLEvent> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    body: Buffer.concat(chunks).toString("base64"),
    isBase64Encoded: true,
    // A Function URL is reached by its own host name: domainName is the Host the request named.
    requestContext: { domainName: req.headers.host ?? "127.0.0.1", http: { method: req.method ?? "GET" } },
  } as unknown as LambdaFunctionURLEvent;
}

describe("po-agent MCP over stateless Streamable HTTP (the Lambda handler's core)", () => {
  const TOKEN = "test-token-0123456789";
  let stack: LocalStack;
  let dataDir: string;
  let server: Server;
  let url: URL;

  beforeAll(async () => {
    dataDir = tempDir("mcp-http");
    // A bearer-token caller is `mcp:http`; the config maps it to priya.
    const customers: CustomerConfig[] = realCustomers().map((c) =>
      c.name === "acme"
        ? {
            ...c,
            approvers: c.approvers.map((a) =>
              a.id === "priya" ? { ...a, principals: ["mcp:http"] } : a,
            ) as CustomerConfig["approvers"],
          }
        : c,
    );
    stack = await LocalStack.start({ dataDir, customers, retryIntervalMs: 0 });
    const backend = localBackend(stack);
    server = createServer((req, res) => {
      void functionUrlEvent(req)
        .then((event) => handleFunctionUrlEvent(event, backend, { bearerToken: async () => TOKEN }))
        .then((result) => res.writeHead(result.statusCode, result.headers).end(result.body))
        .catch((err: unknown) => res.writeHead(500).end(String(err)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const connect = async (token: string) => {
    const client = new Client({ name: "http-client", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
    );
    return client;
  };

  it("refuses a client without the bearer token", async () => {
    await expect(connect("wrong-token-0123456789")).rejects.toThrow(/401|bearer/i);
  });

  it("runs a PO to a rejection decided over HTTP by a named approver", async () => {
    // Prepare
    const client = await connect(TOKEN);
    try {
      const { runId } = (await call(client, "submit_document", {
        customer: "acme",
        fileName: "06-cxml-order-needs-approval.xml",
        contentBase64: sample("06-cxml-order-needs-approval.xml"),
      })) as { runId: string };
      await waitForStatus(client, runId, "awaiting_approval");
      const pending = (await call(client, "list_pending_approvals", {})) as unknown as {
        approvalId: string;
        runId: string;
      }[];
      const approvalId = pending.find((p) => p.runId === runId)?.approvalId ?? "";

      // Act
      const rejected = await call(client, "reject", { approvalId, approver: "priya", comment: "vendor on hold" });
      const run = await waitForStatus(client, runId, "rejected");

      // Assess
      expect(rejected).toMatchObject({ decided: true, status: "rejected" });
      expect(run.reason).toMatch(/vendor on hold/);
      const audit = await stack.ledger.getAudit(runId);
      expect(audit).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ actor: "mcp:http as priya.raman@acme-mfg.example", action: "approval.rejected" }),
        ]),
      );
    } finally {
      await client.close();
    }
  });
});

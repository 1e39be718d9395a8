import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalRecord, RunRecord, ToolCallRecord, TurnRecord } from "../../lambdas/shared/ledger/records.js";
import { type ConsoleContext, handleConsoleRequest } from "../../local/console/index.js";
import { closeServer, LOOPBACK, listen } from "../../local/ports.js";
import { TraceStore } from "../../local/trace.js";
import { approvalRecord, runRecord, toolCallRecord, turnRecord } from "./trace-fixtures.js";

let server: Server;
let base: string;
let dataDir: string;
const RUNNING = runRecord({
  runId: "acme-running",
  status: "running",
  reason: undefined,
  finishedAt: undefined,
  durationMs: undefined,
  poNumber: "<script>alert(1)</script>",
});
const WAITING = runRecord({ runId: "acme-waiting", status: "awaiting_approval", reason: undefined });
const SAVED = runRecord();
const runs: RunRecord[] = [SAVED, RUNNING, WAITING];
const turns: TurnRecord[] = [
  turnRecord(1, {
    response: {
      model: "claude-sonnet-5",
      content: [
        { type: "text", text: "Saving PO 48291." },
        { type: "tool_use", id: "tu-1", name: "save", input: { po: { poNumber: "48291", total: "12480.50" } } },
      ],
      stop_reason: "tool_use",
      usage: { input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 900 },
    },
  }),
];
const toolCalls: ToolCallRecord[] = [toolCallRecord({ content: '{"saved":true,"objectKey":"processed/48291.json"}' })];
const pending: ApprovalRecord = approvalRecord({
  approvalId: "ap-waiting",
  runId: "acme-waiting",
  status: "pending",
  decidedBy: undefined,
  decidedAt: undefined,
});

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "po-agent-console-"));
  const traces = new TraceStore(dataDir);
  traces.append("acme-running", { at: "2026-03-05T10:00:00.000Z", type: "state_entered", state: "RunTools" });
  traces.append("acme-running", { at: "2026-03-05T10:00:00.010Z", type: "state_entered", state: "SaveTool", index: 0 });
  const ctx: ConsoleContext = {
    ledger: {
      listRuns: async () => runs,
      getRun: async (id) => runs.find((r) => r.runId === id),
      getTurns: async (id) => (id === SAVED.runId ? turns : []),
      getToolCalls: async (id) => (id === SAVED.runId ? toolCalls : []),
      listApprovals: async (status) => [pending, approvalRecord()].filter((a) => !status || a.status === status),
      getArtifacts: async () => [],
    },
    traces,
    httpUrl: "http://stack.local",
    sesEndpoint: "http://inbox.local",
    approverOf: () => "priya.raman@acme-mfg.example",
  };
  server = createServer((req, res) => {
    handleConsoleRequest(ctx, req, res).then((handled) => {
      if (!handled) res.writeHead(418).end("not the console's");
    });
  });
  base = `http://${LOOPBACK}:${await listen(server, 0)}`;
});

afterAll(async () => {
  await closeServer(server);
  rmSync(dataDir, { recursive: true, force: true });
});

const get = async (path: string) => {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, text: await res.text() };
};

describe("console runs page", () => {
  it("lists runs with their live state, refreshing itself, and escapes document values", async () => {
    const { status, text } = await get("/");
    expect(status).toBe(200);
    expect(text).toContain('<meta http-equiv="refresh" content="2">');
    expect(text).toMatch(/data-run="acme-running"[\s\S]*?data-status="running"[\s\S]*?in SaveTool/);
    expect(text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(text).not.toContain("<script>alert(1)");
    expect(text).toContain('href="http://inbox.local"');
    expect(text).toContain("1 pending approval(s)");
  });
});

describe("console approvals page", () => {
  it("shows decisions and same-origin decision forms, never a signed approver link", async () => {
    const { text } = await get("/approvals");
    expect(text).toContain("<h1>Pending approvals (1)</h1>");
    expect(text).toContain('action="/api/approvals/ap-waiting/decide"');
    expect(text).not.toMatch(/\/approvals\/[A-Za-z0-9_.-]{20,}/);
    expect(text).toContain('href="/runs/acme-waiting"');
    // The decided one is listed with who decided it, without any form.
    expect(text).toMatch(/id="decided"[\s\S]*data-approval="ap-1"[\s\S]*data-status="approved"/);
    expect(text).not.toContain('action="/api/approvals/ap-1/decide"');
  });
});

describe("console run page", () => {
  it("shows the timeline, model turns, tool inputs and results, and cost", async () => {
    const { status, text } = await get(`/runs/${SAVED.runId}`);
    expect(status).toBe(200);
    expect(text).not.toContain('http-equiv="refresh"');
    expect(text).toContain('data-status="saved"');
    expect(text).toMatch(
      /Turn 1 <span class="muted">claude-sonnet-5 · tool_use ·\s*1000 in \/ 200 out \/ 900 cache read/,
    );
    expect(text).toContain("Saving PO 48291.");
    expect(text).toContain("&quot;total&quot;: &quot;12480.50&quot;");
    expect(text).toContain("&quot;objectKey&quot;: &quot;processed/48291.json&quot;");
    expect(text).toMatch(/id="timeline"[\s\S]*model claude-sonnet-5 turn 1[\s\S]*tool save · 42 ms[\s\S]*run SAVED/);
    expect(text).toMatch(/model dollars<\/th><td>\$0\.0123/);
  });

  it("serves the text timeline and a 404 for an unknown run", async () => {
    const txt = await get(`/runs/${SAVED.runId}/trace.txt`);
    expect(txt.text).toContain("total 5000 ms · 1 model calls");
    expect((await get("/runs/nope")).status).toBe(404);
  });

  it("leaves other paths to the caller", async () => {
    expect((await get("/approvals/some-token")).status).toBe(418);
    expect((await get("/api/runs")).status).toBe(418);
  });
});

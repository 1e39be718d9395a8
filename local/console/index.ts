import type { IncomingMessage, ServerResponse } from "node:http";
import type { Ledger } from "../../lambdas/shared/ledger/ledger.js";
import type { ApprovalRecord, RunRecord } from "../../lambdas/shared/ledger/records.js";
import { mergeTrace, renderTimeline, type TraceStore } from "../trace.js";
import { changesFor, renderChanges } from "./changes.js";
import { poOfRun } from "./clerk.js";
import {
  currentState,
  type RunFilters,
  type RunOrder,
  renderApprovalsPage,
  renderRunPage,
  renderRunsPage,
} from "./pages.js";

export { currentState, renderApprovalsPage, renderRunPage, renderRunsPage } from "./pages.js";

/** What the console reads; LocalStack provides all of it. */
export interface ConsoleContext {
  ledger: Pick<Ledger, "listRuns" | "getRun" | "getTurns" | "getToolCalls" | "listApprovals" | "getArtifacts">;
  traces: TraceStore;
  /** Base URL of the stack's HTTP server (the confirm pages live there). */
  httpUrl: string;
  /** The emulated SES web inbox. */
  sesEndpoint: string;
  /** Who the policy asks first for an approval (shown; the console never hands out signed links). */
  approverOf(approval: ApprovalRecord): string;
  /** Content of a large tool result kept in S3. @default - the page shows the S3 key instead */
  loadResult?(run: RunRecord, key: string): Promise<string>;
  /** The run's original document as text (a PDF's text layer). @default - not shown */
  loadDocument?(run: RunRecord): Promise<{ text?: string; note?: string }>;
}

async function changesHtml(ctx: ConsoleContext, approval: ApprovalRecord): Promise<string> {
  return renderChanges(approval, changesFor(await ctx.ledger.getArtifacts(approval.runId), approval));
}

const HTML = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" };

/**
 * Serves the console's pages: `/` runs with live state, `/runs/<id>` detail (timeline, model
 * turns, tool calls with inputs and results, cost), `/runs/<id>/trace.txt`, `/approvals`.
 * Returns false for any other request so the caller's routes (confirm pages, APIs) handle it.
 */
export async function handleConsoleRequest(
  ctx: ConsoleContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const url = new URL(req.url ?? "/", "http://console.local");
  const path = url.pathname;
  if (path === "/" || path === "/runs") {
    const runs = await ctx.ledger.listRuns();
    const pending = await ctx.ledger.listApprovals("pending");
    // Vendor and total per run from its extract call (bounded: the newest 300 runs).
    const orders = new Map<string, RunOrder>();
    const newest = [...runs].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, 300);
    await Promise.all(
      newest.map(async (r) => {
        const po = poOfRun(await ctx.ledger.getToolCalls(r.runId));
        if (po) orders.set(r.runId, { vendor: po.supplier.name, totalMinor: po.totalMinor, currency: po.currency });
      }),
    );
    const param = (k: string) => url.searchParams.get(k)?.trim() || undefined;
    const filters: RunFilters = {};
    for (const k of ["state", "customer", "vendor"] as const) {
      const v = param(k);
      if (v) filters[k] = v.slice(0, 100);
    }
    const html = renderRunsPage({
      runs,
      pendingApprovals: pending.length,
      stateOf: (runId) => currentState(ctx.traces.read(runId)),
      inboxUrl: ctx.sesEndpoint,
      orders,
      filters,
    });
    res.writeHead(200, HTML).end(html);
    return true;
  }
  if (path === "/approvals") {
    const all = await ctx.ledger.listApprovals();
    const listed = await Promise.all(
      all
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
        .map(async (approval) => ({
          approval,
          approver: ctx.approverOf(approval),
          // What each waiting decision would write, against the document (few are pending at a time).
          ...(approval.status === "pending" ? { changes: await changesHtml(ctx, approval) } : {}),
        })),
    );
    const html = renderApprovalsPage({ approvals: listed, inboxUrl: ctx.sesEndpoint });
    res.writeHead(200, HTML).end(html);
    return true;
  }
  const match = /^\/runs\/([^/]+)(\/trace\.txt)?$/.exec(path);
  if (!match?.[1]) return false;
  const runId = decodeURIComponent(match[1]);
  const run = await ctx.ledger.getRun(runId);
  if (!run) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end(`no run ${runId}`);
    return true;
  }
  const [turns, toolCalls, approvals] = await Promise.all([
    ctx.ledger.getTurns(runId),
    ctx.ledger.getToolCalls(runId),
    // Approvals of this run only; the status index holds few pending ones and the decided ones are small.
    ctx.ledger.listApprovals().then((all) => all.filter((a) => a.runId === runId)),
  ]);
  const events = mergeTrace(ctx.traces.read(runId), { run, turns, toolCalls, approvals });
  if (match[2]) {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(renderTimeline(events, run));
    return true;
  }
  const results = new Map<string, string>();
  if (ctx.loadResult) {
    for (const c of toolCalls) {
      if (!c.resultKey) continue;
      results.set(
        c.resultKey,
        await ctx.loadResult(run, c.resultKey).catch((e: unknown) => `(could not load: ${String(e)})`),
      );
    }
  }
  const document = ctx.loadDocument
    ? await ctx.loadDocument(run).catch((e: unknown) => ({ note: `could not read the document: ${String(e)}` }))
    : undefined;
  const po = poOfRun(toolCalls, results);
  const html = renderRunPage({
    ...(po ? { po } : {}),
    ...(document ? { document } : {}),
    run,
    turns,
    toolCalls,
    approvals: await Promise.all(
      approvals.map(async (approval) => ({
        approval,
        approver: ctx.approverOf(approval),
        changes: await changesHtml(ctx, approval),
      })),
    ),
    events,
    results,
    inboxUrl: ctx.sesEndpoint,
  });
  res.writeHead(200, HTML).end(html);
  return true;
}

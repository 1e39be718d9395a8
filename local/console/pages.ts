import { escapeHtml as esc } from "../../lambdas/shared/approval/render.js";
import type { ApprovalRecord, RunRecord, ToolCallRecord, TurnRecord } from "../../lambdas/shared/ledger/records.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { describeEvent, type TraceEvent, traceTotals } from "../trace.js";
import { CLERK_STYLE, money, renderDocument, renderPo, renderWaterfall, shortText } from "./clerk.js";

/** Server-rendered pages of the local console. Every interpolated value goes through `esc`. */

const TERMINAL = new Set(["saved", "rejected", "failed"]);

/** An approval as the console lists it: the record and who the policy asks first. */
export interface ListedApproval {
  approval: ApprovalRecord;
  approver: string;
  /** The diff between the document and what the approved call would save (changes.ts), as HTML. */
  changes?: string;
}

/**
 * Approve / reject buttons for a pending approval: same-origin POST forms to the operator
 * decision API (the cookie of this start's key authenticates them; a cross-site page cannot).
 */
export function decisionForms(a: ApprovalRecord, back: string): string {
  const action = `/api/approvals/${encodeURIComponent(a.approvalId)}/decide`;
  const ret = `<input type="hidden" name="back" value="${esc(back)}">`;
  return `<form class="decide" method="post" action="${esc(action)}">${ret}<input type="hidden" name="decision" value="approved"><input name="comment" placeholder="comment (optional)" maxlength="1000"><button type="submit" class="approve">Approve</button></form>
<form class="decide" method="post" action="${esc(action)}">${ret}<input type="hidden" name="decision" value="rejected"><input name="comment" placeholder="reason (required)" required maxlength="1000"><button type="submit" class="reject">Reject</button></form>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:1rem 1.2rem;color:#1f2328}
nav a{margin-right:1rem}table{border-collapse:collapse;margin:.5rem 0}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
.status{font-weight:600}.saved{color:#176b2c}.failed,.rejected{color:#a11}.awaiting_approval{color:#b36b00}.running{color:#0a58ca}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-height:20rem;white-space:pre-wrap;margin:.2rem 0}
.muted{color:#666}.err{color:#a11;font-weight:600}.timeline td:first-child{font-family:ui-monospace,monospace;color:#666;white-space:nowrap}
form.decide{display:inline-flex;gap:.3rem;margin:.1rem .4rem .1rem 0}form.decide input{font:inherit;padding:.2rem .4rem;width:8rem}
button.approve,button.reject{padding:.3rem .8rem;border:0;border-radius:5px;color:#fff;cursor:pointer;font:inherit}
button.approve{background:#1f883d}button.reject{background:#cf222e}
${CLERK_STYLE}`;

/** The page frame; `refreshSeconds` keeps live pages current without any script. */
export function layout(title: string, body: string, opts: { refreshSeconds?: number; inboxUrl: string }): string {
  const refresh = opts.refreshSeconds ? `<meta http-equiv="refresh" content="${opts.refreshSeconds}">` : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${refresh}
<title>${esc(title)} · po-agent</title><style>${STYLE}</style></head>
<body><nav><strong>po-agent local console</strong> · <a href="/">Runs</a><a href="/approvals">Pending approvals</a><a href="${esc(opts.inboxUrl)}">Emulated inbox</a></nav>
<h1>${esc(title)}</h1>
${body}</body></html>`;
}

function statusCell(status: string): string {
  return `<span class="status ${esc(status)}" data-status="${esc(status)}">${esc(status.replace("_", " "))}</span>`;
}

/** The state the run's execution is in now, from the trace: the last state entered and not yet left. */
export function currentState(events: readonly TraceEvent[]): string | undefined {
  const open: string[] = [];
  for (const e of events) {
    if (e.type === "state_entered") open.push(e.state);
    else if (e.type === "state_exited" || e.type === "state_failed") {
      const i = open.lastIndexOf(e.state);
      if (i >= 0) open.splice(i, 1);
    }
  }
  return open.at(-1);
}

function fileOf(run: RunRecord): string {
  return run.document.key.split("/").pop() ?? run.document.key;
}

/** A run id short enough for a table cell (the full id is the link's title). */
function shortRunId(runId: string): string {
  return runId.length > 15 ? `${runId.slice(0, 14)}…` : runId;
}

/** `2026-12-01T09:13:15.568Z` → `2026-12-01 09:13` (UTC). */
function shortTime(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso;
}

export function runHref(runId: string): string {
  return `/runs/${encodeURIComponent(runId)}`;
}

/** What the runs list knows of each run's order (from its extract call). */
export interface RunOrder {
  vendor?: string;
  totalMinor?: number;
  currency?: string;
}

export interface RunFilters {
  state?: string;
  customer?: string;
  vendor?: string;
}

export function renderRunsPage(input: {
  runs: readonly RunRecord[];
  pendingApprovals: number;
  stateOf: (runId: string) => string | undefined;
  inboxUrl: string;
  orders?: ReadonlyMap<string, RunOrder>;
  filters?: RunFilters;
}): string {
  const f = input.filters ?? {};
  const orderOf = (id: string) => input.orders?.get(id) ?? {};
  const all = [...input.runs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const runs = all.filter(
    (r) =>
      (!f.state || r.status === f.state) &&
      (!f.customer || r.customer === f.customer) &&
      (!f.vendor || (orderOf(r.runId).vendor ?? "").toLowerCase().includes(f.vendor.toLowerCase())),
  );
  const rows = runs
    .map((r) => {
      const live = TERMINAL.has(r.status) ? "" : (input.stateOf(r.runId) ?? "");
      const o = orderOf(r.runId);
      const total = o.totalMinor !== undefined && o.currency ? money(o.totalMinor, o.currency) : "";
      return `<tr data-run="${esc(r.runId)}"><td class="nowrap"><a href="${runHref(r.runId)}" title="${esc(r.runId)}"><code>${esc(shortRunId(r.runId))}</code></a></td>
<td>${esc(r.customer)}</td><td class="doc-name">${esc(fileOf(r))}</td><td class="nowrap">${esc(r.poNumber ?? "")}</td><td data-vendor>${esc(o.vendor ?? "")}</td><td class="num nowrap" data-total>${esc(total)}</td>
<td class="nowrap">${statusCell(r.status)}${live ? `<br><span class="muted">in ${esc(live)}</span>` : ""}</td><td class="reason">${shortText(r.reason ?? "", 70)}</td>
<td class="num nowrap" title="${r.counters.inputTokens + r.counters.outputTokens} tokens">${r.counters.modelCalls} / ${r.counters.toolCalls}</td>
<td class="num">$${r.counters.costUsd.toFixed(4)}</td><td class="num nowrap">${r.durationMs !== undefined ? `${(r.durationMs / 1000).toFixed(1)} s` : ""}</td></tr>`;
    })
    .join("\n");
  const live = runs.some((r) => !TERMINAL.has(r.status));
  const option = (value: string, current: string | undefined, label = value) =>
    `<option value="${esc(value)}"${value === (current ?? "") ? " selected" : ""}>${esc(label)}</option>`;
  const states = ["running", "awaiting_approval", "saved", "rejected", "failed"];
  const customers = [...new Set(all.map((r) => r.customer))].sort();
  const filters = `<form class="filters" method="get" action="/">
<label>state<select name="state">${option("", f.state, "any")}${states.map((x) => option(x, f.state, x.replace("_", " "))).join("")}</select></label>
<label>customer<select name="customer">${option("", f.customer, "any")}${customers.map((x) => option(x, f.customer)).join("")}</select></label>
<label>vendor<input name="vendor" value="${esc(f.vendor ?? "")}" placeholder="name contains"></label>
<button type="submit">Filter</button>${f.state || f.customer || f.vendor ? ' <a href="/">clear</a>' : ""}</form>`;
  const body = `<p><a href="/approvals">${input.pendingApprovals} pending approval(s)</a> ·
approval emails land in the <a href="${esc(input.inboxUrl)}">emulated inbox</a>${live ? ' · <span class="muted">live: refreshes every 2 s</span>' : ""}</p>
${filters}
<table id="runs" class="list"><thead><tr><th>run</th><th>customer</th><th>document</th><th>PO</th><th>vendor</th><th class="num">total</th><th>state</th><th>reason</th>
<th class="num">model / tool calls</th><th class="num">cost</th><th class="num">duration</th></tr></thead>
<tbody>${rows || `<tr><td colspan="11" class="muted">${all.length ? "no run matches these filters" : "no runs yet: drop a file into a customer bucket, or <code>npx po-agent run &lt;file&gt; --customer &lt;name&gt;</code>"}</td></tr>`}</tbody></table>`;
  const title = runs.length === all.length ? `Runs (${all.length})` : `Runs (${runs.length} of ${all.length})`;
  return layout(
    title,
    body,
    live && !f.vendor ? { refreshSeconds: 2, inboxUrl: input.inboxUrl } : { inboxUrl: input.inboxUrl },
  );
}

export function renderApprovalsPage(input: { approvals: readonly ListedApproval[]; inboxUrl: string }): string {
  const pending = input.approvals.filter((x) => x.approval.status === "pending");
  const decided = input.approvals
    .filter((x) => x.approval.status !== "pending")
    .sort((a, b) =>
      (b.approval.decidedAt ?? b.approval.createdAt).localeCompare(a.approval.decidedAt ?? a.approval.createdAt),
    );
  const items = pending
    .map(
      ({
        approval: a,
        approver,
        changes,
      }) => `<tr data-approval="${esc(a.approvalId)}"><td class="nowrap"><a href="${runHref(a.runId)}" title="${esc(a.runId)}"><code>${esc(shortRunId(a.runId))}</code></a></td>
<td class="nowrap">${esc(a.summary.poNumber)}</td><td>${esc(a.summary.supplierName)}</td><td class="num nowrap">${esc(a.summary.amount)}</td>
<td class="reason wide">${shortText(a.reason, 90)} <span class="muted">(rule ${esc(a.rule)})</span></td><td>${esc(approver)}</td><td class="nowrap">${esc(shortTime(a.createdAt))}</td>
<td>${decisionForms(a, "/approvals")}</td></tr>${changes ? `\n<tr class="changes-row" data-changes-row="${esc(a.approvalId)}"><td colspan="8">${changes}</td></tr>` : ""}`,
    )
    .join("\n");
  const history = decided
    .map(
      ({
        approval: a,
      }) => `<tr data-approval="${esc(a.approvalId)}"><td class="nowrap"><a href="${runHref(a.runId)}" title="${esc(a.runId)}"><code>${esc(shortRunId(a.runId))}</code></a></td>
<td class="nowrap">${esc(a.summary.poNumber)}</td><td>${esc(a.summary.supplierName)}</td><td class="num nowrap">${esc(a.summary.amount)}</td>
<td>${statusCell(a.status)}</td><td>${esc(a.decidedBy ?? "")}</td><td class="nowrap">${esc(shortTime(a.decidedAt ?? ""))}</td><td>${shortText(a.comment ?? "", 80)}</td></tr>`,
    )
    .join("\n");
  const body = `<p>Decide here as the local operator, or from a shell: <code>npx po-agent approve &lt;approvalId&gt;</code>.
Approvers decide through the signed links in their emails (the <a href="${esc(input.inboxUrl)}">emulated inbox</a>).</p>
<table id="approvals" class="list"><thead><tr><th>run</th><th>PO</th><th>supplier</th><th>amount</th><th>why</th><th>asked</th><th>asked at</th><th></th></tr></thead>
<tbody>${items || '<tr><td colspan="8" class="muted">nothing waits for a human</td></tr>'}</tbody></table>
<h2>Decided</h2>
<table id="decided" class="list"><thead><tr><th>run</th><th>PO</th><th>supplier</th><th>amount</th><th>decision</th><th>by</th><th>at</th><th>comment</th></tr></thead>
<tbody>${history || '<tr><td colspan="8" class="muted">no decisions yet</td></tr>'}</tbody></table>`;
  return layout(`Pending approvals (${pending.length})`, body, { refreshSeconds: 5, inboxUrl: input.inboxUrl });
}

function pretty(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2) ?? "";
}

interface ToolUse {
  type: "tool_use";
  id: string;
  name: string;
  input: unknown;
}

function toolUsesOf(turn: TurnRecord): ToolUse[] {
  return turn.response.content.filter((b): b is Record<string, unknown> & ToolUse => b.type === "tool_use");
}

function textOf(turn: TurnRecord): string {
  return turn.response.content
    .filter((b) => b.type === "text")
    .map((b) => String(b.text ?? ""))
    .join("\n")
    .trim();
}

export function renderRunPage(input: {
  run: RunRecord;
  turns: readonly TurnRecord[];
  toolCalls: readonly ToolCallRecord[];
  approvals: readonly ListedApproval[];
  events: readonly TraceEvent[];
  /** Content of results stored in S3 (by resultKey), when the caller could load them. */
  results?: ReadonlyMap<string, string>;
  inboxUrl: string;
  /** The order as extracted, and the original document's text (a PDF's text layer). */
  po?: NormalizedPo;
  document?: { text?: string; note?: string };
}): string {
  const { run } = input;
  const totals = traceTotals(input.events, run);
  const c = run.counters;
  const live = !TERMINAL.has(run.status);
  const now = currentState(input.events);
  const header = `<table class="facts"><tbody>
<tr><th>state</th><td colspan="3">${statusCell(run.status)}${live && now ? ` <span class="muted">in ${esc(now)}</span>` : ""}${run.reason ? ` — ${shortText(run.reason, 160)}` : ""}</td></tr>
<tr><th>customer</th><td>${esc(run.customer)}</td><th>document</th><td>${esc(run.document.key)} (${run.document.size} bytes)</td></tr>
<tr><th>PO</th><td>${esc(run.poNumber ?? "")}</td><th>model</th><td>${esc(run.modelId ?? "")} ${esc(run.modelProvider ?? "")}</td></tr>
<tr><th>started</th><td>${esc(shortTime(run.createdAt))}</td><th>duration</th><td>${run.durationMs !== undefined ? `${(run.durationMs / 1000).toFixed(2)} s` : "running"}</td></tr>
</tbody></table>`;

  const cost = `<h2>Cost</h2><table id="cost"><tbody>
<tr><th>model calls</th><td>${c.modelCalls}</td><th>tool calls</th><td>${c.toolCalls}</td></tr>
<tr><th>input tokens</th><td>${c.inputTokens}</td><th>output tokens</th><td>${c.outputTokens}</td></tr>
<tr><th>cache read tokens</th><td>${c.cacheReadTokens}</td><th>cache write tokens</th><td>${c.cacheWriteTokens}</td></tr>
<tr><th>model dollars</th><td>$${c.costUsd.toFixed(4)}</td><th>AWS estimate</th><td>$${totals.aws.totalUsd.toFixed(6)}
<span class="muted">(${totals.aws.stateTransitions} state transitions, ${totals.aws.lambdaGbSeconds.toFixed(3)} Lambda GB-s; prices of ${esc(totals.aws.priceDate)})</span></td></tr>
</tbody></table>`;

  const pending = input.approvals.filter((a) => a.approval.status === "pending");
  const approvals = input.approvals.length
    ? `<h2>Approvals</h2><ul>${input.approvals
        .map(({ approval: a, changes }) => {
          const act = a.status === "pending" ? ` ${decisionForms(a, runHref(a.runId))}` : "";
          return `<li data-approval="${esc(a.approvalId)}"><code>${esc(a.approvalId)}</code> ${esc(a.call.name)}: ${shortText(a.reason, 140)} — ${statusCell(a.status)}${a.decidedBy ? ` by ${esc(a.decidedBy)}` : ""}${act}${changes ?? ""}</li>`;
        })
        .join("")}</ul>`
    : "";

  const timeline = input.events.length
    ? `<h2>Timeline</h2><table class="timeline" id="timeline"><tbody>${(() => {
        const start = Date.parse(input.events[0]?.at ?? "");
        return input.events
          .map(
            (e) =>
              `<tr data-type="${esc(e.type)}"><td>+${((Date.parse(e.at) - start) / 1000).toFixed(3)}s</td><td>${esc(describeEvent(e))}</td></tr>`,
          )
          .join("");
      })()}</tbody></table>`
    : `<h2>Timeline</h2><p class="muted">no trace recorded for this run</p>`;

  const byId = new Map(input.toolCalls.map((t) => [t.toolUseId, t]));
  const turns = input.turns
    .map((t) => {
      const u = t.response.usage;
      const text = textOf(t);
      const uses = toolUsesOf(t)
        .map((use) => {
          const call = byId.get(use.id);
          const d = t.dispositions.find((x) => x.toolUseId === use.id);
          const result = call
            ? (call.content ??
              (call.resultKey ? (input.results?.get(call.resultKey) ?? `(stored in S3 at ${call.resultKey})`) : ""))
            : d?.kind === "rejected"
              ? d.error
              : d?.kind === "approval"
                ? `waiting for / decided by approval ${d.approvalId}`
                : "(not run yet)";
          return `<div class="tool" data-tool="${esc(use.name)}"><h4>${esc(use.name)} <span class="muted">${esc(use.id)}${call ? ` · ${call.durationMs} ms` : ""}${d ? ` · guard: ${esc(d.kind)}` : ""}</span>${call?.isError || d?.kind === "rejected" ? ' <span class="err">error</span>' : ""}</h4>
<div>input</div><pre>${esc(pretty(use.input))}</pre><div>result</div><pre>${esc(pretty(result))}</pre></div>`;
        })
        .join("");
      return `<section class="turn" data-turn="${t.turn}"><h3>Turn ${t.turn} <span class="muted">${esc(t.response.model)} · ${esc(t.response.stop_reason)} ·
${u.input_tokens} in / ${u.output_tokens} out / ${u.cache_read_input_tokens ?? 0} cache read / ${u.cache_creation_input_tokens ?? 0} cache write · $${t.costUsd.toFixed(4)}${t.response.usageEstimated ? " (usage estimated)" : ""}</span></h3>
${text ? `<pre class="text">${esc(text)}</pre>` : ""}${uses}</section>`;
    })
    .join("\n");

  const order = `<h2>Purchase order</h2><div class="side">${renderPo(input.po)}${renderDocument(
    fileOf(run),
    input.document?.text,
    input.document?.note,
  )}</div>`;
  const waterfall = `<h2>Where the time went</h2>${renderWaterfall(input.events, live)}`;
  const body = `${header}${pending.length ? `<p><strong>Waiting for a human:</strong> ${pending.length} approval(s) below the order.</p>` : ""}
${order}${approvals}${waterfall}${cost}${timeline}<h2>Model turns and tool calls</h2>${turns || '<p class="muted">no model turn yet</p>'}
<p class="muted"><a href="${runHref(run.runId)}/trace.txt">timeline as text</a> (same as <code>npx po-agent trace ${esc(run.runId)}</code>)</p>`;
  return layout(
    `Run ${run.runId}`,
    body,
    live ? { refreshSeconds: 2, inboxUrl: input.inboxUrl } : { inboxUrl: input.inboxUrl },
  );
}

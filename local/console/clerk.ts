/**
 * What an AP clerk reads on the console: the purchase order as po-agent understood it next to the
 * document it came from, long texts folded, amounts in the order's currency, and where a run's
 * time went as a picture. Pure rendering: every value goes through `esc`.
 */
import { escapeHtml as esc } from "../../lambdas/shared/approval/render.js";
import type { ToolCallRecord } from "../../lambdas/shared/ledger/records.js";
import { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { formatMinor } from "../../lambdas/shared/po/money.js";
import type { TraceEvent } from "../trace.js";

/** Long text folded to its start, the whole of it one click away. */
export function shortText(text: string, max = 140): string {
  const t = text.trim();
  if (t.length <= max) return esc(t);
  const cut = t.slice(0, max).replace(/\s+\S*$/, "");
  return `<details class="more"><summary>${esc(cut)}…</summary>${esc(t)}</details>`;
}

/** An amount in the order's currency; a currency Intl does not know is shown by its code. */
export function money(minor: number, currency: string): string {
  try {
    return formatMinor(minor, currency);
  } catch {
    return `${currency} ${(minor / 100).toFixed(2)}`;
  }
}

/** The normalized PO the run's extract call returned (the last one that parsed), if any. */
export function poOfRun(
  toolCalls: readonly ToolCallRecord[],
  results?: ReadonlyMap<string, string>,
): NormalizedPo | undefined {
  let found: NormalizedPo | undefined;
  for (const c of toolCalls) {
    if (c.name !== "extract" || c.isError) continue;
    const text = c.content ?? (c.resultKey ? results?.get(c.resultKey) : undefined);
    if (!text) continue;
    try {
      const value = JSON.parse(text) as { po?: unknown };
      const parsed = NormalizedPo.safeParse(value.po ?? value);
      if (parsed.success) found = parsed.data;
    } catch {
      // Not JSON: an error text or a note; nothing to show.
    }
  }
  return found;
}

/** The PO as a clerk checks it: header, lines, adjustments, tax and total, in its currency. */
export function renderPo(po: NormalizedPo | undefined): string {
  if (!po) return '<p class="muted" id="po">no purchase order extracted yet</p>';
  const m = (minor: number) => money(minor, po.currency);
  const lines = po.lines
    .map(
      (l) =>
        `<tr data-line="${esc(l.id)}"><td>${esc(l.id)}</td><td>${shortText(l.description, 60)}</td><td class="num">${esc(l.quantity)} ${esc(l.unit)}</td><td class="num">${m(l.unitPriceMinor)}</td><td class="num">${m(l.amountMinor)}</td></tr>`,
    )
    .join("");
  const adjust = [
    ...(po.charges ?? []).map((c) => ({ label: `charge: ${c.reason}`, minor: c.amountMinor })),
    ...(po.allowances ?? []).map((a) => ({ label: `allowance: ${a.reason}`, minor: -a.amountMinor })),
    ...(po.tax ? [{ label: `tax${po.tax.rate ? ` ${po.tax.rate}%` : ""}`, minor: po.tax.amountMinor }] : []),
  ]
    .map((a) => `<tr><td colspan="4">${esc(a.label)}</td><td class="num">${m(a.minor)}</td></tr>`)
    .join("");
  return `<div id="po"><table class="facts"><tbody>
<tr><th>PO</th><td data-po-number>${esc(po.poNumber)}</td><th>date</th><td>${esc(po.orderDate)}</td></tr>
<tr><th>buyer</th><td>${esc(po.buyer.name)}</td><th>supplier</th><td data-supplier>${esc(po.supplier.name)}${po.supplier.id ? ` <span class="muted">${esc(po.supplier.id)}</span>` : ""}</td></tr>
${po.requestedDelivery ? `<tr><th>delivery</th><td colspan="3">${esc(po.requestedDelivery)}</td></tr>` : ""}
</tbody></table>
<table class="lines"><thead><tr><th>line</th><th>description</th><th class="num">quantity</th><th class="num">unit price</th><th class="num">amount</th></tr></thead>
<tbody>${lines}${adjust}</tbody>
<tfoot><tr><th colspan="4">total (${esc(po.currency)})</th><th class="num" data-total>${m(po.totalMinor)}</th></tr></tfoot></table>
${po.notes ? `<p>${shortText(po.notes)}</p>` : ""}</div>`;
}

/** The original document as text (a PDF's text layer), cut to a readable size. */
export function renderDocument(name: string, text: string | undefined, note?: string): string {
  const body =
    text === undefined
      ? `<p class="muted">${esc(note ?? "the document could not be read")}</p>`
      : `<pre class="doc">${esc(text.length > 60_000 ? `${text.slice(0, 60_000)}\n[… ${text.length - 60_000} more characters]` : text)}</pre>`;
  return `<div id="document"><h3>${esc(name)}${note && text !== undefined ? ` <span class="muted">${esc(note)}</span>` : ""}</h3>${body}</div>`;
}

type Kind = "model" | "tools" | "human" | "engine";

const KIND_OF: Record<string, Kind> = {
  Orchestrate: "model",
  WaitForApproval: "human",
  ExtractTool: "tools",
  ValidateTool: "tools",
  TransformTool: "tools",
  SaveTool: "tools",
  McpTool: "tools",
};
const COLOR: Record<Kind, string> = { model: "#0a58ca", tools: "#1f883d", human: "#b36b00", engine: "#8c959f" };
const CONTAINERS = new Set(["RunTools"]);

export interface Span {
  state: string;
  kind: Kind;
  startMs: number;
  endMs: number;
  open: boolean;
}

/** The run's states as spans on one clock (ms since the first event); containers left out. */
export function spansOf(events: readonly TraceEvent[], nowMs = Date.now()): Span[] {
  const first = events[0] ? Date.parse(events[0].at) : nowMs;
  const lastAt = events.length ? Math.max(...events.map((e) => Date.parse(e.at))) : nowMs;
  const spans: Span[] = [];
  const open = new Map<string, Span>();
  for (const e of events) {
    if (e.type !== "state_entered" && e.type !== "state_exited" && e.type !== "state_failed") continue;
    if (CONTAINERS.has(e.state)) continue;
    const key = `${e.state}#${"index" in e ? (e.index ?? "") : ""}`;
    const at = Date.parse(e.at) - first;
    if (e.type === "state_entered") {
      const span: Span = { state: e.state, kind: KIND_OF[e.state] ?? "engine", startMs: at, endMs: at, open: true };
      open.set(key, span);
      spans.push(span);
    } else {
      const span = open.get(key) ?? [...open.values()].find((s) => s.state === e.state);
      if (!span) continue;
      span.endMs = at;
      span.open = false;
      open.delete(key);
    }
  }
  const end = Math.max(lastAt, nowMs) - first;
  for (const s of spans) if (s.open) s.endMs = Math.max(s.startMs, end);
  return spans;
}

/** A waterfall of the run's time as SVG: one bar per state, coloured by model / tools / human / engine. */
export function renderWaterfall(events: readonly TraceEvent[], live: boolean): string {
  // Instant engine states (Choice: Route, PickTool…) would only add rows; states that took time stay.
  const spans = spansOf(events, live ? Date.now() : 0).filter((s) => s.kind !== "engine" || s.endMs - s.startMs >= 5);
  if (spans.length === 0) return '<p class="muted">no trace recorded for this run</p>';
  const total = Math.max(1, ...spans.map((s) => s.endMs));
  const shown = spans.slice(0, 60);
  const labelW = 130;
  const barW = 620;
  const rowH = 16;
  const height = shown.length * rowH + 24;
  const x = (ms: number) => labelW + (ms / total) * barW;
  const sums: Record<Kind, number> = { model: 0, tools: 0, human: 0, engine: 0 };
  for (const s of spans) sums[s.kind] += s.endMs - s.startMs;
  const rows = shown
    .map((s, i) => {
      const y = i * rowH + 4;
      const w = Math.max(1.5, x(s.endMs) - x(s.startMs));
      const secs = ((s.endMs - s.startMs) / 1000).toFixed(2);
      return `<g data-kind="${s.kind}"><text x="${labelW - 6}" y="${y + 11}" text-anchor="end">${esc(s.state)}</text><rect x="${x(s.startMs).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" rx="2" fill="${COLOR[s.kind]}"><title>${esc(s.state)}: ${secs} s${s.open ? " (still open)" : ""}</title></rect></g>`;
    })
    .join("");
  const axisY = shown.length * rowH + 16;
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<text x="${x(total * f).toFixed(1)}" y="${axisY}" text-anchor="middle" class="tick">${((total * f) / 1000).toFixed(1)} s</text>`,
    )
    .join("");
  const legend = (Object.keys(sums) as Kind[])
    .map(
      (k) =>
        `<span class="key" data-kind-total="${k}"><i style="background:${COLOR[k]}"></i>${k} ${(sums[k] / 1000).toFixed(2)} s</span>`,
    )
    .join(" ");
  return `<svg id="waterfall" role="img" aria-label="where the run's time went" width="${labelW + barW + 20}" height="${height}" viewBox="0 0 ${labelW + barW + 20} ${height}" xmlns="http://www.w3.org/2000/svg">${rows}${ticks}</svg>
<p class="legend">${legend}${spans.length > shown.length ? ` <span class="muted">(first ${shown.length} of ${spans.length} states)</span>` : ""}</p>`;
}

export const CLERK_STYLE = `.num{text-align:right;font-variant-numeric:tabular-nums}.nowrap{white-space:nowrap}
.changes{margin:.3rem 0 .6rem}table.diff{font-size:.85rem}table.diff td.from{background:#fff0f0;text-decoration:line-through;text-decoration-color:#c0392b80}table.diff td.to{background:#eefbf0;font-weight:600}
tr.changes-row>td{border-top:none;padding-top:0}ol.versions{margin:.3rem 0;font-size:.85rem;color:#444}
table.list{font-size:.88rem}table.list td.reason{min-width:12rem;max-width:19rem}table.list td.wide{min-width:14rem}table.list td,table.list th{padding:.3rem .45rem}
table.list td.doc-name{max-width:15rem}
.side{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:1.2rem;align-items:start}
pre.doc{max-height:28rem;font-size:.8rem}table.lines{width:100%}table.lines tfoot th{border-top:2px solid #1f2328}
details.more{display:inline}details.more summary{cursor:pointer;color:#1f2328}details.more[open] summary{color:#666}
#waterfall text{font:11px system-ui,sans-serif;fill:#1f2328}#waterfall .tick{fill:#666}
.legend .key{margin-right:.8rem}.legend i{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
form.filters{display:flex;gap:.5rem;align-items:end;margin:.5rem 0}form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:#666}
form.filters select,form.filters input{font:inherit;padding:.15rem .3rem}`;

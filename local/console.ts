import { escapeHtml } from "../lambdas/shared/approval/render.js";
import type { ApprovalRecord, RunRecord } from "../lambdas/shared/ledger/records.js";

/** The local console's front page: runs with their state and pending approvals. Server-rendered, no script. */
export function renderConsole(input: { runs: RunRecord[]; approvals: ApprovalRecord[]; inboxUrl: string }): string {
  const rows = input.runs
    .slice()
    .reverse()
    .map(
      (
        r,
      ) => `<tr class="${escapeHtml(r.status)}"><td><code>${escapeHtml(r.runId)}</code></td><td>${escapeHtml(r.customer)}</td>
<td>${escapeHtml(r.document.key.split("/").pop() ?? "")}</td><td>${escapeHtml(r.poNumber ?? "")}</td>
<td><strong>${escapeHtml(r.status.replace("_", " "))}</strong></td><td>${escapeHtml(r.reason ?? "")}</td>
<td>${r.counters.modelCalls}</td><td>${r.counters.toolCalls}</td><td>$${r.counters.costUsd.toFixed(4)}</td></tr>`,
    )
    .join("\n");
  const approvals = input.approvals
    .map(
      (
        a,
      ) => `<li><code>${escapeHtml(a.approvalId)}</code> PO ${escapeHtml(a.summary.poNumber)} from ${escapeHtml(a.summary.supplierName)},
${escapeHtml(a.summary.amount)}: ${escapeHtml(a.reason)} (rule ${escapeHtml(a.rule)}; approver ${escapeHtml(a.approvers[0] ?? "")}).
Decide with <code>npx po-agent approve ${escapeHtml(a.approvalId)}</code> or the emailed link.</li>`,
    )
    .join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>po-agent local console</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.saved strong{color:#176b2c}.failed strong,.rejected strong{color:#a11}.awaiting_approval strong{color:#b36b00}</style></head>
<body><h1>po-agent local console</h1>
<p>Emulated inbox (approval emails): <a href="${escapeHtml(input.inboxUrl)}">${escapeHtml(input.inboxUrl)}</a></p>
<h2>Pending approvals (${input.approvals.length})</h2><ul>${approvals || "<li>none</li>"}</ul>
<h2>Runs (${input.runs.length})</h2>
<table><thead><tr><th>run</th><th>customer</th><th>document</th><th>PO</th><th>state</th><th>reason</th><th>model calls</th><th>tool calls</th><th>cost</th></tr></thead>
<tbody>${rows}</tbody></table></body></html>`;
}

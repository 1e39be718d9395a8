/**
 * Approval email and pages. Pure functions: every interpolated value is HTML-escaped (supplier
 * names and reasons come from documents anyone can send us), and URLs must be http(s) or a
 * same-site path so a crafted value can never become a `javascript:` link.
 */

export interface ApprovalEmailInput {
  customerName: string;
  poNumber: string;
  supplierName: string;
  /** Already formatted with its currency, e.g. "EUR 12,500.00". */
  amount: string;
  /** Why the agent is asking, in plain words. */
  reason: string;
  /** The customer rule that requires approval. */
  rule: string;
  approveUrl: string;
  rejectUrl: string;
  approverName: string;
  expiresAt: Date;
  /** What the model changed against the document (amendments, drafts): shown before anything is decided. */
  changes?: readonly string[] /** The policy revision the request was made under (from the approval record), shown for the audit trail. */;
  policyRevision?: string;
}

export interface ConfirmPageInput {
  action: "approve" | "reject";
  poNumber: string;
  supplierName: string;
  amount: string;
  reason: string;
  rule: string;
  /** Where the form POSTs: the same approval link. */
  postUrl: string;
  approverName: string;
  /** What the model changed against the document, when it did. */
  changes?: readonly string[] /** The policy revision the request was made under, when a policy decided it. */;
  policyRevision?: string;
}

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for both element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] ?? ch);
}

/** Allows absolute http(s) URLs and same-site paths only; anything else is a bug upstream. */
function safeUrl(url: string): string {
  if (/^https?:\/\/[^\s]+$/i.test(url) || /^\/(?!\/)[^\s]*$/.test(url)) return escapeHtml(url);
  throw new Error(`refusing to render a link that is not http(s) or a same-site path: ${JSON.stringify(url)}`);
}

/** One line, no control characters: subjects go into a mail header. */
function oneLine(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point.
  return value.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

/** "PO 4500012345", but "PO-2026-0042" stays as it is rather than "PO PO-2026-0042". */
function poLabel(poNumber: string): string {
  return /^po(?![a-z])/i.test(poNumber) ? poNumber : `PO ${poNumber}`;
}

function formatUtc(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

const STYLE = `
  body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; padding: 24px; }
  .card { max-width: 560px; margin: 0 auto; background: #ffffff; border: 1px solid #d0d7de; border-radius: 8px; padding: 24px; }
  h1 { font-size: 20px; margin: 0 0 16px; }
  table.summary { border-collapse: collapse; width: 100%; margin: 16px 0; }
  table.summary th { text-align: left; color: #57606a; font-weight: normal; padding: 6px 12px 6px 0; vertical-align: top; width: 35%; }
  table.summary td { padding: 6px 0; }
  .button { display: inline-block; padding: 10px 20px; border-radius: 6px; color: #ffffff; text-decoration: none; font-weight: 600; border: 0; font-size: 15px; cursor: pointer; }
  .approve { background: #1f883d; }
  .reject { background: #cf222e; }
  textarea { width: 100%; min-height: 80px; box-sizing: border-box; margin: 8px 0 16px; font: inherit; }
  .muted { color: #57606a; font-size: 13px; }
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<div class="card">
${body}
</div>
</body>
</html>
`;
}

function summaryTable(rows: readonly (readonly [string, string])[]): string {
  const cells = rows.map(([label, value]) => `<tr><th>${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`);
  return `<table class="summary" role="presentation">\n${cells.join("\n")}\n</table>`;
}

/** The email sent to one approver: what, why, which rule, and two signed links. */
export function renderApprovalEmail(input: ApprovalEmailInput): RenderedEmail {
  const subject = oneLine(
    `Approval needed: ${poLabel(input.poNumber)} from ${input.supplierName} (${input.amount}) for ${input.customerName}`,
  );
  const expires = formatUtc(input.expiresAt);
  const rows = [
    ["Purchase order", input.poNumber],
    ["Supplier", input.supplierName],
    ["Amount", input.amount],
    ["Why approval is needed", input.reason],
    ["Rule", input.rule],
    ...(input.changes?.length ? [["Changes against the document", input.changes.join("; ")] as const] : []),
    ...(input.policyRevision ? [["Policy revision", input.policyRevision] as const] : []),
  ] as const;

  const html = page(
    subject,
    `<h1>Approval needed for ${escapeHtml(poLabel(input.poNumber))}</h1>
<p>Hello ${escapeHtml(input.approverName)},</p>
<p>The purchase-order agent for ${escapeHtml(input.customerName)} needs your decision on this order.</p>
${summaryTable(rows)}
<p>
<a class="button approve" href="${safeUrl(input.approveUrl)}" style="background:#1f883d;color:#ffffff;">Approve</a>
&nbsp;
<a class="button reject" href="${safeUrl(input.rejectUrl)}" style="background:#cf222e;color:#ffffff;">Reject</a>
</p>
<p class="muted">Each link opens a confirmation page; nothing is decided until you confirm there.
The links are for you only, work once, and expire on ${escapeHtml(expires)}.</p>`,
  );

  const text = [
    `Hello ${input.approverName},`,
    "",
    `The purchase-order agent for ${input.customerName} needs your decision on this order.`,
    "",
    ...rows.map(([label, value]) => `${label}: ${value}`),
    "",
    `Approve: ${input.approveUrl}`,
    `Reject:  ${input.rejectUrl}`,
    "",
    "Each link opens a confirmation page; nothing is decided until you confirm there.",
    `The links are for you only, work once, and expire on ${expires}.`,
    "",
  ].join("\n");

  return { subject, html, text };
}

/** What a GET on an approval link shows: the summary and a single-button POST form. */
export function renderConfirmPage(input: ConfirmPageInput): string {
  const approve = input.action === "approve";
  const verb = approve ? "Approve" : "Reject";
  const rows = [
    ["Purchase order", input.poNumber],
    ["Supplier", input.supplierName],
    ["Amount", input.amount],
    ["Why approval is needed", input.reason],
    ["Rule", input.rule],
    ...(input.changes?.length ? [["Changes against the document", input.changes.join("; ")] as const] : []),
    ...(input.policyRevision ? [["Policy revision", input.policyRevision] as const] : []),
  ] as const;
  const reasonField = approve
    ? ""
    : `<label for="reason">Reason for rejecting (sent back to the agent and kept in the audit log)</label>
<textarea id="reason" name="reason" maxlength="2000"></textarea>
`;
  return page(
    `${verb} ${poLabel(input.poNumber)}`,
    `<h1>${verb} purchase order ${escapeHtml(input.poNumber)}?</h1>
<p>This link was sent to ${escapeHtml(input.approverName)}.</p>
${summaryTable(rows)}
<form method="post" action="${safeUrl(input.postUrl)}">
<input type="hidden" name="action" value="${input.action}">
${reasonField}<button type="submit" class="button ${input.action}">${verb} ${escapeHtml(poLabel(input.poNumber))}</button>
</form>
<p class="muted">Nothing has been decided yet. Your decision is recorded only when you press the button.</p>`,
  );
}

/** The page after a decision, or for an invalid, expired or used link. */
export function renderResultPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}

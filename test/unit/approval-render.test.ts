import { describe, expect, it } from "vitest";
import {
  type ApprovalEmailInput,
  type ConfirmPageInput,
  escapeHtml,
  renderApprovalEmail,
  renderConfirmPage,
  renderResultPage,
} from "../../lambdas/shared/approval/render.js";

const hostileSupplier = `<script>alert("x")</script> & Sons`;

const emailInput: ApprovalEmailInput = {
  customerName: "Acme GmbH",
  poNumber: "PO-2026-0042",
  supplierName: hostileSupplier,
  amount: "EUR 12,500.00",
  reason: "Amount is over the 10,000 EUR auto-approval limit",
  rule: "POs over 10,000 EUR need CFO approval",
  approveUrl: "https://approve.example.com/approvals/tok.approve",
  rejectUrl: "https://approve.example.com/approvals/tok.reject",
  approverName: "Dana <CFO>",
  expiresAt: new Date("2026-12-02T10:00:00Z"),
};

const confirmInput: ConfirmPageInput = {
  action: "approve",
  poNumber: "PO-2026-0042",
  supplierName: hostileSupplier,
  amount: "EUR 12,500.00",
  reason: "Amount is over the limit",
  rule: "POs over 10,000 EUR need CFO approval",
  postUrl: "/approvals/tok.approve",
  approverName: "Dana",
};

describe("escapeHtml", () => {
  it("escapes the five HTML-significant characters", () => {
    // Assess
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
});

describe("renderApprovalEmail", () => {
  it("escapes a hostile supplier name everywhere in the HTML", () => {
    // Act
    const { html } = renderApprovalEmail(emailInput);

    // Assess
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Sons");
    expect(html).toContain("Dana &lt;CFO&gt;");
  });

  it("shows the PO, supplier, amount, reason, rule and expiry, with approve and reject links", () => {
    // Act
    const { subject, html, text } = renderApprovalEmail(emailInput);

    // Assess
    expect(subject).toContain("PO-2026-0042");
    expect(subject).toContain("EUR 12,500.00");
    for (const part of ["PO-2026-0042", "EUR 12,500.00", emailInput.reason, emailInput.rule, "2026-12-02 10:00 UTC"]) {
      expect(html).toContain(part);
      expect(text).toContain(part);
    }
    expect(html).toMatch(
      /<a class="button approve" href="https:\/\/approve\.example\.com\/approvals\/tok\.approve"[^>]*>Approve<\/a>/,
    );
    expect(html).toMatch(
      /<a class="button reject" href="https:\/\/approve\.example\.com\/approvals\/tok\.reject"[^>]*>Reject<\/a>/,
    );
    expect(text).toContain(`Approve: ${emailInput.approveUrl}`);
    expect(text).toContain(`Reject:  ${emailInput.rejectUrl}`);
    expect(text).toContain(hostileSupplier);
  });

  it("prefixes bare PO numbers with PO but does not double an existing prefix", () => {
    // Act
    const bare = renderApprovalEmail({ ...emailInput, poNumber: "4500012345" });
    const prefixed = renderApprovalEmail(emailInput);

    // Assess
    expect(bare.subject).toMatch(/^Approval needed: PO 4500012345 from /);
    expect(prefixed.subject).toMatch(/^Approval needed: PO-2026-0042 from /);
  });

  it("keeps the subject on one line", () => {
    // Act
    const { subject } = renderApprovalEmail({ ...emailInput, supplierName: "Evil\r\nBcc: all@example.com" });

    // Assess
    expect(subject).not.toMatch(/[\r\n]/);
  });

  it("refuses a non-http link instead of rendering it", () => {
    // Act + Assess
    expect(() => renderApprovalEmail({ ...emailInput, approveUrl: "javascript:alert(1)" })).toThrow(/not http/);
  });

  it("escapes quotes in URLs so they cannot break out of the attribute", () => {
    // Act
    const { html } = renderApprovalEmail({ ...emailInput, rejectUrl: `https://x.test/a"onmouseover="alert(1)` });

    // Assess
    expect(html).toContain(`href="https://x.test/a&quot;onmouseover=&quot;alert(1)"`);
    expect(html).not.toContain(`"onmouseover="`);
  });
});

describe("renderConfirmPage", () => {
  it("renders a summary and a single-button POST form to the link", () => {
    // Act
    const html = renderConfirmPage(confirmInput);

    // Assess
    expect(html).toMatch(/<form method="post" action="\/approvals\/tok\.approve">/);
    expect(html.match(/<button/g)).toHaveLength(1);
    expect(html).toContain('<input type="hidden" name="action" value="approve">');
    expect(html).not.toContain("<textarea");
    expect(html).toContain("PO-2026-0042");
    expect(html).toContain("EUR 12,500.00");
    expect(html).toContain('<meta name="referrer" content="no-referrer">');
  });

  it("asks for a reason when rejecting", () => {
    // Act
    const html = renderConfirmPage({ ...confirmInput, action: "reject", postUrl: "/approvals/tok.reject" });

    // Assess
    expect(html).toMatch(/<textarea id="reason" name="reason"/);
    expect(html).toContain('value="reject"');
    expect(html).toMatch(/<button[^>]*>Reject PO-2026-0042<\/button>/);
  });

  it("escapes a hostile supplier name", () => {
    // Act
    const html = renderConfirmPage(confirmInput);

    // Assess
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;");
  });
});

describe("renderResultPage", () => {
  it("shows the title and message, escaped", () => {
    // Act
    const html = renderResultPage("Approved <ok>", "PO-1 was approved & saved.");

    // Assess
    expect(html).toContain("<h1>Approved &lt;ok&gt;</h1>");
    expect(html).toContain("<p>PO-1 was approved &amp; saved.</p>");
    expect(html).toContain("<title>Approved &lt;ok&gt;</title>");
  });
});

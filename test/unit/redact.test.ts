import { describe, expect, it } from "vitest";
import { redact, redactText } from "../../lambdas/shared/redact.js";

describe("redactText", () => {
  it("removes e-mail addresses, IBANs, account and card numbers and API keys", () => {
    // Prepare
    const line =
      "mail priya.raman@acme-mfg.example, pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432, " +
      "account 000123456789, card 4111-1111-1111-1111, key sk-ant-api03-abcDEF123456, Bearer eyJhbGciOi.x.y";
    // Act
    const out = redactText(line);
    // Assess
    expect(out).not.toMatch(/priya|acme-mfg|3704|WEST1234|123456789|4111|abcDEF|eyJhbGci/);
    expect(out).toContain("[email]");
    expect(out).toContain("[iban]");
    expect(out).toContain("[account]");
    expect(out).toContain("[secret]");
  });

  it("keeps PO numbers, amounts, dates and run ids readable", () => {
    const line = "PO 48291 total $12,480.50 on 2026-03-05 run acme-3f9a2c01d4e5b6a7c8d9";
    expect(redactText(line)).toBe(line);
  });
});

describe("redact", () => {
  it("replaces secret keys whole, shrinks content to its size and scrubs other strings", () => {
    // Prepare
    const value = {
      runId: "acme-1",
      poNumber: "48291",
      inputTokens: 1200,
      taskToken: "AAAA-token-value",
      approverEmail: "bob@example.com",
      bankDetails: { iban: "DE89370400440532013000" },
      content: "Ship to: 1 Main St, pay to IBAN DE89...",
      note: "ask alice@example.com",
      nested: [{ apiKey: "sk-ant-xyz12345678" }],
    };
    // Act
    const out = redact(value) as Record<string, unknown>;
    // Assess
    expect(out).toEqual({
      runId: "acme-1",
      poNumber: "48291",
      inputTokens: 1200,
      taskToken: "[redacted]",
      approverEmail: "[redacted]",
      bankDetails: "[redacted]",
      content: `[${value.content.length} chars]`,
      note: "ask [email]",
      nested: [{ apiKey: "[redacted]" }],
    });
  });

  it("survives cycles and errors", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = a;
    const err = new Error("failed for carol@example.com");
    expect(redact(a)).toEqual({ name: "a", self: "[circular]" });
    expect(redact({ error: err })).toMatchObject({ error: { name: "Error", message: "failed for [email]" } });
  });
});

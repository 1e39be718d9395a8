import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../../lambdas/shared/ledger/records.js";
import { type AuditSource, auditCommand } from "../../local/audit-command.js";

const ENTRIES: AuditRecord[] = [
  {
    schemaVersion: 1,
    runId: "r1",
    at: "2026-11-25T10:00:02.000Z",
    actor: "alice.moreno@prairiestate.example",
    action: "approval.approved",
    detail: { approvalId: "apr_1", comment: "", policyRevision: "cedar-0123456789abcdef" },
  },
  {
    schemaVersion: 1,
    runId: "r1",
    at: "2026-11-25T10:00:01.000Z",
    actor: "guard",
    action: "guard.approval",
    detail: { tool: "save", approvalId: "apr_1" },
  },
];

function run(args: string[], entries: AuditRecord[] = ENTRIES) {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const source: AuditSource = {
    async getAudit(runId) {
      asked.push(runId);
      return entries.filter((e) => e.runId === runId);
    },
  };
  return auditCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, (fn) => fn(source)).then((code) => ({
    code,
    out,
    err,
    asked,
  }));
}

describe("po-agent audit <runId>", () => {
  it("prints who did what, when and why, oldest first", async () => {
    // Act
    const { code, out } = await run(["r1"]);

    // Assess
    expect(code).toBe(0);
    expect(out[0]).toBe("audit log of r1: 2 entries");
    expect(out[2]).toMatch(/^2026-11-25T10:00:01.000Z\s+guard\s+guard.approval\s+tool=save approvalId=apr_1$/);
    expect(out[3]).toContain("alice.moreno@prairiestate.example");
    expect(out[3]).toContain("policyRevision=cedar-0123456789abcdef");
  });

  it("prints JSON with --json and fails for a run without entries", async () => {
    // Act
    const json = await run(["r1", "--json"]);
    const missing = await run(["nope"]);
    const usage = await run([]);

    // Assess
    expect(JSON.parse(json.out[0] ?? "[]")).toHaveLength(2);
    expect(missing).toMatchObject({ code: 1, asked: ["nope"] });
    expect(missing.err[0]).toContain("no audit entries for run nope");
    expect(usage.code).toBe(2);
    expect(usage.asked).toEqual([]);
  });
});

import { readFileSync } from "node:fs";
import type { SFNClient } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { decide } from "../../lambdas/shared/agent/approvals.js";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { finalize } from "../../lambdas/shared/agent/finalize.js";
import { guardCall } from "../../lambdas/shared/agent/guard.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { saveOrderOnce } from "../../lambdas/shared/agent/save.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { approvalIdFor } from "../../lambdas/shared/approval/binding.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { foldPoNumber } from "../../lambdas/shared/ledger/ledger.js";
import { MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { parseDocument } from "../../lambdas/shared/po/parse-text.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { artifactOf, refOf, stateWith } from "../support/artifacts.js";
import { memoryS3 } from "./memory-s3.js";

/** A submitter cannot approve its own PO; a PO number in another Unicode form is the same PO. */
const SUBMITTER = "mcp:arn:aws:iam::1:role/alice";
const OTHER = "mcp:arn:aws:iam::1:role/dana";
const base = loadCustomerFile("customers/customer37.yaml");
const customer: CustomerConfig = {
  ...base,
  approvers: base.approvers.map((a) =>
    a.id === "alice" ? { ...a, principals: [SUBMITTER] } : a.id === "dana" ? { ...a, principals: [OTHER] } : a,
  ) as CustomerConfig["approvers"],
};
const noSfn = { send: async () => ({}) } as unknown as SFNClient;

/** A run waiting on an over-limit save ($15,400 on a Wednesday: alice, then dana), its document submitted by `by`. */
async function parked(ledger: MemoryLedger, by: string) {
  const runId = "customer37-segregation-1";
  const po = parseDocument(
    readFileSync("samples/customer37/03-over-limit-wednesday.json"),
    "03-over-limit-wednesday.json",
  ).po;
  const { schemaVersion: _v, createdAt: _c, ...version } = artifactOf(runId, po);
  const { artifact } = await ledger.putArtifact(version);
  const verdict = guardCall(customer, "save", refOf(artifact), stateWith(artifact));
  if (verdict.kind !== "approval") throw new Error("expected an approval");
  await ledger.recordSubmitter(runId, by);
  await ledger.openRun({
    runId,
    customer: customer.name,
    document: { bucket: "b", key: "k", sha256: "s", size: 1 },
    executionId: runId,
    status: "awaiting_approval",
    turn: 1,
    counters: { ...ZERO_COUNTERS },
  });
  const revision = verdict.policyRevision;
  const approvalId = approvalIdFor(runId, "toolu_1", "save", verdict.argsHash, revision);
  await ledger.putApproval({
    approvalId,
    runId,
    customer: customer.name,
    turn: 1,
    call: { toolUseId: "toolu_1", name: "save", input: refOf(artifact) },
    callHash: verdict.argsHash,
    policyRevision: revision,
    reason: verdict.request.reason,
    rule: verdict.request.rule,
    approvers: verdict.request.approvers,
    summary: verdict.request.summary,
    ...(verdict.request.artifact ? { artifact: verdict.request.artifact } : {}),
    status: "pending",
    emailedTo: [],
    usedNonces: [],
  });
  return { runId, approvalId, approvers: verdict.request.approvers };
}

describe("a submitter cannot approve its own PO", () => {
  it("refuses the MCP caller that submitted the document, audited; another approver's principal approves", async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const { runId, approvalId, approvers } = await parked(ledger, SUBMITTER);
    expect(approvers).toContain("alice");
    const deps = { ledger, sfn: noSfn, customer };

    // Act: the submitter tries, as itself and naming its approver; then dana
    const self = await decide(deps, { approvalId, decision: "approve", decider: { via: "mcp", principal: SUBMITTER } });
    const named = await decide(deps, {
      approvalId,
      decision: "approve",
      decider: { via: "mcp", principal: SUBMITTER, as: "alice" },
    });
    const stillPending = (await ledger.getApproval(approvalId))?.status;
    const other = await decide(deps, { approvalId, decision: "approve", decider: { via: "mcp", principal: OTHER } });

    // Assess
    for (const r of [self, named]) {
      expect(r.decided).toBe(false);
      expect(r.refused).toMatch(/submitted this document; a submitter cannot approve/);
    }
    expect(stillPending).toBe("pending");
    expect(other.decided).toBe(true);
    expect((await ledger.getApproval(approvalId))?.status).toBe("approved");
    const refusals = (await ledger.getAudit(runId)).filter((a) => a.action === "approval.mcp_refused");
    expect(refusals).toHaveLength(2);
    expect(refusals[0]?.actor).toBe(SUBMITTER);
  });

  it("refuses a signed link of an approver whose principal submitted the document", async () => {
    const ledger = new MemoryLedger();
    const { approvalId } = await parked(ledger, SUBMITTER);

    const r = await decide(
      { ledger, sfn: noSfn, customer },
      { approvalId, decision: "approve", decider: { via: "link", approverId: "alice", nonce: "n-1" } },
    );

    expect(r.decided).toBe(false);
    expect(r.refused).toMatch(/a submitter cannot approve/);
    expect((await ledger.getApproval(approvalId))?.status).toBe("pending");
  });
});

describe("PO numbers are folded (NFKC, trim, case) before the duplicate check", () => {
  it("folds full-width, compatibility and spacing forms to one number", () => {
    expect(foldPoNumber("ＡＣＭ－ＰＯ－２２８１７")).toBe("ACM-PO-22817");
    expect(foldPoNumber("  acm-po-22817\u00a0")).toBe("ACM-PO-22817");
    expect(foldPoNumber("ACM\u2011PO\u201122817")).not.toBe("ACM-PO-22817"); // a non-breaking hyphen is not NFKC-equal
  });

  it("an order saved as ACM-PO-22817 blocks the full-width form: the save is refused, nothing written", async () => {
    const ledger = new MemoryLedger();
    const s3 = memoryS3();
    const deps = { ledger, documents: new DocumentStore(s3.client), bucket: "b", customer };
    await saveOrderOnce(deps, { runId: "run-a" }, { poNumber: "ACM-PO-22817", po: {}, idempotencyKey: "run-a" });

    const second = saveOrderOnce(
      deps,
      { runId: "run-b" },
      { poNumber: " ＡＣＭ－ＰＯ－２２８１７ ", po: {}, idempotencyKey: "run-b" },
    );

    await expect(second).rejects.toThrow(/already saved by run run-a/);
    expect(s3.puts).toHaveLength(1);
  });

  it("a document that restates a saved PO in full-width form is flagged a duplicate and not saved (reference model)", async () => {
    // Prepare: acme 01 saved; then the same PO with its number in full-width characters (other bytes, another run)
    const acme = loadCustomerFile("customers/acme.yaml");
    const ledger = new MemoryLedger();
    const s3 = memoryS3();
    const deps: AgentDeps = {
      ledger,
      documents: new DocumentStore(s3.client),
      customer: acme,
      bucket: "acme-intake",
      model: { client: new ReferenceModelClient(), modelId: "reference" },
      tools: ALL_TOOLS,
    };
    const original = JSON.parse(readFileSync("samples/acme/01-packaging-saved.json", "utf8")) as Record<
      string,
      unknown
    >;
    const wide = String(original.poNumber).replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
    const runOf = async (name: string, body: unknown) => {
      s3.objects.set(`acme-intake/incoming/${name}`, new TextEncoder().encode(JSON.stringify(body)));
      const { runId } = await ingest(deps, { bucket: "acme-intake", key: `incoming/${name}`, executionId: name });
      let step = await orchestrate(deps, { runId });
      for (let i = 0; i < 20 && step.type === "tools"; i++) {
        for (const call of step.calls) await runTool(deps, { runId, call });
        step = await orchestrate(deps, { runId });
      }
      return (await finalize(deps, { runId, step })).outcome;
    };

    // Act
    const first = await runOf("a.json", original);
    const second = await runOf("b.json", { ...original, poNumber: wide });

    // Assess
    expect(wide).not.toBe(original.poNumber);
    expect(first).toBe("saved");
    expect(second).not.toBe("saved");
    expect(s3.puts.filter((p) => p.includes("/processed/"))).toHaveLength(1);
  });
});

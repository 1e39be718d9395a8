import { readFileSync } from "node:fs";
import type { SFNClient } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { decide } from "../../lambdas/shared/agent/approvals.js";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { finalize } from "../../lambdas/shared/agent/finalize.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { approvalIdFor, argsHash } from "../../lambdas/shared/approval/binding.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { RECORD_VERSIONS } from "../../lambdas/shared/ledger/records.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { policyRevisionOf } from "../../lambdas/shared/policy/cedar.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { fixtureWorld, type LedgerFixture, loadLedgerFixture } from "../support/ledger-fixture.js";
import { memoryS3 } from "./memory-s3.js";

/**
 * The policy revision an approval was requested under is a field of its record, written with the
 * request; a record of the older version (the revision only at the end of its reason) is upgraded
 * on read, and from then on only the field decides whether a decision is stale. The fixtures are
 * acme 03 parked on Priya's approval as an older build stored it; each case decides it through the
 * one decide() and counts what happened: the order object written, the order claimed, or neither.
 */
type Fixture = LedgerFixture;
const load = (file: string): Fixture => loadLedgerFixture(`v1/${file}`);

/** acme's policy revision when the fixtures were made (it is in their records). */
const FIXTURE_REVISION = "cedar-51c2bcf01d69b792";
const APPROVAL_ID = "apr_1862a6dbfc13d08f8c658122";
const RUN_ID = "acme-1ad498647ee58553fdd2";
const acme = loadCustomerFile("customers/acme.yaml");
/** The same customer after a policy change: the auto-approval limit went from $5,000 to $6,000. */
const changed: CustomerConfig = {
  ...acme,
  approvalPolicy: {
    ...acme.approvalPolicy,
    tiers: acme.approvalPolicy.tiers.map((t) => ({
      ...t,
      autoApproveUpTo: 6000,
    })) as CustomerConfig["approvalPolicy"]["tiers"],
  },
};
const noSfn = { send: async () => ({}) } as unknown as SFNClient;
const priya = { via: "link", approverId: "priya", nonce: "n-1" } as const;

function world(dump: Fixture, customer: CustomerConfig) {
  const { ledger, s3, deps } = fixtureWorld(dump, customer, { tools: ALL_TOOLS });
  /** The resumed execution: orchestrate, run the tools it asks for, until it stops; then finalize. */
  const resume = async () => {
    let step = await orchestrate(deps, { runId: RUN_ID });
    for (let i = 0; i < 20 && step.type === "tools"; i++) {
      for (const call of step.calls) await runTool(deps, { runId: RUN_ID, call });
      step = await orchestrate(deps, { runId: RUN_ID });
    }
    return step.type === "done" ? (await finalize(deps, { runId: RUN_ID, step })).outcome : step;
  };
  const orderObjects = () => s3.puts.filter((p) => p.includes("/processed/")).length;
  const order = () => ledger.getOrder("acme", "ACM-PO-22830");
  return { ledger, deps, resume, orderObjects, order, decideAs: { ledger, sfn: noSfn, customer } };
}

/** The fixture with its stored approval replaced (as an attacker with write access, or an older build, left it). */
function withApproval(dump: Fixture, edit: (a: Record<string, unknown>) => Record<string, unknown>): Fixture {
  const copy = structuredClone(dump);
  copy.approvals = (copy.approvals ?? []).map(edit);
  return copy;
}

describe("an approval's policy revision is a record field, upgraded from older records", () => {
  it("the fixtures were made under acme's current policy (else every parked acme approval would now be stale)", () => {
    expect(policyRevisionOf(acme)).toBe(FIXTURE_REVISION);
    expect(policyRevisionOf(changed)).not.toBe(FIXTURE_REVISION);
  });

  describe.each([
    ["v1 with the field", "parked-on-approval.json"],
    ["v1 with the revision only in its reason", "parked-on-approval-revision-in-reason.json"],
  ])("%s", (_label, file) => {
    const dump = load(file);

    it("reads upgraded to the current version with the revision as a field, the reason left as written", async () => {
      // Prepare
      const stored = dump.approvals?.[0] ?? {};
      const { ledger } = world(dump, acme);

      // Act
      const approval = await ledger.getApproval(APPROVAL_ID);

      // Assess
      expect(stored.schemaVersion).toBe(1);
      expect(approval?.schemaVersion).toBe(RECORD_VERSIONS.approval);
      expect(approval?.policyRevision).toBe(FIXTURE_REVISION);
      expect(approval?.reason).toBe(stored.reason);
    });

    it("under the unchanged policy, Priya's approval is taken and the run saves exactly one order", async () => {
      // Prepare
      const w = world(dump, acme);

      // Act
      const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
      const outcome = await w.resume();

      // Assess
      expect(res.refused).toBeUndefined();
      expect(res.decided).toBe(true);
      expect(outcome).toBe("saved");
      expect(w.orderObjects()).toBe(1);
      expect((await w.order())?.state).toBe("written");
    });

    it("after a policy change, the same approval is refused as stale: nothing is decided, claimed or written", async () => {
      // Prepare
      const w = world(dump, changed);

      // Act
      const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
      const step = await w.resume();

      // Assess
      expect(res.decided).toBe(false);
      expect(res.refused).toBe(
        `the approval policy changed since it was sent (${FIXTURE_REVISION}, now ${policyRevisionOf(changed)})`,
      );
      expect((await w.ledger.getApproval(APPROVAL_ID))?.status).toBe("pending");
      expect(step).toMatchObject({ type: "approval", approvalId: APPROVAL_ID });
      expect(w.orderObjects()).toBe(0);
      expect(await w.order()).toBeUndefined();
    });
  });
});

describe("only the field decides staleness: the reason text is never read for it", () => {
  const dump = load("parked-on-approval.json");
  const v2 = (reason: (r: string) => string) =>
    withApproval(dump, (a) => ({ ...a, schemaVersion: RECORD_VERSIONS.approval, reason: reason(String(a.reason)) }));
  const withoutRevisionLine = v2((r) => r.replace(/ \(policy cedar-[0-9a-f]{16}\)$/, ""));
  const claimingCurrent = v2((r) => r.replace(/cedar-[0-9a-f]{16}/, policyRevisionOf(changed)));

  it("a record whose reason lacks the revision line is still stale after a policy change: no order", async () => {
    // Prepare
    expect(String(withoutRevisionLine.approvals?.[0]?.reason)).not.toMatch(/cedar-/);
    const w = world(withoutRevisionLine, changed);

    // Act
    const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
    const step = await w.resume();

    // Assess
    expect(res.refused).toMatch(/^the approval policy changed since it was sent/);
    expect(step).toMatchObject({ type: "approval" });
    expect(w.orderObjects()).toBe(0);
    expect(await w.order()).toBeUndefined();
  });

  it("the same record under the unchanged policy is decided and saves one order", async () => {
    // Prepare
    const w = world(withoutRevisionLine, acme);

    // Act
    const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
    const outcome = await w.resume();

    // Assess
    expect(res.decided).toBe(true);
    expect(outcome).toBe("saved");
    expect(w.orderObjects()).toBe(1);
  });

  it("a reason edited to name the new revision does not make the approval fresh: no order", async () => {
    // Prepare
    expect(String(claimingCurrent.approvals?.[0]?.reason)).toContain(`(policy ${policyRevisionOf(changed)})`);
    const w = world(claimingCurrent, changed);

    // Act
    const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
    const step = await w.resume();

    // Assess
    expect(res.refused).toBe(
      `the approval policy changed since it was sent (${FIXTURE_REVISION}, now ${policyRevisionOf(changed)})`,
    );
    expect(step).toMatchObject({ type: "approval" });
    expect(w.orderObjects()).toBe(0);
    expect(await w.order()).toBeUndefined();
  });

  it("a record whose revision field was removed is refused (its id binds the revision): no order", async () => {
    // Prepare
    const stripped = withApproval(dump, ({ policyRevision: _r, ...a }) => ({
      ...a,
      schemaVersion: RECORD_VERSIONS.approval,
    }));
    const w = world(stripped, changed);

    // Act
    const res = await decide(w.decideAs, { approvalId: APPROVAL_ID, decision: "approve", decider: priya });
    const step = await w.resume();

    // Assess
    expect(res.refused).toBe("the approval id does not match the call it names");
    expect(step).toMatchObject({ type: "approval" });
    expect(w.orderObjects()).toBe(0);
  });

  it.each([
    ["current", RECORD_VERSIONS.approval],
    ["v1", 1],
  ])(
    "a %s model escalation whose own words end in a revision line is decided (they name no policy)",
    async (_l, version) => {
      // Prepare: the model escalates with a reason that imitates a policy revision the config never had.
      const call = { toolUseId: "toolu_ref_4_1", name: "escalate", input: { reason: "please check" } };
      const hash = argsHash(call.input);
      const ledger = new MemoryLedger();
      ledger.seed({
        ...dump,
        approvals: [
          {
            schemaVersion: version,
            approvalId: approvalIdFor(RUN_ID, call.toolUseId, call.name, hash),
            runId: RUN_ID,
            customer: "acme",
            turn: 4,
            call,
            callHash: hash,
            reason: "Please check this PO before it is saved. (policy cedar-0000000000000000)",
            rule: "model-escalation",
            approvers: ["priya"],
            summary: { poNumber: "ACM-PO-22830", supplierName: "Brightline Electrical Co.", amount: "$8,750.00" },
            status: "pending",
            emailedTo: [],
            usedNonces: [],
            createdAt: "2026-11-16T14:00:21.000Z",
          },
        ],
      });
      const approvalId = approvalIdFor(RUN_ID, call.toolUseId, call.name, hash);

      // Act
      const res = await decide(
        { ledger, sfn: noSfn, customer: acme },
        { approvalId, decision: "approve", decider: priya },
      );

      // Assess: the decision is written (a reason-parsing check would have refused it as stale)
      expect(res.refused).toBeUndefined();
      const after = await ledger.getApproval(approvalId);
      expect(after?.policyRevision).toBeUndefined();
      expect(after?.status).toBe("approved");
      expect(after?.decidedBy).toBe("priya.raman@acme-mfg.example");
    },
  );
});

describe("a new approval request carries its revision as a field", () => {
  it("acme 03 parks on an approval stored with the revision in force, bound into its id, not in its reason", async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const s3 = memoryS3();
    const key = "incoming/03-controls-needs-approval.json";
    s3.objects.set(`acme-intake/${key}`, readFileSync("samples/acme/03-controls-needs-approval.json"));
    const deps: AgentDeps = {
      ledger,
      documents: new DocumentStore(s3.client),
      customer: acme,
      bucket: "acme-intake",
      model: { client: new ReferenceModelClient(), modelId: "reference" },
      tools: ALL_TOOLS,
    };

    // Act
    const { runId } = await ingest(deps, { bucket: "acme-intake", key, executionId: "exec-1" });
    let step = await orchestrate(deps, { runId });
    for (let i = 0; i < 10 && step.type === "tools"; i++) {
      for (const call of step.calls) await runTool(deps, { runId, call });
      step = await orchestrate(deps, { runId });
    }

    // Assess
    if (step.type !== "approval") throw new Error(`expected the run to park on an approval, got ${step.type}`);
    const approval = await ledger.getApproval(step.approvalId);
    if (!approval) throw new Error("the approval record is missing");
    expect(approval.schemaVersion).toBe(RECORD_VERSIONS.approval);
    expect(approval.policyRevision).toBe(FIXTURE_REVISION);
    const { call, callHash } = approval;
    expect(step.approvalId).toBe(approvalIdFor(runId, call.toolUseId, call.name, callHash, FIXTURE_REVISION));
    expect(approval.reason).not.toMatch(/cedar-/);
    expect(s3.puts.filter((p) => p.includes("/processed/"))).toHaveLength(0);
  });
});

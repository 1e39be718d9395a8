import { describe, expect, it } from "vitest";
import { approvalIdFor, argsHash } from "../../lambdas/shared/approval/binding.js";
import { checkDecision, type Decider } from "../../lambdas/shared/approval/decision.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import type { ApprovalRecord } from "../../lambdas/shared/ledger/records.js";
import { policyRevisionOf } from "../../lambdas/shared/policy/cedar.js";

/**
 * The checks of the one decide(), without a ledger: each refusal names its reason, the first
 * failing check wins, and the submitters are read only when an approval needs them.
 */
const base = loadCustomerFile("customers/acme.yaml");
const acme: CustomerConfig = {
  ...base,
  approvers: base.approvers.map((a) =>
    a.id === "priya" ? { ...a, principals: ["mcp:role/priya"] } : a,
  ) as CustomerConfig["approvers"],
};
const call = { toolUseId: "toolu_1", name: "save", input: { artifactId: "po_1", version: 1 } };
const revision = policyRevisionOf(acme);
const approval: ApprovalRecord = {
  schemaVersion: 2,
  approvalId: approvalIdFor("acme-run-1", call.toolUseId, call.name, argsHash(call.input), revision),
  runId: "acme-run-1",
  customer: "acme",
  turn: 1,
  call,
  callHash: argsHash(call.input),
  policyRevision: revision,
  reason: "over the limit",
  rule: "default",
  approvers: ["priya", "marcus"],
  summary: { poNumber: "PO-1", supplierName: "S", amount: "$8,750.00" },
  status: "pending",
  emailedTo: [],
  usedNonces: ["used"],
  createdAt: "2026-11-16T14:00:00.000Z",
};

async function check(
  decider: Decider,
  decision: unknown,
  over: Partial<ApprovalRecord> = {},
  submitters: string[] = [],
) {
  let reads = 0;
  const result = await checkDecision({
    customer: acme,
    approval: { ...approval, ...over },
    decider,
    decision,
    submitters: async () => {
      reads += 1;
      return submitters;
    },
  });
  return { result, reads };
}

const link = (approverId: string, nonce = "fresh"): Decider => ({ via: "link", approverId, nonce });

describe("checkDecision", () => {
  it("passes a fresh link of a listed approver, naming the approver by email", async () => {
    const { result, reads } = await check(link("priya"), "approve");

    expect(result).toEqual({
      ok: { status: "approved", by: "priya.raman@acme-mfg.example", approverId: "priya", via: "signed-link" },
    });
    expect(reads).toBe(1);
  });

  it.each([
    ["a decision outside the set", link("priya"), "approved", {}, /must be "approve" or "reject"/],
    ["another customer's approval", link("priya"), "approve", { customer: "customer37" }, /belongs to customer/],
    ["a link of someone not in the chain", link("dana"), "approve", {}, /not an approver of this request/],
    ["a decided approval", link("priya"), "reject", { status: "approved" as const }, /the approval is approved/],
    ["a used link", link("priya", "used"), "reject", {}, /already used/],
    ["an edited call", link("priya"), "reject", { callHash: "0".repeat(64) }, /arguments changed/],
    [
      "another revision",
      link("priya"),
      "reject",
      { policyRevision: "cedar-0000000000000000" },
      /approval id does not match/,
    ],
  ] as const)("refuses %s", async (_label, decider, decision, over, why) => {
    const { result } = await check(decider, decision, over);

    expect("refused" in result && result.refused).toMatch(why);
  });

  it("refuses an approval under a changed policy as stale, from the record's field", async () => {
    const changed = { ...acme, vendors: acme.vendors.slice(1) };
    const result = await checkDecision({
      customer: changed,
      approval,
      decider: link("priya"),
      decision: "reject",
      submitters: async () => [],
    });

    expect(result).toEqual({
      refused: `the approval policy changed since it was sent (${revision}, now ${policyRevisionOf(changed)})`,
    });
  });

  it("refuses a submitter's own approval but lets it reject, reading the submitters only to approve", async () => {
    const mcp: Decider = { via: "mcp", principal: "mcp:role/priya" };

    const approve = await check(mcp, "approve", {}, ["mcp:role/priya"]);
    const reject = await check(mcp, "reject", {}, ["mcp:role/priya"]);

    expect(approve.result).toEqual({
      refused: "mcp:role/priya submitted this document; a submitter cannot approve its own PO",
    });
    expect(approve.reads).toBe(1);
    expect(reject.result).toMatchObject({ ok: { status: "rejected", approverId: "priya", via: "mcp" } });
    expect(reject.reads).toBe(0);
  });

  it("names an operator override as such, and refuses it when the config leaves it off", async () => {
    const op: Decider = { via: "operator", operator: "jo", channel: "cli" };

    const on = await check(op, "reject");
    const off = await checkDecision({
      customer: { ...acme, operatorOverride: { enabled: false, operators: [] } },
      approval,
      decider: op,
      decision: "reject",
      submitters: async () => [],
    });

    expect(on.result).toEqual({
      ok: { status: "rejected", by: "operator override by jo (cli)", approverId: undefined, via: "operator-override" },
    });
    expect(off).toEqual({ refused: "operator override is off for acme (operatorOverride.enabled)" });
  });
});

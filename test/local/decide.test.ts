import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decide, handleApprovalRequest, type ResolvedApprovalDeps } from "../../lambdas/shared/agent/approvals.js";
import { guardCall } from "../../lambdas/shared/agent/guard.js";
import type { Decider } from "../../lambdas/shared/approval/decision.js";
import { signApprovalLink } from "../../lambdas/shared/approval/links.js";
import { approvalRecordFor } from "../../lambdas/shared/approval/request.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { KEY_HEADER } from "../../local/control.js";
import { LocalStack } from "../../local/stack.js";
import { artifactOf, refOf, stateWith } from "../support/artifacts.js";
import { realCustomer, samplePo, tempDir } from "../support/stack.js";

/**
 * One decide() for every entry point: signed link, MCP, CLI, console. Each gets the same checks of
 * decision value, identity, approver, binding, policy revision and single use; the decider's
 * identity comes from how it authenticated, never from a field it sends.
 */
const base = realCustomer("customer37");
const customer: CustomerConfig = {
  ...base,
  approvers: base.approvers.map((a) =>
    a.id === "alice" ? { ...a, principals: ["mcp:arn:aws:iam::1:role/alice"] } : a,
  ) as CustomerConfig["approvers"],
  operatorOverride: { enabled: true, operators: [] },
};
let stack: LocalStack;
let deps: ResolvedApprovalDeps;
let dataDir: string;
let seq = 0;

beforeAll(async () => {
  dataDir = tempDir("decide");
  stack = await LocalStack.start({ dataDir, customers: [customer], retryIntervalMs: 0 });
  deps = stack.deps(customer);
});
afterAll(async () => {
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A run waiting on an over-limit save ($15,400 on a Wednesday: alice, then dana). */
async function pending(): Promise<string> {
  seq += 1;
  const runId = `customer37-decide-${seq}`;
  const {
    schemaVersion: _v,
    createdAt: _c,
    ...version
  } = artifactOf(runId, samplePo("customer37", "03-over-limit-wednesday.json"));
  const { artifact } = await stack.ledger.putArtifact(version);
  const verdict = guardCall(customer, "save", refOf(artifact), stateWith(artifact));
  if (verdict.kind !== "approval") throw new Error("expected an approval");
  await stack.ledger.openRun({
    runId,
    customer: customer.name,
    document: { bucket: "b", key: "k", sha256: "s", size: 1 },
    executionId: runId,
    status: "awaiting_approval",
    turn: 1,
    counters: { ...ZERO_COUNTERS },
  });
  // Stored as the turn stores it: bound to the call and to the policy revision that asked.
  const { approval } = await stack.ledger.putApproval(
    approvalRecordFor({
      runId,
      customer: customer.name,
      turn: 1,
      call: { toolUseId: "toolu_1", name: "save", input: refOf(artifact) },
      argsHash: verdict.argsHash,
      request: verdict.request,
    }),
  );
  const { approvalId } = approval;
  return approvalId;
}

const status = async (id: string) => (await stack.ledger.getApproval(id))?.status;
const linkFor = (approvalId: string, approverId: string, action: "approve" | "reject" = "approve") =>
  signApprovalLink({
    key: deps.signingKey,
    approvalId,
    approverId,
    action,
    expiresAt: Math.floor(Date.now() / 1000) + 600,
    nonce: `n-${approvalId}-${approverId}-${action}`,
  });
const stale: CustomerConfig = {
  ...customer,
  approvalPolicy: {
    ...customer.approvalPolicy,
    tiers: customer.approvalPolicy.tiers.map((t) => ({
      ...t,
      autoApproveUpTo: t.autoApproveUpTo + 1,
    })) as CustomerConfig["approvalPolicy"]["tiers"],
  },
};

describe("decide(): decision values are a closed set", () => {
  it.each(["bogus", "timed_out", "approved", "", null, 1])("refuses %j without touching the record", async (value) => {
    // Prepare
    const id = await pending();

    // Act
    const result = await decide(deps, {
      approvalId: id,
      decision: value,
      decider: { via: "operator", operator: "ops", channel: "cli" },
    });

    // Assess: still pending and still readable (the run and `po-agent approve` keep working)
    expect(result).toMatchObject({ decided: false, refused: expect.stringMatching(/must be "approve" or "reject"/) });
    expect(await status(id)).toBe("pending");
  });
});

describe("decide() per entry point", () => {
  it("signed link: only the approver the link was issued to, once, under the policy in force", async () => {
    // Prepare
    const id = await pending();
    const post = (token: string, d: ResolvedApprovalDeps = deps) =>
      handleApprovalRequest(d, { method: "POST", token, form: {} });

    // Act
    const outsider = await post(linkFor(id, "bob"));
    const underNewPolicy = await post(linkFor(id, "alice"), { ...deps, customer: stale });
    const ok = await post(linkFor(id, "alice"));
    const again = await post(linkFor(id, "dana", "reject"));

    // Assess
    expect([outsider.status, underNewPolicy.status, ok.status, again.status]).toEqual([403, 409, 200, 409]);
    expect(await stack.ledger.getApproval(id)).toMatchObject({
      status: "approved",
      decidedBy: "alice.moreno@prairiestate.example",
    });
  });

  it("MCP: the caller's principal, mapped in the config, decides; a claimed approver id decides nothing", async () => {
    // Prepare
    const id = await pending();
    const mcp = (principal: string, as?: string): Decider => ({ via: "mcp", principal, ...(as ? { as } : {}) });
    const tryAs = (d: Decider, c: CustomerConfig = customer) =>
      decide({ ...deps, customer: c }, { approvalId: id, decision: "approve", decider: d });

    // Act
    const unmapped = await tryAs(mcp("mcp:some-client", "alice"));
    const claimsDana = await tryAs(mcp("mcp:arn:aws:iam::1:role/alice", "dana"));
    const staleRun = await tryAs(mcp("mcp:arn:aws:iam::1:role/alice"), stale);
    const ok = await tryAs(mcp("mcp:arn:aws:iam::1:role/alice"));
    const twice = await tryAs(mcp("mcp:arn:aws:iam::1:role/alice"));

    // Assess
    expect(unmapped.refused).toMatch(/"alice" is not an approver that mcp:some-client is mapped to/);
    expect(claimsDana.refused).toMatch(/"dana" is not an approver that mcp:arn:aws:iam::1:role\/alice is mapped to/);
    expect(staleRun.refused).toMatch(/policy changed/);
    expect(ok).toMatchObject({ decided: true, approval: { status: "approved" } });
    expect(ok.approval.decidedBy).toBe("mcp:arn:aws:iam::1:role/alice as alice.moreno@prairiestate.example");
    expect(twice.refused).toMatch(/the approval is approved/);
    const audit = await stack.ledger.getAudit(ok.approval.runId);
    expect(audit.filter((a) => a.action === "approval.mcp_refused")).toHaveLength(4);
    expect(audit.find((a) => a.action === "approval.approved")?.detail).toMatchObject({
      via: "mcp",
      approver: "alice",
    });
  });

  it("CLI: an operator override, named as such, refused when the config leaves it off", async () => {
    // Prepare
    const id = await pending();
    const off = { ...customer, operatorOverride: { enabled: false, operators: [] } };
    const cli: Decider = { via: "operator", operator: "jo", channel: "cli" };

    // Act
    const refused = await decide({ ...deps, customer: off }, { approvalId: id, decision: "reject", decider: cli });
    const staleRun = await decide({ ...deps, customer: stale }, { approvalId: id, decision: "reject", decider: cli });
    const viaStack = await stack.decideByOperator(id, "rejected", "jo", "wrong vendor");

    // Assess
    expect(refused.refused).toMatch(/operator override is off/);
    expect(staleRun.refused).toMatch(/policy changed/);
    expect(viaStack.approval).toMatchObject({ status: "rejected", decidedBy: "operator override by jo (cli)" });
    const audit = await stack.ledger.getAudit(viaStack.approval.runId);
    expect(audit.find((a) => a.action === "approval.rejected")?.detail).toMatchObject({
      via: "operator-override",
      approver: "(operator override)",
    });
  });

  it("console API: the caller cannot choose who decided, nor send a decision outside the set", async () => {
    // Prepare
    const id = await pending();
    const api = (body: unknown) =>
      fetch(`${stack.httpUrl}/api/approvals/${id}/decide`, {
        method: "POST",
        // The start's control key (the CLI reads it from the data dir): without it the console refuses outright.
        headers: { "content-type": "application/json", [KEY_HEADER]: stack.controlKey },
        body: JSON.stringify(body),
      });

    // Act
    const bogus = await api({ decision: "bogus", by: "priya" });
    const fakeTimeout = await api({ decision: "timed_out", by: "system:timeout" });
    const ok = await api({ decision: "approved", by: "alice.moreno@prairiestate.example" });

    // Assess
    expect([bogus.status, fakeTimeout.status, ok.status]).toEqual([400, 400, 200]);
    expect(await stack.ledger.getApproval(id)).toMatchObject({
      status: "approved",
      // The body's `by` is not an identity: the JSON API is the CLI's, recorded as an operator override.
      decidedBy: "operator override by operator (cli)",
    });
  });
});

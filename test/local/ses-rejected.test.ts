import { rmSync } from "node:fs";
import type { SESv2Client } from "@aws-sdk/client-sesv2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApprovalDeps, requestApproval } from "../../lambdas/shared/agent/approvals.js";
import { guardCall } from "../../lambdas/shared/agent/guard.js";
import { approvalIdFor } from "../../lambdas/shared/approval/binding.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { LocalStack } from "../../local/stack.js";
import { artifactOf, refOf, stateWith } from "../support/artifacts.js";
import { realCustomer, samplePo, tempDir } from "../support/stack.js";

/** SES in the sandbox answers MessageRejected for an unverified recipient: no approval stays pending forever. */
const customer: CustomerConfig = realCustomer("customer37");
let stack: LocalStack;
let dataDir: string;
let seq = 0;
beforeAll(async () => {
  dataDir = tempDir("ses-rejected");
  stack = await LocalStack.start({ dataDir, customers: [customer], retryIntervalMs: 0 });
});
afterAll(async () => {
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The stack's SES, refusing these addresses the way the sandbox does; sent addresses are recorded. */
function sandboxSes(unverified: string[], sent: string[]): SESv2Client {
  const real = stack.deps(customer).ses;
  return {
    send: async (command: { input: { Destination?: { ToAddresses?: string[] } } }) => {
      const to = command.input.Destination?.ToAddresses?.[0] ?? "";
      if (unverified.includes(to)) {
        throw Object.assign(
          new Error(`Email address is not verified. The following identities failed the check: ${to}`),
          {
            name: "MessageRejected",
          },
        );
      }
      sent.push(to);
      return real.send(command as never);
    },
  } as unknown as SESv2Client;
}

async function pending(): Promise<{ runId: string; approvalId: string }> {
  seq += 1;
  const runId = `customer37-ses-${seq}`;
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
    status: "running",
    turn: 1,
    counters: { ...ZERO_COUNTERS },
  });
  const approvalId = approvalIdFor(runId, "toolu_1", "save", verdict.argsHash);
  await stack.ledger.putApproval({
    approvalId,
    runId,
    customer: customer.name,
    turn: 1,
    call: { toolUseId: "toolu_1", name: "save", input: refOf(artifact) },
    callHash: verdict.argsHash,
    reason: verdict.request.reason,
    rule: verdict.request.rule,
    approvers: verdict.request.approvers,
    summary: verdict.request.summary,
    status: "pending",
    emailedTo: [],
    usedNonces: [],
  });
  return { runId, approvalId };
}

describe("requestApproval when SES rejects a recipient", () => {
  it("records the rejection and asks the next approver in the chain", async () => {
    // Prepare: $15,400 on a Wednesday asks alice first, then dana.
    const { runId, approvalId } = await pending();
    const sent: string[] = [];
    const deps: ApprovalDeps = {
      ...stack.deps(customer),
      ses: sandboxSes(["alice.moreno@prairiestate.example"], sent),
    };

    // Act
    const out = await requestApproval(deps, { runId, approvalId, taskToken: "token-1", stage: 0 });

    // Assess
    expect(sent).toEqual(["dana.kowalski@prairiestate.example"]);
    expect(out.emailed).toEqual(["dana.kowalski@prairiestate.example"]);
    expect(await stack.ledger.getApproval(approvalId)).toMatchObject({ status: "pending", emailedTo: ["dana"] });
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.find((a) => a.action === "approval.email_rejected")?.detail).toMatchObject({ approver: "alice" });
  });

  it("ends the request rejected, saying why, when nobody can be emailed (the run does not fail, nothing stays pending)", async () => {
    // Prepare
    const { runId, approvalId } = await pending();
    const all = customer.approvers.map((a) => a.email);
    const deps: ApprovalDeps = { ...stack.deps(customer), ses: sandboxSes(all, []) };

    // Act
    const out = await requestApproval(deps, { runId, approvalId, taskToken: "token-gone", stage: 0 });

    // Assess
    expect(out.emailed).toEqual([]);
    const approval = await stack.ledger.getApproval(approvalId);
    expect(approval).toMatchObject({ status: "rejected", decidedBy: "system:email-rejected" });
    expect(approval?.comment).toMatch(/no approver could be emailed/);
    expect((await stack.ledger.getRun(runId))?.status).toBe("running");
    const actions = (await stack.ledger.getAudit(runId)).map((a) => a.action);
    // Every approver of the chain (approvers, then delegates) was tried once.
    expect(actions.filter((a) => a === "approval.email_rejected")).toHaveLength(approval?.approvers.length ?? -1);
    expect(actions).toContain("approval.undeliverable");
  });
});

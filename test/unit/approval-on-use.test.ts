import type { SESv2Client } from "@aws-sdk/client-sesv2";
import type { SFNClient } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import {
  type ApprovalDeps,
  approvalClock,
  handleApprovalRequest,
  requestApproval,
} from "../../lambdas/shared/agent/approvals.js";
import { signApprovalLink } from "../../lambdas/shared/approval/links.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { fixtureWorld, loadLedgerFixture } from "../support/ledger-fixture.js";

/**
 * The approval functions get their mail client, Step Functions client and signing key as getters
 * (lambdas/shared/aws/approval-deps.ts): a call gets one only when it mails, resumes a run or signs or
 * checks a link, so a Lambda builds at init only what every call of its role uses. These tests count, per
 * kind of call, what was fetched and what was done with it. The world is acme 03 parked on an approval of
 * Priya's, then Marcus's (test/fixtures/ledger/v1).
 */
const acme = loadCustomerFile("customers/acme.yaml");
const APPROVAL_ID = "apr_1862a6dbfc13d08f8c658122";
const RUN_ID = "acme-1ad498647ee58553fdd2";
const KEY = "k".repeat(32);

function world() {
  const { ledger, deps } = fixtureWorld(loadLedgerFixture("v1/parked-on-approval.json"), acme);
  const got = { key: 0, ses: 0, sfn: 0 };
  const done = { mails: [] as string[], resumes: [] as string[] };
  const ses = {
    send: async (command: { input: { Destination?: { ToAddresses?: string[] } } }) => {
      done.mails.push(command.input.Destination?.ToAddresses?.[0] ?? "");
      return {};
    },
  } as unknown as Pick<SESv2Client, "send">;
  const sfn = {
    send: async (command: { input: { taskToken?: string } }) => {
      done.resumes.push(command.input.taskToken ?? "");
      return {};
    },
  } as unknown as Pick<SFNClient, "send">;
  const approvalDeps: ApprovalDeps = {
    ...deps,
    ses: async () => {
      got.ses += 1;
      return ses;
    },
    sfn: async () => {
      got.sfn += 1;
      return sfn;
    },
    signingKey: async () => {
      got.key += 1;
      return KEY;
    },
    senderEmail: "po-agent@acme.example",
    baseUrl: "https://callback.example",
  };
  return { ledger, deps: approvalDeps, got, done };
}

const link = (action: "approve" | "reject") =>
  signApprovalLink({
    key: KEY,
    approvalId: APPROVAL_ID,
    approverId: "priya",
    action,
    expiresAt: Math.floor(Date.now() / 1000) + 600,
    nonce: `n-${action}`,
  });

describe("the approval clock fetches only what its step uses", () => {
  it("starts the first wait with no key, no mail client and no Step Functions client", async () => {
    // Prepare
    const { deps, got, done } = world();

    // Act
    const out = await approvalClock(deps, { runId: RUN_ID, approvalId: APPROVAL_ID, event: "start", stage: 0 });

    // Assess
    expect(out.action).toBe("wait");
    expect(got).toEqual({ key: 0, ses: 0, sfn: 0 });
    expect(done.mails).toEqual([]);
  });

  it("a reminder reads the key and mails the approver once; an escalation fetches nothing", async () => {
    // Prepare: acme reminds (stage 0 ends in a reminder), then escalates (stage 1 ends in the next approver).
    const { deps, got, done } = world();

    // Act
    const reminded = await approvalClock(deps, {
      runId: RUN_ID,
      approvalId: APPROVAL_ID,
      event: "deadline",
      stage: 0,
    });
    const afterReminder = { ...got };
    const escalated = await approvalClock(deps, {
      runId: RUN_ID,
      approvalId: APPROVAL_ID,
      event: "deadline",
      stage: 1,
    });

    // Assess
    expect(reminded).toMatchObject({ action: "wait", stage: 1 });
    expect(afterReminder).toEqual({ key: 1, ses: 1, sfn: 0 });
    expect(done.mails).toEqual([acme.approvers.find((a) => a.id === "priya")?.email]);
    expect(escalated).toMatchObject({ action: "wait", stage: 2 });
    expect(got).toEqual(afterReminder);
  });
});

describe("a request and a click fetch what they use", () => {
  it("a request reads the key and mails; it resumes nothing while the approval is pending", async () => {
    // Prepare
    const { deps, got, done } = world();

    // Act
    const out = await requestApproval(deps, { runId: RUN_ID, approvalId: APPROVAL_ID, taskToken: "token-1" });

    // Assess
    expect(out.emailed).toHaveLength(1);
    expect(got).toEqual({ key: 1, ses: 1, sfn: 0 });
    expect(done).toEqual({ mails: out.emailed, resumes: [] });
  });

  it("the confirmation page (GET) checks the link with the key and resumes nothing; the POST resumes the run once", async () => {
    // Prepare
    const { ledger, deps, got, done } = world();
    await ledger.setApprovalToken(APPROVAL_ID, "token-1");
    const token = link("approve");

    // Act
    const page = await handleApprovalRequest(deps, { method: "GET", token });
    const afterPage = { ...got };
    const decided = await handleApprovalRequest(deps, { method: "POST", token });

    // Assess
    expect(page.status).toBe(200);
    expect(afterPage).toEqual({ key: 1, ses: 0, sfn: 0 });
    expect(decided.status).toBe(200);
    expect((await ledger.getApproval(APPROVAL_ID))?.status).toBe("approved");
    expect(got).toEqual({ key: 2, ses: 0, sfn: 1 });
    expect(done).toEqual({ mails: [], resumes: ["token-1"] });
  });

  it("a click while the key cannot be read fails as a server error, not as an invalid link, and decides nothing", async () => {
    // Prepare: Secrets Manager throttles the key's read.
    const { ledger, deps, got, done } = world();
    const throttled: ApprovalDeps = {
      ...deps,
      signingKey: async () => {
        got.key += 1;
        throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      },
    };

    // Act
    const click = handleApprovalRequest(throttled, { method: "POST", token: link("approve") });

    // Assess: the error reaches the caller (a 500 from the routes), the approval stays pending.
    await expect(click).rejects.toMatchObject({ name: "ThrottlingException" });
    expect(got).toEqual({ key: 1, ses: 0, sfn: 0 });
    expect((await ledger.getApproval(APPROVAL_ID))?.status).toBe("pending");
    expect(done).toEqual({ mails: [], resumes: [] });
  });
});

import { randomBytes } from "node:crypto";
import { type SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";
import { SendTaskSuccessCommand, type SFNClient } from "@aws-sdk/client-sfn";
import { approvalUrl, signApprovalLink, verifyApprovalLink } from "../approval/links.js";
import { renderApprovalEmail, renderConfirmPage, renderResultPage } from "../approval/render.js";
import { DEFAULTS } from "../constants.js";
import { ApprovalError } from "../errors.js";
import type { ApprovalRecord } from "../ledger/records.js";
import type { AgentDeps } from "./core.js";

/** What the approval gate needs beyond the agent core. */
export interface ApprovalDeps extends AgentDeps {
  ses: SESv2Client;
  sfn: SFNClient;
  senderEmail: string;
  /** Where approval links point: the callback Function URL in AWS, the local server locally. */
  baseUrl: string;
  signingKey: string | Uint8Array;
}

const nowOf = (deps: AgentDeps) => (deps.now ?? (() => new Date()))();

export interface ApprovalDecisionOutput {
  approvalId: string;
  decision: "approved" | "rejected" | "timed_out";
}

/**
 * The waitForTaskToken task: stores the token, emails the approver once, then the execution
 * waits. A decision already taken (the process restarted after a click) completes at once.
 */
export async function requestApproval(
  deps: ApprovalDeps,
  input: { runId: string; approvalId: string; taskToken: string },
): Promise<{ approvalId: string; emailed: string[] }> {
  const approval = await deps.ledger.getApproval(input.approvalId);
  if (!approval || approval.runId !== input.runId) {
    throw new ApprovalError(`approval ${input.approvalId} does not belong to run ${input.runId}`);
  }
  if (approval.status !== "pending") {
    await sendDecision(deps.sfn, input.taskToken, { approvalId: approval.approvalId, decision: approval.status });
    return { approvalId: approval.approvalId, emailed: [] };
  }
  const approverId = approval.approvers[0];
  const approver = deps.customer.approvers.find((a) => a.id === approverId);
  if (!approver) throw new ApprovalError(`approval ${approval.approvalId} names unknown approver "${approverId}"`);

  // Email first, then record it: a crash in between re-sends the email on replay (better twice than never).
  const alreadyEmailed = approval.emailedTo.includes(approver.id);
  if (!alreadyEmailed) {
    const links = approvalLinks(deps, approval, approver.id);
    const mail = renderApprovalEmail({
      customerName: deps.customer.displayName,
      poNumber: approval.summary.poNumber,
      supplierName: approval.summary.supplierName,
      amount: approval.summary.amount,
      reason: approval.reason,
      rule: approval.rule,
      approveUrl: links.approveUrl,
      rejectUrl: links.rejectUrl,
      approverName: approver.name,
      expiresAt: new Date(links.expiresAt * 1000),
    });
    await deps.ses.send(
      new SendEmailCommand({
        FromEmailAddress: deps.senderEmail,
        Destination: { ToAddresses: [approver.email] },
        Content: {
          Simple: {
            Subject: { Data: mail.subject },
            Body: { Html: { Data: mail.html }, Text: { Data: mail.text } },
          },
        },
      }),
    );
    await deps.ledger.audit(input.runId, "system", "approval.requested", {
      approvalId: approval.approvalId,
      approver: approver.id,
      rule: approval.rule,
      reason: approval.reason,
    });
  }
  await deps.ledger.setApprovalToken(
    approval.approvalId,
    input.taskToken,
    alreadyEmailed ? undefined : [...approval.emailedTo, approver.id],
  );
  await deps.ledger.updateRun(
    input.runId,
    {
      status: "awaiting_approval",
      pendingApprovalId: approval.approvalId,
      reason: `waiting for ${approver.name} (${approval.rule}): ${approval.reason}`,
    },
    { onlyIfStatusIn: ["running", "awaiting_approval"] },
  );
  if (alreadyEmailed) return { approvalId: approval.approvalId, emailed: [] };
  return { approvalId: approval.approvalId, emailed: [approver.email] };
}

/** Signed approve and reject links for one approver. */
export function approvalLinks(deps: ApprovalDeps, approval: ApprovalRecord, approverId: string) {
  const expiresAt = Math.floor(nowOf(deps).getTime() / 1000) + DEFAULTS.approvalLinkTtlSeconds;
  const sign = (action: "approve" | "reject") =>
    signApprovalLink({
      key: deps.signingKey,
      approvalId: approval.approvalId,
      approverId,
      action,
      expiresAt,
      nonce: randomBytes(9).toString("base64url"),
    });
  return {
    approveUrl: approvalUrl(deps.baseUrl, sign("approve")),
    rejectUrl: approvalUrl(deps.baseUrl, sign("reject")),
    expiresAt,
  };
}

async function sendDecision(sfn: SFNClient, taskToken: string, output: ApprovalDecisionOutput): Promise<void> {
  await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
}

/**
 * Decides a pending approval once and wakes the waiting execution. Used by the signed-link
 * POST, the CLI and the console. Returns false when it was already decided.
 */
export async function decide(
  deps: Pick<ApprovalDeps, "ledger" | "sfn">,
  input: {
    approvalId: string;
    decision: "approved" | "rejected" | "timed_out";
    by: string;
    comment?: string;
    nonce?: string;
  },
): Promise<{ decided: boolean; approval: ApprovalRecord }> {
  const decided = await deps.ledger.decideApproval(
    input.approvalId,
    input.decision,
    input.by,
    input.comment,
    input.nonce,
  );
  const approval = await deps.ledger.getApproval(input.approvalId);
  if (!approval) throw new ApprovalError(`approval ${input.approvalId} does not exist`);
  if (!decided) return { decided, approval };
  await deps.ledger.audit(approval.runId, input.by, `approval.${input.decision}`, {
    approvalId: approval.approvalId,
    comment: input.comment ?? "",
  });
  await deps.ledger.updateRun(approval.runId, { status: "running" }, { onlyIfStatusIn: ["awaiting_approval"] });
  if (approval.taskToken) {
    try {
      await sendDecision(deps.sfn, approval.taskToken, { approvalId: approval.approvalId, decision: input.decision });
    } catch (err) {
      // The waiting execution is gone (local process stopped, token expired): the decision is in
      // the ledger and the resumed run reads it from there.
      const name = (err as { name?: string }).name ?? "";
      if (!["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"].includes(name) && !/ECONNREFUSED/.test(String(err)))
        throw err;
    }
  }
  return { decided, approval };
}

/** The deadline passed with no decision: record it so the model sees "approval timed out". */
export async function approvalTimedOut(
  deps: AgentDeps,
  input: { runId: string; approvalId: string },
): Promise<{ decided: boolean }> {
  const decided = await deps.ledger.decideApproval(input.approvalId, "timed_out", "system:timeout", undefined);
  if (decided) await deps.ledger.audit(input.runId, "system", "approval.timed_out", { approvalId: input.approvalId });
  await deps.ledger.updateRun(input.runId, { status: "running" }, { onlyIfStatusIn: ["awaiting_approval"] });
  return { decided };
}

// ---- the approval callback (signed links) ---------------------------------------------------

export interface HttpResult {
  status: number;
  html: string;
}

/**
 * GET shows a confirmation page and decides nothing (link scanners follow GETs);
 * only the POST from that page decides, once, for the approver the link was signed for.
 */
export async function handleApprovalRequest(
  deps: ApprovalDeps,
  req: { method: string; token: string; form?: Record<string, string> },
): Promise<HttpResult> {
  let link: ReturnType<typeof verifyApprovalLink>;
  try {
    link = verifyApprovalLink(deps.signingKey, req.token, Math.floor(nowOf(deps).getTime() / 1000));
  } catch (err) {
    const message = err instanceof ApprovalError ? err.message : "this link is not valid";
    return { status: 403, html: renderResultPage("Link not valid", message) };
  }
  const approval = await deps.ledger.getApproval(link.approvalId);
  if (!approval) return { status: 404, html: renderResultPage("Not found", "This approval request does not exist.") };
  if (!approval.approvers.includes(link.approverId)) {
    return {
      status: 403,
      html: renderResultPage("Not your approval", "This link was not issued to an approver of this request."),
    };
  }
  if (approval.status !== "pending" || approval.usedNonces.includes(link.nonce)) {
    return {
      status: 409,
      html: renderResultPage(
        "Already decided",
        `This request was already ${approval.status.replace("_", " ")}${approval.decidedBy ? ` by ${approval.decidedBy}` : ""}.`,
      ),
    };
  }
  const approver = deps.customer.approvers.find((a) => a.id === link.approverId);
  if (req.method === "GET") {
    return {
      status: 200,
      html: renderConfirmPage({
        action: link.action,
        poNumber: approval.summary.poNumber,
        supplierName: approval.summary.supplierName,
        amount: approval.summary.amount,
        reason: approval.reason,
        rule: approval.rule,
        postUrl: approvalUrl(deps.baseUrl, req.token),
        approverName: approver?.name ?? link.approverId,
      }),
    };
  }
  if (req.method !== "POST")
    return { status: 405, html: renderResultPage("Method not allowed", "Use the button on the page.") };
  const decision = link.action === "approve" ? "approved" : "rejected";
  const { decided } = await decide(deps, {
    approvalId: approval.approvalId,
    decision,
    by: approver?.email ?? link.approverId,
    comment: req.form?.reason?.slice(0, 1000),
    nonce: link.nonce,
  });
  if (!decided)
    return { status: 409, html: renderResultPage("Already decided", "Someone decided this request first.") };
  return {
    status: 200,
    html: renderResultPage(
      decision === "approved" ? "Approved" : "Rejected",
      `PO ${approval.summary.poNumber} was ${decision}. The run continues.`,
    ),
  };
}

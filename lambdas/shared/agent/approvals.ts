import { randomBytes } from "node:crypto";
import type { SESv2Client } from "@aws-sdk/client-sesv2";
import type { SFNClient } from "@aws-sdk/client-sfn";
import { z } from "zod/v3";
import { actorOf, checkDecision, type Decider, undecidableProblem } from "../approval/decision.js";
import { approvalUrl, signApprovalLink, verifyApprovalLink } from "../approval/links.js";
import { renderApprovalEmail, renderConfirmPage, renderResultPage } from "../approval/render.js";
import { approvalTiming, approverIndexOf, secondsLeftInChain } from "../approval/route.js";
import { DEFAULTS } from "../constants.js";
import { ApprovalError } from "../errors.js";
import type { ApprovalRecord } from "../ledger/records.js";
import type { AgentDeps } from "./deps.js";

/**
 * A client or a secret, or how to get it when a call first needs it: a Lambda builds at init only what every
 * call of its role uses (lambdas/shared/aws/approval-deps.ts), the local stack hands over what it has.
 */
export type OnUse<T> = T | (() => Promise<T>);

const use = async <T>(v: OnUse<T>): Promise<T> => (typeof v === "function" ? (v as () => Promise<T>)() : v);

/** What the approval gate needs beyond the agent core. */
export interface ApprovalDeps extends AgentDeps {
  /** Mails approvers: a request, or a reminder. */
  ses: OnUse<Pick<SESv2Client, "send">>;
  /** Wakes the waiting execution with a decision. */
  sfn: OnUse<Pick<SFNClient, "send">>;
  senderEmail: string;
  /** Where approval links point: the callback Function URL in AWS, the local server locally. */
  baseUrl: string;
  /** Signs the links of an email and checks the link of a click. */
  signingKey: OnUse<string | Uint8Array>;
}

/** Approval deps with every client and the key at hand (the local stack, tests). */
export type ResolvedApprovalDeps = ApprovalDeps & {
  ses: Pick<SESv2Client, "send">;
  sfn: Pick<SFNClient, "send">;
  signingKey: string | Uint8Array;
};

const nowOf = (deps: Pick<AgentDeps, "now">) => (deps.now ?? (() => new Date()))();

export interface ApprovalDecisionOutput {
  approvalId: string;
  decision: "approved" | "rejected" | "timed_out";
}

/** What WaitForApproval hands request-approval; `stage` comes from the approval clock. */
export const RequestApprovalInput = z.object({
  runId: z.string(),
  approvalId: z.string(),
  taskToken: z.string(),
  stage: z.number().int().nonnegative().default(0),
});
export type RequestApprovalInput = z.input<typeof RequestApprovalInput>;

/**
 * The waitForTaskToken task: stores the token and emails the stage's approver once (the first
 * approver, or the next one after an escalation); then the execution waits. A decision already
 * taken (the process restarted after a click) completes at once.
 */
export async function requestApproval(
  deps: ApprovalDeps,
  raw: RequestApprovalInput,
): Promise<{ approvalId: string; emailed: string[] }> {
  const input = RequestApprovalInput.parse(raw);
  const approval = await deps.ledger.getApproval(input.approvalId);
  if (!approval || approval.runId !== input.runId) {
    throw new ApprovalError(`approval ${input.approvalId} does not belong to run ${input.runId}`);
  }
  if (approval.status !== "pending") {
    await sendDecision(deps.sfn, input.taskToken, { approvalId: approval.approvalId, decision: approval.status });
    return { approvalId: approval.approvalId, emailed: [] };
  }
  const first = approverIndexOf(input.stage, approval.approvers.length);
  let approverId = approval.approvers[first];
  let approver = deps.customer.approvers.find((a) => a.id === approverId);
  if (!approver) throw new ApprovalError(`approval ${approval.approvalId} names unknown approver "${approverId}"`);

  // Email first, then record it: a crash in between re-sends the email on replay (better twice than never).
  const alreadyEmailed = approval.emailedTo.some((id) => approval.approvers.indexOf(id) >= first);
  if (!alreadyEmailed) {
    const ttl = secondsLeftInChain(deps.customer, input.stage, approval.approvers.length);
    // SES refuses some recipients (an unverified address in the sandbox): try the next approver in the
    // chain; when nobody can be emailed, the request ends rejected, saying why, instead of pending forever.
    let sent = false;
    for (let k = first; k < approval.approvers.length && !sent; k++) {
      approverId = approval.approvers[k];
      approver = deps.customer.approvers.find((a) => a.id === approverId);
      if (!approver) continue;
      sent = (await tryEmail(deps, approval, approver.id, "request", ttl)) === "sent";
    }
    if (!sent || !approver) {
      await undeliverable(deps, approval, input.taskToken);
      return { approvalId: approval.approvalId, emailed: [] };
    }
    await deps.ledger.audit(input.runId, "system", "approval.requested", {
      approvalId: approval.approvalId,
      approver: approver.id,
      stage: input.stage,
      rule: approval.rule,
      reason: approval.reason,
      policyRevision: approval.policyRevision ?? "",
      callHash: approval.callHash,
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

/** Whether SES refused this recipient for good (MessageRejected: e.g. unverified in the sandbox). */
function isRejectedRecipient(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name ?? "";
  return name === "MessageRejected" || name === "MailFromDomainNotVerifiedException";
}

/** Emails one approver; a recipient SES refuses is audited and reported, not thrown. */
async function tryEmail(
  deps: ApprovalDeps,
  approval: ApprovalRecord,
  approverId: string,
  kind: "request" | "reminder",
  ttlSeconds: number,
): Promise<"sent" | "rejected"> {
  try {
    await emailApprover(deps, approval, approverId, kind, ttlSeconds);
    return "sent";
  } catch (err) {
    if (!isRejectedRecipient(err)) throw err;
    await deps.ledger.audit(approval.runId, "system", "approval.email_rejected", {
      approvalId: approval.approvalId,
      approver: approverId,
      kind,
      error: String((err as Error).message ?? err).slice(0, 300),
    });
    return "rejected";
  }
}

/** Nobody in the chain can be emailed: the approval ends rejected by the system, and the run goes on to say so. */
async function undeliverable(deps: ApprovalDeps, approval: ApprovalRecord, taskToken: string): Promise<void> {
  const why = `no approver could be emailed (SES rejected ${approval.approvers.join(", ")}); verify the addresses`;
  const decided = await deps.ledger.decideApproval(approval.approvalId, "rejected", "system:email-rejected", why);
  if (decided) {
    await deps.ledger.audit(approval.runId, "system", "approval.undeliverable", {
      approvalId: approval.approvalId,
      why,
    });
  }
  await deps.ledger.updateRun(
    approval.runId,
    { status: "running" },
    { onlyIfStatusIn: ["running", "awaiting_approval"] },
  );
  try {
    await sendDecision(deps.sfn, taskToken, { approvalId: approval.approvalId, decision: "rejected" });
  } catch (err) {
    const name = (err as { name?: string }).name ?? "";
    if (!["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"].includes(name)) throw err;
  }
}

/** Sends one approver the request (or a reminder) with fresh signed links valid for `ttlSeconds`. */
async function emailApprover(
  deps: ApprovalDeps,
  approval: ApprovalRecord,
  approverId: string,
  kind: "request" | "reminder",
  ttlSeconds: number,
): Promise<void> {
  const approver = deps.customer.approvers.find((a) => a.id === approverId);
  if (!approver) throw new ApprovalError(`approval ${approval.approvalId} names unknown approver "${approverId}"`);
  const links = approvalLinks({ ...deps, signingKey: await use(deps.signingKey) }, approval, approver.id, ttlSeconds);
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
    ...(approval.diff ? { changes: approval.diff } : {}),
    ...(approval.policyRevision ? { policyRevision: approval.policyRevision } : {}),
  });
  const subject = kind === "reminder" ? `Reminder: ${mail.subject}` : mail.subject;
  const { SendEmailCommand } = await import("@aws-sdk/client-sesv2");
  await (await use(deps.ses)).send(
    new SendEmailCommand({
      FromEmailAddress: deps.senderEmail,
      Destination: { ToAddresses: [approver.email] },
      Content: {
        Simple: {
          Subject: { Data: subject },
          Body: { Html: { Data: mail.html }, Text: { Data: mail.text } },
        },
      },
    }),
  );
}

/** Signed approve and reject links for one approver. */
export function approvalLinks(
  deps: Pick<ApprovalDeps, "baseUrl" | "now"> & { signingKey: string | Uint8Array },
  approval: ApprovalRecord,
  approverId: string,
  ttlSeconds: number = DEFAULTS.approvalLinkTtlSeconds,
) {
  const expiresAt = Math.floor(nowOf(deps).getTime() / 1000) + Math.min(ttlSeconds, DEFAULTS.approvalLinkTtlSeconds);
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

async function sendDecision(
  sfn: ApprovalDeps["sfn"],
  taskToken: string,
  output: ApprovalDecisionOutput,
): Promise<void> {
  const { SendTaskSuccessCommand } = await import("@aws-sdk/client-sfn");
  await (await use(sfn)).send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
}

export interface DecideResult {
  decided: boolean;
  approval: ApprovalRecord;
  /** Why nothing was decided (not an approver, stale, already decided...), when it was refused. */
  refused?: string;
}

const REFUSAL_ACTION: Record<Decider["via"], string> = {
  link: "approval.link_refused",
  mcp: "approval.mcp_refused",
  operator: "approval.override_refused",
};

/**
 * The one decision path for every entry point (signed link, MCP, CLI, console): the checks of
 * `approval/decision.ts` (value, identity, approver, single use, segregation, binding, policy
 * revision), then one conditional write, the audit line, and the wake-up of the waiting execution.
 */
export async function decide(
  deps: Pick<ApprovalDeps, "ledger" | "sfn" | "customer">,
  input: { approvalId: string; decision: unknown; decider: Decider; comment?: string },
): Promise<DecideResult> {
  const approval = await deps.ledger.getApproval(input.approvalId);
  if (!approval) throw new ApprovalError(`approval ${input.approvalId} does not exist`);
  const { decider } = input;
  const checked = await checkDecision({
    customer: deps.customer,
    approval,
    decider,
    decision: input.decision,
    submitters: () => submittersOf(deps, approval.runId),
  });
  if ("refused" in checked) {
    await deps.ledger.audit(approval.runId, actorOf(decider), REFUSAL_ACTION[decider.via], {
      approvalId: approval.approvalId,
      via: decider.via,
      decision: String(input.decision).slice(0, 40),
      why: checked.refused,
    });
    return { decided: false, approval, refused: checked.refused };
  }
  const { status, by, approverId, via } = checked.ok;
  const comment = input.comment?.slice(0, 1000);
  const decided = await deps.ledger.decideApproval(
    approval.approvalId,
    status,
    by,
    comment,
    decider.via === "link" ? decider.nonce : undefined,
  );
  const after = (await deps.ledger.getApproval(approval.approvalId)) ?? approval;
  if (!decided) return { decided, approval: after, refused: `someone decided it first (${after.status})` };
  await deps.ledger.audit(approval.runId, by, `approval.${status}`, {
    approvalId: approval.approvalId,
    comment: comment ?? "",
    tool: approval.call.name,
    callHash: approval.callHash,
    policyRevision: approval.policyRevision ?? "",
    via,
    approver: approverId ?? "(operator override)",
  });
  // The decided record rides along on the run: the resumed run's next step reads it there (no extra read).
  await deps.ledger.updateRun(
    approval.runId,
    { status: "running" },
    { onlyIfStatusIn: ["awaiting_approval"], decided: after },
  );
  if (after.taskToken) {
    try {
      await sendDecision(deps.sfn, after.taskToken, { approvalId: approval.approvalId, decision: status });
    } catch (err) {
      // The waiting execution is gone (local process stopped, token expired): the decision is in
      // the ledger and the resumed run reads it from there.
      const name = (err as { name?: string }).name ?? "";
      if (!["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"].includes(name) && !/ECONNREFUSED/.test(String(err)))
        throw err;
    }
  }
  return { decided, approval: after };
}

/** Principals that submitted the run's document (a child run of a multi-PO document: its parent's too). */
async function submittersOf(deps: Pick<ApprovalDeps, "ledger">, runId: string): Promise<string[]> {
  const run = await deps.ledger.getRun(runId);
  const ids = [runId, ...(run?.parentRunId ? [run.parentRunId] : [])];
  return (await Promise.all(ids.map((id) => deps.ledger.getSubmitters(id)))).flat();
}

/** The deadline passed with no decision: record it so the model sees "approval timed out". */
export async function approvalTimedOut(
  deps: AgentDeps,
  input: { runId: string; approvalId: string },
): Promise<{ decided: boolean }> {
  const decided = await deps.ledger.decideApproval(input.approvalId, "timed_out", "system:timeout", undefined);
  if (decided) {
    await deps.ledger.audit(input.runId, "system", "approval.timed_out", {
      approvalId: input.approvalId,
      reason: "approval timed out",
    });
  }
  await deps.ledger.updateRun(input.runId, { status: "running" }, { onlyIfStatusIn: ["awaiting_approval"] });
  return { decided };
}

/** What the approval clock states hand approval-timeout. */
export const ApprovalClockInput = z.object({
  runId: z.string(),
  approvalId: z.string(),
  /** `start` before the first wait; `deadline` when a wait's TimeoutSecondsPath ran out. */
  event: z.enum(["start", "deadline"]),
  stage: z.number().int().nonnegative().default(0),
});
export type ApprovalClockInput = z.input<typeof ApprovalClockInput>;

/** What the state machine does next: wait `waitSeconds` in `stage`, or go back to the orchestrator. */
export interface ApprovalClockOutput {
  approvalId: string;
  action: "wait" | "done";
  stage: number;
  /** Always ≥ 1 so TimeoutSecondsPath resolves even when the action is done. */
  waitSeconds: number;
}

/**
 * The approval clock: sets the first wait, then on every deadline either reminds the same approver,
 * escalates to the next approver or delegate, or ends the request as "approval timed out". Every
 * step is in the audit log and, as a state transition, in the execution history.
 */
export async function approvalClock(deps: ApprovalDeps, raw: ApprovalClockInput): Promise<ApprovalClockOutput> {
  const input = ApprovalClockInput.parse(raw);
  const approval = await deps.ledger.getApproval(input.approvalId);
  if (!approval || approval.runId !== input.runId) {
    throw new ApprovalError(`approval ${input.approvalId} does not belong to run ${input.runId}`);
  }
  const done: ApprovalClockOutput = {
    approvalId: approval.approvalId,
    action: "done",
    stage: input.stage,
    waitSeconds: 1,
  };
  if (approval.status !== "pending") return done;
  const { reminderSeconds, escalateSeconds } = approvalTiming(deps.customer);
  const firstStageOf = (k: number) => (reminderSeconds === undefined ? 2 * k + 1 : 2 * k);
  const waitFor = (stage: number): ApprovalClockOutput => ({
    approvalId: approval.approvalId,
    action: "wait",
    stage,
    waitSeconds: stage % 2 === 0 ? (reminderSeconds ?? escalateSeconds) : escalateSeconds - (reminderSeconds ?? 0),
  });
  const chain = approval.approvers;

  if (input.event === "start") {
    const stage = firstStageOf(0);
    await deps.ledger.audit(input.runId, "system", "approval.clock_started", {
      approvalId: approval.approvalId,
      approvers: chain,
      reminderAfterSeconds: reminderSeconds ?? null,
      escalateAfterSeconds: escalateSeconds,
      policyRevision: approval.policyRevision ?? "",
    });
    return waitFor(stage);
  }

  const k = approverIndexOf(input.stage, chain.length);
  const approverId = chain[k] ?? "";
  if (input.stage % 2 === 0) {
    const ttl = secondsLeftInChain(deps.customer, input.stage + 1, chain.length);
    await tryEmail(deps, approval, approverId, "reminder", ttl);
    await deps.ledger.audit(input.runId, "system", "approval.reminder_sent", {
      approvalId: approval.approvalId,
      approver: approverId,
      stage: input.stage,
    });
    return waitFor(input.stage + 1);
  }
  const next = chain[k + 1];
  if (next !== undefined && Math.floor(input.stage / 2) + 1 < chain.length) {
    await deps.ledger.audit(input.runId, "system", "approval.escalated", {
      approvalId: approval.approvalId,
      from: approverId,
      to: next,
      stage: input.stage,
      reason: `no decision within ${escalateSeconds} s`,
    });
    return waitFor(firstStageOf(k + 1));
  }
  await approvalTimedOut(deps, { runId: input.runId, approvalId: approval.approvalId });
  return done;
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
  // Read before the link is judged: a key that cannot be read (Secrets Manager throttled or down) fails the
  // request as a server error, never as "this link is not valid" to an approver whose link is good.
  const key = await use(deps.signingKey);
  let link: ReturnType<typeof verifyApprovalLink>;
  try {
    link = verifyApprovalLink(key, req.token, Math.floor(nowOf(deps).getTime() / 1000));
  } catch (err) {
    const message = err instanceof ApprovalError ? err.message : "this link is not valid";
    return { status: 403, html: renderResultPage("Link not valid", message) };
  }
  const approval = await deps.ledger.getApproval(link.approvalId);
  if (!approval) return { status: 404, html: renderResultPage("Not found", "This approval request does not exist.") };
  const click = { approvalId: approval.approvalId, approver: link.approverId, action: link.action, method: req.method };
  // GET renders; the same checks as decide() say up front whether the page can decide anything.
  if (!approval.approvers.includes(link.approverId)) {
    await deps.ledger.audit(approval.runId, link.approverId, "approval.link_refused", {
      ...click,
      why: "not an approver of this request",
    });
    return {
      status: 403,
      html: renderResultPage("Not your approval", "This link was not issued to an approver of this request."),
    };
  }
  // The record must still describe exactly the call that was emailed, under the policy now in force.
  const problem = undecidableProblem(deps.customer, approval);
  if (problem !== undefined) {
    await deps.ledger.audit(approval.runId, link.approverId, "approval.link_refused", { ...click, why: problem });
    return { status: 409, html: renderResultPage("Request changed", `This request cannot be decided: ${problem}.`) };
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
    // A view is not a decision (mail scanners open every link), but it is recorded.
    await deps.ledger.audit(approval.runId, approver?.email ?? link.approverId, "approval.viewed", click);
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
        ...(approval.diff ? { changes: approval.diff } : {}),
        ...(approval.policyRevision ? { policyRevision: approval.policyRevision } : {}),
      }),
    };
  }
  if (req.method !== "POST")
    return { status: 405, html: renderResultPage("Method not allowed", "Use the button on the page.") };
  const decision = link.action === "approve" ? "approved" : "rejected";
  const { decided, refused } = await decide(deps, {
    approvalId: approval.approvalId,
    decision: link.action,
    decider: { via: "link", approverId: link.approverId, nonce: link.nonce },
    comment: req.form?.reason?.slice(0, 1000),
  });
  if (!decided)
    return {
      status: 409,
      html: renderResultPage("Not decided", `This request was not decided: ${refused ?? "someone decided it first"}.`),
    };
  return {
    status: 200,
    html: renderResultPage(
      decision === "approved" ? "Approved" : "Rejected",
      `PO ${approval.summary.poNumber} was ${decision}. The run continues.`,
    ),
  };
}

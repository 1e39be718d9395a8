import type { ApprovalDeps } from "../agent/approvals.js";
import { requireEnv } from "../errors.js";
import { agentDeps, secretValue, sesClient, sfnClient } from "./runtime.js";

const signingSecretArn = requireEnv("APPROVAL_SIGNING_SECRET_ARN");

/** Approval wiring shared by the request and callback handlers. */
export async function approvalDeps(baseUrl: string): Promise<ApprovalDeps> {
  return {
    ...agentDeps(),
    ses: await sesClient(),
    sfn: await sfnClient(),
    senderEmail: process.env.SENDER_EMAIL ?? "",
    baseUrl: baseUrl.replace(/\/$/, ""),
    signingKey: await secretValue(signingSecretArn),
  };
}

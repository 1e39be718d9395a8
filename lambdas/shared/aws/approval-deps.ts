import type { SESv2Client } from "@aws-sdk/client-sesv2";
import type { ApprovalDeps } from "../agent/approvals.js";
import { requireEnv } from "../errors.js";
import { tracer } from "../observability.js";
import { agentDeps, lazyClient, secretValue, sfnClient } from "./runtime.js";

/** The mail client: only the approval functions import this module, so no other bundle carries SES. */
export const sesClient = lazyClient<SESv2Client>(async () => {
  const { SESv2Client } = await import("@aws-sdk/client-sesv2");
  return tracer.captureAWSv3Client(new SESv2Client({}));
});

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

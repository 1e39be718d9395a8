import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SESv2Client } from "@aws-sdk/client-sesv2";
import { SFNClient } from "@aws-sdk/client-sfn";
import type { ApprovalDeps } from "../agent/approvals.js";
import { requireEnv } from "../errors.js";
import { tracer } from "../observability.js";
import { agentDeps, lazyClient, secretsClient, secretValue, sfnClient } from "./runtime.js";

/** The mail client: only the approval functions import this module, so no other bundle carries SES. */
export const sesClient = lazyClient<SESv2Client>(
  async () => (await import("@aws-sdk/client-sesv2")).SESv2Client,
  (c) => tracer.captureAWSv3Client(c),
);

// Every call of the approval functions signs or checks a link (the signing key, from Secrets Manager) and
// mails or resumes a run: their clients are built at init, which every cold start of theirs pays anyway.
sesClient.now(SESv2Client);
sfnClient.now(SFNClient);
secretsClient.now(SecretsManagerClient);

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

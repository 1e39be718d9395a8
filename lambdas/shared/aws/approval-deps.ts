import type { SESv2Client } from "@aws-sdk/client-sesv2";
import type { ApprovalDeps } from "../agent/approvals.js";
import { requireEnv } from "../errors.js";
import { tracer } from "../observability.js";
import { agentDeps, lazyClient, secretValue, sfnClient } from "./runtime.js";

/** The mail client: only the approval functions import this module, so no other bundle carries SES. */
export const sesClient = lazyClient<SESv2Client>(
  async () => (await import("@aws-sdk/client-sesv2")).SESv2Client,
  (c) => tracer.captureAWSv3Client(c),
);

const signingSecretArn = requireEnv("APPROVAL_SIGNING_SECRET_ARN");

/** The link-signing key, read from Secrets Manager by the first call that signs or checks a link (then cached). */
export const signingKey = (): Promise<string> => secretValue(signingSecretArn);

/**
 * Approval wiring shared by the request, clock and callback handlers. The clients and the key are handed over
 * as getters: each is built or read by the first call that uses it. A handler whose every call uses one builds
 * it at init instead (`sesClient.now(SESv2Client)` in request-approval), so that its cold start is not
 * flattered; the others do not pay at all on the calls that never mail, resume or sign (the clock's first
 * wait and its escalations, the callback's confirmation pages).
 */
export function approvalDeps(baseUrl: string): ApprovalDeps {
  return {
    ...agentDeps(),
    ses: sesClient,
    sfn: sfnClient,
    senderEmail: process.env.SENDER_EMAIL ?? "",
    baseUrl: baseUrl.replace(/\/$/, ""),
    signingKey,
  };
}

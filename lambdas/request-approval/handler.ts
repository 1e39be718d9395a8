import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SESv2Client } from "@aws-sdk/client-sesv2";
import { RequestApprovalInput, requestApproval } from "../shared/agent/approvals.js";
import { approvalDeps, sesClient } from "../shared/aws/approval-deps.js";
import { instrumented } from "../shared/aws/handler.js";
import { secretsClient } from "../shared/aws/runtime.js";
import { requireEnv } from "../shared/errors.js";

const baseUrl = requireEnv("APPROVAL_BASE_URL");
requireEnv("SENDER_EMAIL");

// Every call mails the stage's approver a request with signed links (all but a replay of one already sent): the
// mail client and the signing key's are built at init, which every cold start pays anyway. Step Functions is
// only called for a decision already taken or nobody to mail: on first use.
sesClient.now(SESv2Client);
secretsClient.now(SecretsManagerClient);

export const handler = instrumented("request-approval", RequestApprovalInput, async (input) =>
  requestApproval(approvalDeps(baseUrl), input),
);

import { RequestApprovalInput, requestApproval } from "../shared/agent/approvals.js";
import { approvalDeps } from "../shared/aws/approval-deps.js";
import { instrumented } from "../shared/aws/handler.js";
import { requireEnv } from "../shared/errors.js";

const baseUrl = requireEnv("APPROVAL_BASE_URL");
requireEnv("SENDER_EMAIL");

export const handler = instrumented("request-approval", RequestApprovalInput, async (input) =>
  requestApproval(await approvalDeps(baseUrl), input),
);

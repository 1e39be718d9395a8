import { ApprovalClockInput, approvalClock } from "../shared/agent/approvals.js";
import { approvalDeps } from "../shared/aws/approval-deps.js";
import { instrumented } from "../shared/aws/handler.js";
import { requireEnv } from "../shared/errors.js";

// Reminders carry fresh signed links, so the clock needs the same wiring as request-approval.
const baseUrl = requireEnv("APPROVAL_BASE_URL");
requireEnv("SENDER_EMAIL");

/** The approval clock: first wait, reminder, escalation, or "approval timed out". */
export const handler = instrumented("approval-timeout", ApprovalClockInput, async (input) =>
  approvalClock(approvalDeps(baseUrl), input),
);

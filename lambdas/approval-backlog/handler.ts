import { z } from "zod/v3";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, customer } from "../shared/aws/runtime.js";
import { telemetry } from "../shared/observability.js";
import { approvalBacklogOf } from "../shared/telemetry.js";

/** The EventBridge schedule's event; nothing in it is needed, so any object (a manual test invoke too) is accepted. */
const Input = z.object({}).passthrough();

/**
 * Every hour: how many approvals wait and how old the oldest is (PendingApprovals,
 * ApprovalBacklogAge). While approvals wait, the age alarm needs a data point even when nothing runs.
 */
export const handler = instrumented("approval-backlog", Input, async () => {
  const pending = (await agentDeps().ledger.listApprovals("pending")).filter((a) => a.customer === customer.name);
  const backlog = approvalBacklogOf(pending, new Date());
  // Nothing pending publishes nothing: no custom-metric cost before the first escalation, and the age
  // alarm treats missing data as OK.
  if (backlog.pending > 0) telemetry.approvalBacklog({ customer: customer.name, ...backlog });
  return backlog;
});

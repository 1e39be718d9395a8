import { z } from "zod";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, customer } from "../shared/aws/runtime.js";
import { telemetry } from "../shared/observability.js";
import { approvalBacklogOf } from "../shared/telemetry.js";

/** The EventBridge schedule's event; nothing in it is needed, so any object (a manual test invoke too) is accepted. */
const Input = z.object({}).passthrough();

/**
 * Every five minutes: how many approvals wait and how old the oldest is (PendingApprovals,
 * ApprovalBacklogAge). The age alarm needs a data point even when nothing runs, which no run step gives.
 */
export const handler = instrumented("approval-backlog", Input, async () => {
  const pending = (await agentDeps().ledger.listApprovals("pending")).filter((a) => a.customer === customer.name);
  const backlog = approvalBacklogOf(pending, new Date());
  telemetry.approvalBacklog({ customer: customer.name, ...backlog });
  return backlog;
});

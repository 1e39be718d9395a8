import { z } from "zod";
import { requestApproval } from "../shared/agent/approvals.js";
import { approvalDeps } from "../shared/aws/approval-deps.js";
import { instrumented } from "../shared/aws/handler.js";
import { requireEnv } from "../shared/errors.js";

const baseUrl = requireEnv("APPROVAL_BASE_URL");
requireEnv("SENDER_EMAIL");

const Input = z.object({ runId: z.string(), approvalId: z.string(), taskToken: z.string() });

export const handler = instrumented("request-approval", Input, async (input) =>
  requestApproval(await approvalDeps(baseUrl), input),
);

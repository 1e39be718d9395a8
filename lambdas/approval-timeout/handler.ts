import { z } from "zod";
import { approvalTimedOut } from "../shared/agent/approvals.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";

const Input = z.object({ runId: z.string(), approvalId: z.string() });

export const handler = instrumented("approval-timeout", Input, (input) => approvalTimedOut(agentDeps(), input));

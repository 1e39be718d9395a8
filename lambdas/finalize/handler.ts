import { z } from "zod";
import { finalize } from "../shared/agent/finalize.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { Step } from "../shared/steps.js";

const Input = z.object({ runId: z.string(), step: Step });

export const handler = instrumented("finalize", Input, (input) => finalize(agentDeps(), input));

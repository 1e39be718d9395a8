import { z } from "zod";
import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { ToolCallRef } from "../shared/steps.js";

const Input = z.object({ runId: z.string(), call: ToolCallRef.extend({ name: z.literal("validate") }) });

export const handler = instrumented("tool.validate", Input, (input) => runTool(agentDeps(), input));

import { z } from "zod";
import { runTool } from "../shared/agent/core.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { ToolCallRef } from "../shared/steps.js";

const Input = z.object({ runId: z.string(), call: ToolCallRef.extend({ name: z.literal("extract") }) });

export const handler = instrumented("tool.extract", Input, (input) => runTool(agentDeps(), input));

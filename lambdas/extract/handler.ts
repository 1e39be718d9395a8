import { z } from "zod";
import { runTool } from "../shared/agent/core.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { ToolCallRef } from "../shared/steps.js";

const Input = z.object({ runId: z.string(), call: ToolCallRef.extend({ name: z.enum(["extract", "fetch_context"]) }) });

export const handler = instrumented("tool.read", Input, (input) => runTool(agentDeps(), input));

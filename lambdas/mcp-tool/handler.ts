import { z } from "zod/v3";
import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { withMcp } from "../shared/aws/mcp-deps.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { isMountedToolName, NAMESPACE_SEPARATOR } from "../shared/mcp/client.js";
import { ToolCallRef } from "../shared/steps.js";

const Input = z.object({
  runId: z.string(),
  call: ToolCallRef.refine((c) => isMountedToolName(c.name), "a mounted tool name (<server>.<tool>)"),
});

/** A tool of the customer's MCP servers: connects to that one server, runs the call once (ledger), closes. */
export const handler = instrumented("tool.mcp", Input, (input) => {
  const server = input.call.name.split(NAMESPACE_SEPARATOR)[0] ?? "";
  return withMcp([server], (mcp) => runTool({ ...agentDeps(), mcp }, input));
});

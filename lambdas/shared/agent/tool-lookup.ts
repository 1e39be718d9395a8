/**
 * The one place the agent core (and the policy) looks tools up — the built-ins and the mounted
 * MCP tools: the turn loop's tool list, the guard's lookup and the escalation tool's name, the
 * tool a call runs. Swapping the registry for an injected one changes this file only.
 */
import { laneOfTool } from "../catalogue.js";
import type { ToolCallRef } from "../steps.js";
import type { Tool } from "../tools/types.js";

export { ESCALATE_TOOL, findTool, TOOLS, toolSpecs } from "../tools/registry.js";

/** The implementation a call runs: a mounted MCP tool, else one of this process's built-ins. */
export function toolToRun(name: string, mounted: readonly Tool[], builtins: readonly Tool[] = []): Tool {
  const tool = mounted.find((t) => t.name === name) ?? builtins.find((t) => t.name === name);
  if (!tool) throw new Error(`tool ${name} does not run in this function (unknown, or another lane's)`);
  return tool;
}

/** A call as the step hands it to the state machine: with the lane PickTool routes it by. */
export function withLane(call: ToolCallRef): ToolCallRef {
  const lane = laneOfTool(call.name);
  return lane ? { ...call, lane } : call;
}

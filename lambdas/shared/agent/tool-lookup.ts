/**
 * The one place the agent core (and the policy) looks tools up — the built-ins and the mounted
 * MCP tools: the turn loop's tool list, the guard's lookup and the escalation tool's name, the
 * tool a call runs. Swapping the registry for an injected one changes this file only.
 */
export { ESCALATE_TOOL, findTool, TOOLS, toolSpecs } from "../tools/registry.js";

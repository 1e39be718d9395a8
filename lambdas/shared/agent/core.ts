/**
 * The agent core's phases, re-exported for callers that use several (the local runtime, tests).
 * A Lambda handler imports the one phase module it runs, never this file, so its bundle holds
 * only that phase: ingest.ts, turn.ts (the turn loop; model-call.ts is its model call),
 * checkpoint.ts (a step's checkpoint), tool-run.ts (tool execution; save.ts the order write),
 * finalize.ts (outcome and failures), retry.ts, cost.ts. deps.ts holds what they share and
 * tool-lookup.ts the one place the core looks tools up.
 */
export { effectiveCounters } from "./checkpoint.js";
export { type AgentDeps, runIdFor } from "./deps.js";
export { finalize, recordFailure } from "./finalize.js";
export { documentRefOf, type IngestInput, ingest } from "./ingest.js";
export { compactMessages } from "./model-call.js";
export { RetryRefusedError, retryRun } from "./retry.js";
export { saveOrderOnce } from "./save.js";
export { runTool } from "./tool-run.js";
export { orchestrate } from "./turn.js";

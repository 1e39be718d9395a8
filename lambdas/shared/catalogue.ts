/**
 * The one catalogue of po-agent's Lambdas (roles), the lanes its tools are grouped in, and what each
 * built-in tool is allowed to do. Read by the CDK constructs (which functions exist, their handler
 * folders, the state machine's placeholders, the bucket grants of each tool Lambda), the local runtime
 * (the same roles run in-process), the state-machine checks and the tests. Its only import is the
 * tool registry's specs, which are light by rule (tools/define.ts): no tool's implementation loads.
 *
 * Adding a tool to an existing lane is one file and one registry line:
 * - `tools/<lane>/<name>.ts` exports `spec` (toolSpec: name, lane, effect, the bucket prefixes it
 *   reads and writes, description, zod input schema) and `run` (loading its code with
 *   `await import(...)`);
 * - one line `export { spec as <name> } from "./<lane>/<name>.js";` in `tools/builtins.ts`.
 * The rest follows: the model is shown the spec (JSON Schema from zod), the guard checks it, the
 * orchestrator writes the call's lane on the step and the state machine routes on the lane (no ASL
 * edit), the lane's Lambda bundles every file of its folder and accepts the tool (tools/lane.ts),
 * and its IAM grants follow from `reads`/`writes` (bucketAccessOfLane).
 * test/infra/catalogue.test.ts proves it by adding a tool in a copy of the code. A new lane is more:
 * its LANES entry, a role with a handler folder, and a Choice and a Task state in the ASL (the same
 * test names what is missing).
 */

import * as BUILT_INS from "./tools/builtins.js";

/** Key prefixes of the document bucket that code reads or writes (`<prefix>/...`). */
export type Prefix = "incoming" | "results" | "context" | "processed";

/**
 * What a tool may do to the world. The guard checks `write` and `dangerous` calls against the
 * customer's policy before they run; `dangerous` always needs a human.
 */
export type Effect = "read" | "write" | "dangerous";

/** A Lambda: its construct id (PascalCase, part of the CloudFormation contract) is the key. */
export interface RoleEntry {
  /** The folder under `lambdas/` whose `handler.ts` it runs. */
  readonly handler: string;
  /** The construct that creates it. */
  readonly group: "agent" | "tools" | "approval" | "endpoint";
  /** The `${...}` placeholder of `statemachines/agent.asl.json` bound to its ARN; absent when no state invokes it. */
  readonly placeholder?: string;
}

export const ROLES = {
  Ingest: { handler: "ingest", group: "agent", placeholder: "IngestFunctionArn" },
  Orchestrate: { handler: "orchestrate", group: "agent", placeholder: "OrchestrateFunctionArn" },
  Finalize: { handler: "finalize", group: "agent", placeholder: "FinalizeFunctionArn" },
  RecordFailure: { handler: "record-failure", group: "agent", placeholder: "RecordFailureFunctionArn" },
  ApprovalBacklog: { handler: "approval-backlog", group: "agent" },
  Extract: { handler: "extract", group: "tools", placeholder: "ExtractFunctionArn" },
  Validate: { handler: "validate", group: "tools", placeholder: "ValidateFunctionArn" },
  Transform: { handler: "transform", group: "tools", placeholder: "TransformFunctionArn" },
  Save: { handler: "save", group: "tools", placeholder: "SaveFunctionArn" },
  McpTool: { handler: "mcp-tool", group: "tools", placeholder: "McpToolFunctionArn" },
  RequestApproval: { handler: "request-approval", group: "approval", placeholder: "RequestApprovalFunctionArn" },
  ApprovalTimeout: { handler: "approval-timeout", group: "approval", placeholder: "ApprovalTimeoutFunctionArn" },
  ApprovalCallback: { handler: "approval-callback", group: "approval" },
  Server: { handler: "mcp-server", group: "endpoint" },
} as const satisfies Record<string, RoleEntry>;

export type RoleId = keyof typeof ROLES;
/** The folders under `lambdas/` that hold a `handler.ts`; each becomes one Lambda. */
export type HandlerName = (typeof ROLES)[RoleId]["handler"];
/** Roles the state machine invokes, by their ASL placeholder. */
export type Placeholder = Extract<(typeof ROLES)[RoleId], { placeholder: string }>["placeholder"];

/** A group of tools run by one Lambda, so each Lambda holds only its lane's code and grants. */
export interface LaneEntry {
  /** The Lambda that runs the lane's tools; absent for a lane that never runs as code. */
  readonly role?: RoleId;
  /** The Task state of the ASL's tool Map that invokes that Lambda. */
  readonly state?: string;
  readonly description: string;
}

export const LANES = {
  document: {
    role: "Extract",
    state: "ExtractTool",
    description: "read the run's document: parsers, PDF text, email threads, Claude reading scans",
  },
  check: { role: "Validate", state: "ValidateTool", description: "check a stored PO version" },
  version: { role: "Transform", state: "TransformTool", description: "make new PO versions" },
  save: { role: "Save", state: "SaveTool", description: "write saved orders" },
  mcp: { role: "McpTool", state: "McpTool", description: "the tools of the customer's MCP servers (<server>.<tool>)" },
  approval: { description: "escalate_to_human: becomes an approval request, never runs as a tool" },
} as const satisfies Record<string, LaneEntry>;

export type LaneId = keyof typeof LANES;
/** Lanes of built-in tools (mounted MCP tools are the `mcp` lane, named `<server>.<tool>`). */
export type BuiltInLane = Exclude<LaneId, "mcp">;

/** What one built-in tool is and may touch; its IAM follows from `reads` and `writes`. */
export interface ToolEntry {
  readonly lane: BuiltInLane;
  readonly effect: Effect;
  /** Bucket prefixes its code reads. @default - none */
  readonly reads?: readonly Prefix[];
  /** Bucket prefixes its code writes. @default - none */
  readonly writes?: readonly Prefix[];
}

/**
 * Every built-in tool, by name: the spec its file declares (lane, effect, reads, writes, description,
 * input schema), from the registry `tools/builtins.ts`, which holds one line per tool.
 */
export const TOOLS: { readonly [N in keyof typeof BUILT_INS]: (typeof BUILT_INS)[N] & ToolEntry } = BUILT_INS;

export type ToolName = keyof typeof TOOLS;

/** Every built-in tool name (mounted tools may not take one), by lane in LANES order: the order the model sees them. */
export const BUILT_IN_TOOL_NAMES: ToolName[] = (Object.keys(LANES) as LaneId[]).flatMap((lane) =>
  (Object.keys(TOOLS) as ToolName[]).filter((name) => TOOLS[name].lane === lane),
);

/**
 * Tool results larger than DEFAULTS.maxInlineResultBytes go to `results/` (the core writes them for
 * whichever tool produced them), so every Lambda that runs tools writes there.
 */
export const TOOL_RESULTS_PREFIX: Prefix = "results";

/** The built-in tools of one lane, in catalogue order. */
export function toolsOfLane(lane: BuiltInLane): ToolName[] {
  return BUILT_IN_TOOL_NAMES.filter((name) => TOOLS[name].lane === lane);
}

/** What separates a mounted tool's server from its name (`erp.lookup_vendor`; mcp/client.ts NAMESPACE_SEPARATOR). */
export const MOUNTED_TOOL_SEPARATOR = ".";

/**
 * The lane of a call, as the orchestrator writes it on the step for the state machine to route on: a
 * built-in tool's from TOOLS, `mcp` for a mounted `<server>.<tool>`, none for a name nothing runs (the
 * guard refuses those before they are dispatched; without a lane PickTool fails the run visibly).
 */
export function laneOfTool(name: string): LaneId | undefined {
  if (Object.hasOwn(TOOLS, name)) return TOOLS[name as ToolName].lane;
  return name.includes(MOUNTED_TOOL_SEPARATOR) ? "mcp" : undefined;
}

/** The lane whose Lambda is `role`, if it runs tools. */
export function laneOfRole(role: RoleId): LaneId | undefined {
  return (Object.keys(LANES) as LaneId[]).find((lane) => (LANES[lane] as LaneEntry).role === role);
}

/**
 * The bucket access a tool Lambda needs: the union of what its lane's tools declare, plus
 * `results/` for large results. The mounted-tool lane declares nothing of its own.
 */
export function bucketAccessOfLane(lane: LaneId): { read: Prefix[]; write: Prefix[] } {
  const tools = lane === "mcp" ? [] : toolsOfLane(lane).map((name) => TOOLS[name] as ToolEntry);
  const union = (pick: (t: ToolEntry) => readonly Prefix[] | undefined) => [
    ...new Set(tools.flatMap((t) => pick(t) ?? [])),
  ];
  return { read: union((t) => t.reads), write: [...new Set([TOOL_RESULTS_PREFIX, ...union((t) => t.writes)])] };
}

/** Construct id → handler folder (the `aws:cdk:path` segment before `/Resource` names the function). */
export const HANDLER_OF_ROLE: Record<string, HandlerName> = Object.fromEntries(
  Object.entries(ROLES).map(([id, role]) => [id, role.handler]),
);

/** ASL placeholder → role, for every role a state invokes. */
export const ROLE_OF_PLACEHOLDER = Object.fromEntries(
  Object.entries(ROLES).flatMap(([id, role]) => ("placeholder" in role ? [[role.placeholder, id]] : [])),
) as Record<Placeholder, RoleId>;

import type { z } from "zod/v3";
import { zodToJsonSchema } from "zod-to-json-schema";
import { BUILT_IN_TOOL_NAMES, TOOLS as CATALOGUE, type ToolName } from "../catalogue.js";
import type { McpTool } from "../mcp/client.js";
import type { Tool, ToolSpec } from "./types.js";

/**
 * The built-in tools as the model, the guard and the policy see them: name, description, effect and
 * input schema, each from its tool file's `spec` (listed in tools/builtins.ts). No implementation is
 * loaded here: each tool Lambda loads only its lane's files (tools/lane.ts), so the orchestrator's
 * bundle holds no parser.
 */

export type { RefArgs } from "./schemas.js";
export { Ref } from "./schemas.js";

/** `escalate_to_human` never runs as code: it becomes an approval request. */
export const ESCALATE_TOOL = "escalate_to_human" satisfies ToolName;

/** The input type each built-in tool's `run` receives, from its zod schema. */
export type ToolInputs = { [N in ToolName]: z.infer<(typeof CATALOGUE)[N]["input"]> };
export type AmendArgs = ToolInputs["amend"];
export type DraftArgs = ToolInputs["draft_po"];
export type EscalateArgs = ToolInputs["escalate_to_human"];

/** Every built-in tool's spec, by name. */
export const SPECS: { readonly [N in ToolName]: ToolSpec<ToolInputs[N]> & { name: N } } = CATALOGUE;

/** The built-in tools, in the order the model is shown them. */
export const TOOLS: readonly ToolSpec[] = BUILT_IN_TOOL_NAMES.map((name) => SPECS[name] as ToolSpec);

/** A built-in tool's spec, else one of the tools mounted from the customer's MCP servers for this run. */
export function findTool(name: string, mounted: readonly Tool[] = []): ToolSpec | undefined {
  return TOOLS.find((t) => t.name === name) ?? mounted.find((t) => t.name === name);
}

/**
 * JSON Schema for the model from the zod schema, by zod-to-json-schema: the model is told the same
 * patterns, limits and strictness the guard enforces. Mounted tools keep their server's schema.
 */
export function toolSpecs(
  mounted: readonly McpTool[] = [],
): { name: string; description: string; input_schema: Record<string, unknown> }[] {
  const builtIn = TOOLS.map((t) => ({ name: t.name, description: t.description, input_schema: modelSchema(t) }));
  return [
    ...builtIn,
    ...mounted.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema })),
  ];
}

const schemas = new WeakMap<ToolSpec, Record<string, unknown>>();

function modelSchema(tool: ToolSpec): Record<string, unknown> {
  const hit = schemas.get(tool);
  if (hit) return hit;
  const { $schema: _drop, ...schema } = zodToJsonSchema(tool.input, {
    $refStrategy: "none",
    target: "jsonSchema7",
  }) as Record<string, unknown>;
  const lean = { ...(withoutNestedStrictness(schema) as Record<string, unknown>), additionalProperties: false };
  schemas.set(tool, lean);
  return lean;
}

/**
 * `additionalProperties: false` is said once, at the top: repeated on every nested object it costs
 * ~100 tokens a request and tells the model nothing the top-level one and the guard do not.
 */
function withoutNestedStrictness(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutNestedStrictness);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node as Record<string, unknown>)
      .filter(([k, v]) => !(k === "additionalProperties" && v === false))
      .map(([k, v]) => [k, withoutNestedStrictness(v)]),
  );
}

import { z } from "zod";
import { zodToJsonSchema } from "zod-to-json-schema";
import { TOOLS as CATALOGUE, type ToolName } from "../catalogue.js";
import { AmendmentChange } from "../ledger/records.js";
import type { McpTool } from "../mcp/client.js";
import { NormalizedPo } from "../po/model.js";
import type { Tool, ToolSpec } from "./types.js";

/**
 * The built-in tools as the model, the guard and the policy see them: name, description, effect
 * (from the catalogue) and input schema. No implementation is imported here: each tool Lambda loads
 * only its lane's code (`tools/<lane>.ts`), so the orchestrator's bundle holds no parser.
 */

/** `escalate_to_human` never runs as code: it becomes an approval request. */
export const ESCALATE_TOOL = "escalate_to_human";

/** A reference to one stored version of the run's PO: what every PO tool takes instead of a PO. */
export const Ref = {
  artifactId: z.string().regex(/^po_[0-9a-f]{16}$/),
  version: z.number().int().positive().max(9999),
};
export type RefArgs = { artifactId: string; version: number };

export type AmendArgs = RefArgs & { reason: string; changes: AmendmentChange[] };
export type DraftArgs = { reason: string; po: Omit<NormalizedPo, "source" | "totals"> };
export type EscalateArgs = { reason: string; artifactId?: string; version?: number };

/** The input type each built-in tool's `run` receives. */
export interface ToolInputs {
  extract: Record<string, never>;
  fetch_context: { id: string };
  read_document: { id?: string };
  validate: RefArgs;
  transform: RefArgs;
  amend: AmendArgs;
  draft_po: DraftArgs;
  save: RefArgs;
  escalate_to_human: EscalateArgs;
}

const spec = <N extends ToolName>(
  name: N,
  description: string,
  input: z.ZodType<ToolInputs[N]>,
): ToolSpec<ToolInputs[N]> & { name: N } => ({ name, description, effect: CATALOGUE[name].effect, input });

/** Every built-in tool's spec, by name (one line per tool in the catalogue). */
export const SPECS: { [N in ToolName]: ToolSpec<ToolInputs[N]> & { name: N } } = {
  extract: spec(
    "extract",
    "Read the document: format, the stored PO's { artifactId, version }, the PO (minor units), low-confidence fields, an email thread (ids for fetch_context).",
    z.object({}).strict(),
  ),
  validate: spec(
    "validate",
    "Check a version (arithmetic, fields, duplicates, supplier); only one without errors can be saved.",
    z.object(Ref).strict(),
  ),
  transform: spec(
    "transform",
    "Normalize a version (Rec 20 units, ISO dates); new version only if changed.",
    z.object(Ref).strict(),
  ),
  amend: spec(
    "amend",
    "Change a version by RFC 6901 paths (/lines/0/unit; value or remove:true; /lines/- appends): a new version.",
    z
      .object({
        ...Ref,
        reason: z.string().min(1).max(500),
        changes: z.array(AmendmentChange).min(1).max(50),
      })
      .strict(),
  ),
  draft_po: spec(
    "draft_po",
    "A PO you built from read_document's text, as a new version; a human confirms it.",
    z
      .object({ reason: z.string().min(1).max(500), po: NormalizedPo.omit({ source: true, totals: true }) })
      .strict() as z.ZodType<DraftArgs>,
  ),
  save: spec(
    "save",
    "Write a validated version; the policy on it decides if a human signs first.",
    z.object(Ref).strict(),
  ),
  escalate_to_human: spec(
    ESCALATE_TOOL,
    "Ask a human what the rules leave open, with the PO reference; the run waits.",
    z
      .object({
        reason: z.string().min(1).max(2000),
        artifactId: Ref.artifactId.optional(),
        version: Ref.version.optional(),
      })
      .strict(),
  ),
  fetch_context: spec(
    "fetch_context",
    "A passage of the email thread in full by its cited id: m14:L3-7, an attachment m2/a1, a message m14.",
    z.object({ id: z.string().min(1).max(200) }).strict(),
  ),
  read_document: spec(
    "read_document",
    "Raw text of the document, paged: no id gives the parts and page 1; then ids like document#p2, body#p1, a1#p1.",
    z
      .object({
        id: z
          .string()
          .regex(/^[a-z0-9]{1,12}(#p\d{1,4})?$/)
          .optional(),
      })
      .strict(),
  ),
};

/** The built-in tools, in the order the model is shown them. */
export const TOOLS: readonly ToolSpec[] = Object.values(SPECS) as ToolSpec[];

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

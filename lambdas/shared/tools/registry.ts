import { z } from "zod";
import { DEFAULTS } from "../constants.js";
import { prepareContext } from "../context/prepare.js";
import { createFetchContextTool } from "../context/tool.js";
import type { ThreadMessage } from "../context/types.js";
import { DocumentError } from "../errors.js";
import { type McpTool, mcpToolSpecs } from "../mcp/client.js";
import type { ContentBlock } from "../model/types.js";
import { buildExtractionContent, readExtractionAnswer } from "../po/claude-extract.js";
import { detect } from "../po/detect.js";
import type { EmailThread } from "../po/email.js";
import { NormalizedPo } from "../po/model.js";
import { readDocument } from "../po/parse.js";
import { transformPo } from "../po/transform.js";
import { validatePo } from "../po/validate.js";
import type { Tool, ToolOutput } from "./types.js";

/** Tool names the model may call. `escalate_to_human` never runs as code: it becomes an approval request. */
export const ESCALATE_TOOL = "escalate_to_human";

const json = (value: unknown): ToolOutput => ({ content: JSON.stringify(value) });
const error = (message: string): ToolOutput => ({ content: message, isError: true });

const extract: Tool<Record<string, never>> = {
  name: "extract",
  description:
    "Read this run's purchase-order document (JSON, CSV, cXML, UBL, X12 850, PDF or email) and return its detected format, the normalized PO (money in integer minor units), fields read with low confidence, and, for an email, the thread compressed to what matters (cite ids with fetch_context). Takes no arguments.",
  effect: "read",
  input: z.object({}).strict(),
  async run(_input, ctx) {
    const bytes = await ctx.loadDocument();
    const name = ctx.document.key.split("/").pop() ?? ctx.document.key;
    try {
      const { format, po, lowConfidence, thread } = await (ctx.readDocument ?? readDocument)(bytes, name, {
        timeZone: ctx.customer.timeZone,
      });
      let context: string | undefined;
      if (thread && thread.messages.length > 0) {
        // Long threads go to the model compressed, with provenance; fetch_context reads any passage in full.
        const prepared = prepareContext(threadMessages(thread), {
          budgetTokens: ctx.customer.budgets.contextTokens ?? DEFAULTS.contextTokens,
          poNumber: po.poNumber,
        });
        await ctx.savePreparedContext(prepared);
        context = prepared.text;
      }
      return json({ format, po, ...(lowConfidence ? { lowConfidence } : {}), ...(context ? { context } : {}) });
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      // No text to parse (a scan, a photo): Claude reads it as a document block, checked by the same schema.
      const kind = detectKind(bytes);
      if (ctx.extractWithModel && (kind === "pdf" || kind === "image")) {
        try {
          const content = buildExtractionContent(bytes, name) as unknown as ContentBlock[];
          const answer = await ctx.extractWithModel(content);
          const po = readExtractionAnswer(answer, name, "pdf", { timeZone: ctx.customer.timeZone });
          return json({
            format: kind,
            po,
            extractedBy: "model",
            ...(po.source.lowConfidence ? { lowConfidence: po.source.lowConfidence } : {}),
          });
        } catch (modelErr) {
          if (modelErr instanceof DocumentError) return error(`cannot read the document: ${modelErr.message}`);
          throw modelErr;
        }
      }
      // A document the parser cannot read is the model's problem to report, not a crash.
      return error(`cannot read the document: ${err.message}`);
    }
  },
};

/** The detected kind, or undefined when detection itself refuses the bytes (a ZIP, junk). */
function detectKind(bytes: Uint8Array): string | undefined {
  try {
    return detect(bytes).kind;
  } catch {
    return undefined;
  }
}

/** The .eml parser's thread, as the context module reads it. */
function threadMessages(thread: EmailThread): ThreadMessage[] {
  return thread.messages.map((m, i) => ({
    id: m.messageId ?? `message-${i + 1}`,
    ...(m.from ? { from: m.from } : {}),
    ...(m.date ? { date: m.date } : {}),
    ...(m.subject ? { subject: m.subject } : {}),
    body: m.text,
  }));
}

const validate: Tool<{ po: NormalizedPo }> = {
  name: "validate",
  description:
    "Check a normalized PO: arithmetic of lines and totals, mandatory fields, duplicate PO numbers already saved, unknown suppliers. Returns findings with code, severity and message.",
  effect: "read",
  input: z.object({ po: NormalizedPo }).strict(),
  async run({ po }, ctx) {
    const existing = await ctx.findSavedOrder(po.poNumber);
    const findings = validatePo(po, ctx.customer, {
      existingRunForPoNumber: existing && existing.runId !== ctx.runId ? existing.runId : undefined,
    });
    return json({ findings, errors: findings.filter((f) => f.severity === "error").length });
  },
};

const transform: Tool<{ po: NormalizedPo }> = {
  name: "transform",
  description: "Normalize a PO: units to UN/ECE Recommendation 20 codes, dates to ISO 8601, currency codes.",
  effect: "read",
  input: z.object({ po: NormalizedPo }).strict(),
  async run({ po }) {
    return json({ po: transformPo(po) });
  },
};

const save: Tool<{ po: NormalizedPo }> = {
  name: "save",
  description:
    "Save the PO to the customer's order system. A write: the customer's approval policy decides whether it runs now or waits for a human.",
  effect: "write",
  input: z.object({ po: NormalizedPo }).strict(),
  async run({ po }, ctx) {
    const { created } = await ctx.saveOrder({
      poNumber: po.poNumber,
      po,
      idempotencyKey: `${ctx.runId}`,
    });
    return json({ saved: true, poNumber: po.poNumber, replayed: !created });
  },
};

const escalate: Tool<{ reason: string; po?: NormalizedPo }> = {
  name: ESCALATE_TOOL,
  description:
    "Ask a human approver to decide something you cannot decide from the rules (for example an unknown supplier). The run waits for the answer.",
  effect: "read",
  input: z.object({ reason: z.string().min(1), po: NormalizedPo.optional() }).strict(),
  async run() {
    throw new Error("escalate_to_human is handled by the approval gate, never executed as a tool");
  },
};

const fetchContext = createFetchContextTool((ctx) => ctx.loadPreparedContext());

export const TOOLS: readonly Tool[] = [extract, validate, transform, save, escalate, fetchContext] as Tool[];

/** A built-in tool, else one of the tools mounted from the customer's MCP servers for this run. */
export function findTool(name: string, mounted: readonly Tool[] = []): Tool | undefined {
  return TOOLS.find((t) => t.name === name) ?? mounted.find((t) => t.name === name);
}

/** JSON schema for the model, from the zod schema (a small converter: our schemas are plain objects). */
export function toolSpecs(
  mounted: readonly McpTool[] = [],
): { name: string; description: string; input_schema: Record<string, unknown> }[] {
  const builtIn = TOOLS.map((t) => ({
    name: t.name,
    description: t.description,
    input_schema: zodToJsonSchema(t.input),
  }));
  // Mounted tools keep their server's JSON schema: it says more to the model than our permissive zod copy.
  return [...builtIn, ...mcpToolSpecs(mounted)];
}

function zodToJsonSchema(schema: z.ZodTypeAny): Record<string, unknown> {
  const def = schema._def as { typeName: string };
  switch (def.typeName) {
    case "ZodObject": {
      const shape = (schema as z.ZodObject<z.ZodRawShape>).shape;
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (const [k, v] of Object.entries(shape)) {
        properties[k] = zodToJsonSchema(v as z.ZodTypeAny);
        if (!(v as z.ZodTypeAny).isOptional()) required.push(k);
      }
      return { type: "object", properties, ...(required.length ? { required } : {}) };
    }
    case "ZodOptional":
      return zodToJsonSchema((schema as z.ZodOptional<z.ZodTypeAny>).unwrap());
    case "ZodArray":
      return { type: "array", items: zodToJsonSchema((schema as z.ZodArray<z.ZodTypeAny>).element) };
    case "ZodString":
      return { type: "string" };
    case "ZodNumber":
      return { type: (schema as z.ZodNumber).isInt ? "integer" : "number" };
    case "ZodBoolean":
      return { type: "boolean" };
    case "ZodEnum":
      return { type: "string", enum: (schema as z.ZodEnum<[string, ...string[]]>).options };
    case "ZodLiteral":
      return { const: (schema as z.ZodLiteral<unknown>).value };
    default:
      return {};
  }
}

import { z } from "zod";
import { zodToJsonSchema } from "zod-to-json-schema";
import {
  ArtifactError,
  applyChanges,
  artifactIdFor,
  changedLeaves,
  classesOf,
  findVersion,
  needsHumanOf,
  poHash,
  poOf,
  provenanceAfter,
} from "../agent/artifacts.js";
import { DEFAULTS } from "../constants.js";
import { prepareContext } from "../context/prepare.js";
import { createFetchContextTool } from "../context/tool.js";
import type { ThreadMessage } from "../context/types.js";
import { DocumentError } from "../errors.js";
import {
  type AmendmentChange,
  AmendmentChange as AmendmentChangeSchema,
  type AmendmentClass,
  type ArtifactRecord,
} from "../ledger/records.js";
import { type McpTool, mcpToolSpecs } from "../mcp/client.js";
import type { ContentBlock } from "../model/types.js";
import { buildExtractionContent, readExtractionAnswer } from "../po/claude-extract.js";
import { detect } from "../po/detect.js";
import type { EmailThread } from "../po/email.js";
import { NormalizedPo } from "../po/model.js";
import { parseOptionsFor, readDocument, readDocumentAt } from "../po/parse.js";
import { transformPo } from "../po/transform.js";
import { validatePo } from "../po/validate.js";
import { readDocumentTool } from "./read-document.js";
import type { Tool, ToolContext, ToolOutput } from "./types.js";

/** Tool names the model may call. `escalate_to_human` never runs as code: it becomes an approval request. */
export const ESCALATE_TOOL = "escalate_to_human";

const json = (value: unknown): ToolOutput => ({ content: JSON.stringify(value) });
const error = (message: string): ToolOutput => ({ content: message, isError: true });

const extract: Tool<Record<string, never>> = {
  name: "extract",
  description:
    "Read the document: format, the stored PO's { artifactId, version }, the PO (minor units), low-confidence fields, an email thread (ids for fetch_context).",
  effect: "read",
  input: z.object({}).strict(),
  async run(_input, ctx) {
    const bytes = await ctx.loadDocument();
    const name = ctx.document.key.split("/").pop() ?? ctx.document.key;
    try {
      // A child run of a multi-PO document reads its own PO only (agent/fanout.ts); it is read in
      // process (ctx.readDocument, the local worker with a time budget, reads one-PO documents).
      const at = ctx.document.position;
      const opts = parseOptionsFor(ctx.customer);
      const { format, po, lowConfidence, thread } = at
        ? await readDocumentAt(bytes, name, at, opts)
        : await (ctx.readDocument ?? readDocument)(bytes, name, opts);
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
      const stored = await storeDocumentVersion(ctx, po, []);
      return json({
        format,
        artifact: refOf(stored),
        po: forModel(poOf(stored)),
        ...(lowConfidence ? { lowConfidence } : {}),
        ...(context ? { context } : {}),
      });
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      // No text to parse (a scan, a photo): Claude reads it as a document block, checked by the same schema.
      const kind = detectKind(bytes);
      if (ctx.extractWithModel && (kind === "pdf" || kind === "image")) {
        try {
          const content = buildExtractionContent(bytes, name) as unknown as ContentBlock[];
          const answer = await ctx.extractWithModel(content);
          const read = readExtractionAnswer(answer, name, "pdf", { timeZone: ctx.customer.timeZone });
          // A model read the fields: a human confirms them before anything is written.
          const stored = await storeDocumentVersion(ctx, read, ["model-draft"]);
          const po = poOf(stored);
          return json({
            format: kind,
            artifact: refOf(stored),
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
      return error(`cannot read the document: ${err.message} (read_document shows its raw text)`);
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

/** The PO as the model reads it: field provenance stays in the ledger (it is long and not the model's to use). */
function forModel(po: NormalizedPo): Omit<NormalizedPo, "source"> & { source: Omit<NormalizedPo["source"], "fields"> } {
  const { fields: _fields, ...source } = po.source;
  return { ...po, source };
}

/** A reference to one stored version of the run's PO: what every PO tool takes instead of a PO. */
const Ref = {
  artifactId: z.string().regex(/^po_[0-9a-f]{16}$/),
  version: z.number().int().positive().max(9999),
};
type RefArgs = { artifactId: string; version: number };

const refOf = (a: ArtifactRecord): RefArgs => ({ artifactId: a.artifactId, version: a.version });

/** Version 1: what the parser (or, flagged, a model) read from the document, normalized by code. */
async function storeDocumentVersion(
  ctx: ToolContext,
  read: NormalizedPo,
  needsHuman: AmendmentClass[],
): Promise<ArtifactRecord> {
  const po = transformPo(read);
  const fromParser = (read.source.fields ?? []).map((f) => ({ field: f.field, from: f.from }));
  return ctx.artifacts.put({
    artifactId: artifactIdFor(ctx.runId, ctx.document.sha256),
    documentSha256: ctx.document.sha256,
    origin: "document",
    po: po as unknown as Record<string, unknown>,
    poSha256: poHash(po),
    provenance: provenanceAfter(fromParser, read, po, "transform"),
    needsHuman,
  });
}

/** The version a reference names in this run, or the tool error the model reads. */
async function versionOf(
  ctx: ToolContext,
  ref: RefArgs,
): Promise<{ artifact: ArtifactRecord; po: NormalizedPo } | { error: ToolOutput }> {
  const all = await ctx.artifacts.list();
  const artifact = findVersion(all, ref);
  if (!artifact) return { error: error(`artifact ${ref.artifactId} has no version ${ref.version} in this run`) };
  try {
    return { artifact, po: poOf(artifact) };
  } catch (err) {
    if (err instanceof ArtifactError) return { error: error(err.message) };
    throw err;
  }
}

const validate: Tool<RefArgs> = {
  name: "validate",
  description: "Check a version (arithmetic, fields, duplicates, supplier); only one without errors can be saved.",
  effect: "read",
  input: z.object(Ref).strict(),
  async run(ref, ctx) {
    const got = await versionOf(ctx, ref);
    if ("error" in got) return got.error;
    const existing = await ctx.findSavedOrder(got.po.poNumber);
    const findings = validatePo(got.po, ctx.customer, {
      existingRunForPoNumber: existing && existing.runId !== ctx.runId ? existing.runId : undefined,
    });
    const errors = findings.filter((f) => f.severity === "error").length;
    await ctx.artifacts.markValidated(ref, {
      errors,
      warnings: findings.filter((f) => f.severity === "warning").length,
    });
    return json({ ...ref, findings, errors });
  },
};

const transform: Tool<RefArgs> = {
  name: "transform",
  description: "Normalize a version (Rec 20 units, ISO dates); new version only if changed.",
  effect: "read",
  input: z.object(Ref).strict(),
  async run(ref, ctx) {
    const got = await versionOf(ctx, ref);
    if ("error" in got) return got.error;
    const out = transformPo(got.po);
    const changed = changedLeaves(got.po, out).map((c) => c.path);
    if (changed.length === 0) return json({ ...ref, changed: [] });
    const stored = await ctx.artifacts.put({
      artifactId: ref.artifactId,
      documentSha256: got.artifact.documentSha256,
      origin: "transform",
      parentVersion: ref.version,
      po: out as unknown as Record<string, unknown>,
      poSha256: poHash(out),
      provenance: provenanceAfter(got.artifact.provenance, got.po, out, "transform"),
      needsHuman: got.artifact.needsHuman,
    });
    return json({ ...refOf(stored), changed });
  },
};

const amend: Tool<RefArgs & { reason: string; changes: AmendmentChange[] }> = {
  name: "amend",
  description:
    "Change a version by RFC 6901 paths (/lines/0/unit; value or remove:true; /lines/- appends): a new version.",
  effect: "read",
  input: z
    .object({
      ...Ref,
      reason: z.string().min(1).max(500),
      changes: z.array(AmendmentChangeSchema).min(1).max(50),
    })
    .strict(),
  async run({ reason, changes, ...ref }, ctx) {
    const got = await versionOf(ctx, ref);
    if ("error" in got) return got.error;
    const applied = applyChanges(got.po, changes);
    if ("error" in applied) return error(`amend: ${applied.error}`);
    const classes = classesOf(got.po, applied.po);
    const stored = await ctx.artifacts.put({
      artifactId: ref.artifactId,
      documentSha256: got.artifact.documentSha256,
      origin: "amendment",
      parentVersion: ref.version,
      po: applied.po as unknown as Record<string, unknown>,
      poSha256: poHash(applied.po),
      provenance: provenanceAfter(got.artifact.provenance, got.po, applied.po, `amendment v${ref.version}`),
      amendment: { reason, changes, classes },
      needsHuman: needsHumanOf(ctx.customer, got.artifact.needsHuman, classes),
    });
    return json({ ...refOf(stored), classes, needsHuman: stored.needsHuman });
  },
};

const draft: Tool<{ reason: string; po: Omit<NormalizedPo, "source" | "totals"> }> = {
  name: "draft_po",
  description: "A PO you built from read_document's text, as a new version; a human confirms it.",
  effect: "read",
  input: z
    .object({ reason: z.string().min(1).max(500), po: NormalizedPo.omit({ source: true, totals: true }) })
    .strict(),
  async run({ reason, po: built }, ctx) {
    const name = ctx.document.key.split("/").pop() ?? ctx.document.key;
    const po = NormalizedPo.parse({
      ...built,
      source: { format: "json", document: name, method: "model", lowConfidence: ["(whole PO drafted by the model)"] },
    });
    const all = await ctx.artifacts.list();
    const doc = all.find((a) => a.origin === "document");
    const classes = doc ? classesOf(poOf(doc), po) : [];
    const stored = await ctx.artifacts.put({
      artifactId: artifactIdFor(ctx.runId, ctx.document.sha256),
      documentSha256: ctx.document.sha256,
      origin: "model-draft",
      po: po as unknown as Record<string, unknown>,
      poSha256: poHash(po),
      provenance: [{ field: "/", from: `model draft from raw text: ${reason.slice(0, 200)}` }],
      amendment: { reason, changes: [], classes: [...classes, "model-draft"] },
      needsHuman: needsHumanOf(ctx.customer, [], [...classes, "model-draft"]),
    });
    return json({ ...refOf(stored), needsHuman: stored.needsHuman });
  },
};

const save: Tool<RefArgs> = {
  name: "save",
  description: "Write a validated version; the policy on it decides if a human signs first.",
  effect: "write",
  input: z.object(Ref).strict(),
  async run(ref, ctx) {
    const got = await versionOf(ctx, ref);
    if ("error" in got) return got.error;
    if (got.artifact.validation?.errors !== 0) {
      return error(`save: version ${ref.version} has not passed validate without errors`);
    }
    const { created } = await ctx.saveOrder({
      poNumber: got.po.poNumber,
      po: got.po,
      idempotencyKey: `${ctx.runId}`,
    });
    return json({ saved: true, poNumber: got.po.poNumber, ...ref, replayed: !created });
  },
};

const escalate: Tool<{ reason: string; artifactId?: string; version?: number }> = {
  name: ESCALATE_TOOL,
  description: "Ask a human what the rules leave open, with the PO reference; the run waits.",
  effect: "read",
  input: z
    .object({
      reason: z.string().min(1).max(2000),
      artifactId: Ref.artifactId.optional(),
      version: Ref.version.optional(),
    })
    .strict(),
  async run() {
    throw new Error("escalate_to_human is handled by the approval gate, never executed as a tool");
  },
};

const fetchContext = createFetchContextTool((ctx) => ctx.loadPreparedContext());

export const TOOLS: readonly Tool[] = [
  extract,
  validate,
  transform,
  amend,
  draft,
  save,
  escalate,
  fetchContext,
  readDocumentTool,
] as Tool[];

/** A built-in tool, else one of the tools mounted from the customer's MCP servers for this run. */
export function findTool(name: string, mounted: readonly Tool[] = []): Tool | undefined {
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
  return [...builtIn, ...mcpToolSpecs(mounted)];
}

const schemas = new WeakMap<Tool, Record<string, unknown>>();

function modelSchema(tool: Tool): Record<string, unknown> {
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

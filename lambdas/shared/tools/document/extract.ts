import { z } from "zod/v3";
import type { ThreadMessage } from "../../context/types.js";
import type { ContentBlock } from "../../model/types.js";
import type { EmailThread } from "../../po/email.js";
import { type RunOf, toolSpec } from "../define.js";
import type * as Lib from "../lib/document.js";

export const spec = toolSpec({
  name: "extract",
  lane: "document",
  effect: "read",
  reads: ["incoming"],
  writes: ["context"],
  description:
    "Read the document: format, the stored PO's { artifactId, version }, the PO (minor units), low-confidence fields, an email thread (ids for fetch_context).",
  input: z.object({}).strict(),
});

/** Parsers, PDF text, email threads; Claude reads a scan or a photo when the run's model is Claude. */
export const run: RunOf<typeof spec, typeof Lib> = async (_input, ctx, lib) => {
  const {
    buildExtractionContent,
    DEFAULTS,
    DocumentError,
    detect,
    error,
    forModel,
    hasReadableText,
    json,
    parseOptionsFor,
    poOf,
    prepareContext,
    readDocument,
    readDocumentAt,
    readExtractionAnswer,
    refOf,
    storeDocumentVersion,
  } = lib;
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
    const kind = detectKind(detect, bytes);
    if (ctx.extractWithModel && (kind === "pdf" || kind === "image")) {
      try {
        const content = buildExtractionContent(bytes, name) as unknown as ContentBlock[];
        const answer = await ctx.extractWithModel(content);
        // Undefined: the run's model is not Claude after all (the offline model): refused as below.
        if (answer !== undefined) {
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
        }
      } catch (modelErr) {
        if (modelErr instanceof DocumentError) return error(`cannot read the document: ${modelErr.message}`);
        throw modelErr;
      }
    }
    // A document the parser cannot read is the model's problem to report, not a crash.
    const hint = hasReadableText(bytes, kind, err.message)
      ? " (read_document shows its raw text)"
      : " (it holds no text to read)";
    return error(`cannot read the document: ${err.message}${hint}`);
  }
};

/** The detected kind, or undefined when detection itself refuses the bytes (a ZIP, junk). */
function detectKind(detect: (bytes: Uint8Array) => { kind: string }, bytes: Uint8Array): string | undefined {
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

import { poOf } from "../agent/artifacts.js";
import { DEFAULTS } from "../constants.js";
import { prepareContext } from "../context/prepare.js";
import { fetchContextRun } from "../context/tool.js";
import type { ThreadMessage } from "../context/types.js";
import { DocumentError } from "../errors.js";
import type { ContentBlock } from "../model/types.js";
import { buildExtractionContent, readExtractionAnswer } from "../po/claude-extract.js";
import { detect } from "../po/detect.js";
import type { EmailThread } from "../po/email.js";
import { parseOptionsFor, readDocument, readDocumentAt } from "../po/parse.js";
import { error, forModel, implement, json, refOf, storeDocumentVersion } from "./common.js";
import { hasReadableText, readDocumentRun } from "./read-document.js";
import type { Tool } from "./types.js";

/** The document lane (the Extract Lambda): parsers, PDF text, email threads, Claude reading scans. */

const extract = implement("document", "extract", async (_input, ctx) => {
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
    const hint = hasReadableText(bytes, kind, err.message)
      ? " (read_document shows its raw text)"
      : " (it holds no text to read)";
    return error(`cannot read the document: ${err.message}${hint}`);
  }
});

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

const fetchContext = implement(
  "document",
  "fetch_context",
  fetchContextRun((ctx) => ctx.loadPreparedContext()),
);

const readDocumentTool = implement("document", "read_document", readDocumentRun);

/** What the Extract Lambda runs. */
export const DOCUMENT_TOOLS: readonly Tool[] = [extract, fetchContext, readDocumentTool] as Tool[];

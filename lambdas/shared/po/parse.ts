/**
 * Purchase-order documents → `NormalizedPo`. The format is detected by content, never by the
 * file name (detect.ts), and read by its own module behind the registry in formats.ts: JSON
 * (json.ts), CSV (csv.ts), cXML OrderRequest and UBL 2 Order (xml.ts), X12 850 (x12.ts),
 * EDIFACT ORDERS (edifact.ts), PDF text layer (pdf.ts) and email with attachments (email.ts).
 *
 * One document may hold several POs (an X12 interchange with several 850s, a CSV with several
 * PO numbers, an EDIFACT interchange with several ORDERS, an email with several PO attachments).
 * `parseDocumentAll` / `readDocumentAll` return each with its position; `parseDocument` /
 * `readDocument` read a document that holds exactly one and refuse one holding more, naming them.
 *
 * `parseDocument*` are synchronous and read the text formats; `readDocument*` read everything,
 * PDF and email included (their parsers are asynchronous). Arithmetic is not checked here (a line
 * amount that disagrees is the validator's finding); what cannot be read as a PO at all throws a
 * `PoDocumentError` (a `DocumentError`) carrying the detected format and every missing field.
 */
import { DocumentError } from "../errors.js";
import { detect } from "./detect.js";
import { type EmailThread, readEmailAll } from "./email.js";
import { type ParseOptions, PoDocumentError } from "./fields.js";
import { FORMATS, type TextFormat } from "./formats.js";
import type { DocumentFormat, NormalizedPo } from "./model.js";
import { readPdf } from "./pdf.js";

export type { ParseOptions } from "./fields.js";
export { PoDocumentError } from "./fields.js";
export { parseOptionsFor } from "./formats.js";
export { parseJsonPo } from "./json.js";
export type { DocumentFormat } from "./model.js";

export interface ParsedDocument {
  /** The document's own format: `email` for an email whose attachment held the PO (see `po.source`). */
  format: DocumentFormat;
  po: NormalizedPo;
  /** Fields a heuristic read (PDF text layer, a missing default): a human should check them. */
  lowConfidence?: string[];
  /** For an email: the messages of the thread in order, with their ids. */
  thread?: EmailThread;
}

/** One PO of a document, with its 1-based position in it (the order the document gives them). */
export interface PositionedPo extends ParsedDocument {
  position: number;
}

/** The text formats, synchronously. A PDF or an email needs `readDocument`. */
export function parseDocument(bytes: Uint8Array, fileName: string, opts: ParseOptions = {}): ParsedDocument {
  return single(parseDocumentAll(bytes, fileName, opts));
}

/** Every PO of a text-format document, in document order. */
export function parseDocumentAll(bytes: Uint8Array, fileName: string, opts: ParseOptions = {}): PositionedPo[] {
  const d = detect(bytes);
  if (d.kind === "pdf" || d.kind === "email") {
    throw new DocumentError(
      `the document is ${d.kind === "pdf" ? "a PDF" : "an email"}; it is read with readDocument()`,
    );
  }
  if (d.kind === "image") throw imageError(d.mediaType);
  return positioned(
    d.format,
    withFormat(d.format, () => parseText(d.format, d.text, fileName, opts)),
  );
}

/** Every format, PDF and email included. Size and content checks come before any parser runs. */
export async function readDocument(
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions = {},
  depth = 0,
): Promise<ParsedDocument> {
  return single(await readDocumentAll(bytes, fileName, opts, depth));
}

/** Every PO of any document, in document order; an email's come with its thread. */
export async function readDocumentAll(
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions = {},
  depth = 0,
): Promise<PositionedPo[]> {
  const d = detect(bytes);
  switch (d.kind) {
    case "pdf":
      return positioned("pdf", [await withFormatAsync("pdf", () => readPdf(bytes, fileName, opts))]);
    case "image":
      throw imageError(d.mediaType);
    case "email": {
      const { pos, thread } = await withFormatAsync("email", () =>
        readEmailAll(bytes, fileName, opts, depth, readDocumentAll),
      );
      return positioned("email", pos).map((p) => ({ ...p, thread }));
    }
    default:
      return positioned(
        d.format,
        withFormat(d.format, () => parseText(d.format, d.text, fileName, opts)),
      );
  }
}

/**
 * The PO at `position` (1-based, as `readDocumentAll` numbers them) of a document: what a run
 * created for one PO of a multi-PO file reads, so it never sees its siblings.
 */
export async function readDocumentAt(
  bytes: Uint8Array,
  fileName: string,
  position: number,
  opts: ParseOptions = {},
): Promise<PositionedPo> {
  const all = await readDocumentAll(bytes, fileName, opts);
  const found = all.find((p) => p.position === position);
  if (!found) {
    throw new PoDocumentError(
      `the document holds ${all.length} purchase order${all.length === 1 ? "" : "s"}; there is none at position ${position}`,
      { format: all[0]?.format },
    );
  }
  return found;
}

function parseText(format: TextFormat, text: string, fileName: string, opts: ParseOptions): NormalizedPo[] {
  const reader = FORMATS.find((r) => r.format === format);
  if (!reader) throw new DocumentError(`no reader for the ${format} format`);
  const pos = reader.parseAll(text, fileName, opts);
  if (pos.length === 0) throw new PoDocumentError(`the ${format} document holds no purchase order`, { format });
  return pos;
}

/** A document holding one PO → that PO; several → a refusal naming them, so nothing is dropped silently. */
function single(pos: PositionedPo[]): ParsedDocument {
  const [first, ...more] = pos;
  if (!first) throw new DocumentError("the document holds no purchase order");
  if (more.length === 0) {
    const { position: _position, ...doc } = first;
    return doc;
  }
  const names = pos.map((p) => p.po.poNumber).join(", ");
  throw new PoDocumentError(
    `the ${first.format.toUpperCase()} document holds ${pos.length} purchase orders (${names}); a run reads one PO per document: send them one per file (po-agent extract shows each)`,
    { format: first.format },
  );
}

/** Numbers the POs of a document; with more than one, each PO's source says which it is. */
function positioned(format: DocumentFormat, pos: NormalizedPo[]): PositionedPo[] {
  return pos.map((po, i) => {
    const part = po.source.container ? `${po.source.container.part}: ` : "";
    const label = `${part}${po.source.position?.label ?? `PO ${po.poNumber}`}`;
    const labelled =
      pos.length > 1 ? { ...po, source: { ...po.source, position: { index: i + 1, of: pos.length, label } } } : po;
    const low = labelled.source.lowConfidence;
    return { format, po: labelled, position: i + 1, ...(low && low.length > 0 ? { lowConfidence: low } : {}) };
  });
}

/** A refusal from a recognised document carries its format (for `extract --json` and the run's reason). */
function withFormat<T>(format: DocumentFormat, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw tagged(err, format);
  }
}

async function withFormatAsync<T>(format: DocumentFormat, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw tagged(err, format);
  }
}

function tagged(err: unknown, format: DocumentFormat): unknown {
  if (err instanceof PoDocumentError && err.format) return err;
  if (err instanceof PoDocumentError) {
    return new PoDocumentError(err.message, { format, missing: err.missing }, { cause: err.cause });
  }
  if (err instanceof DocumentError) return new PoDocumentError(err.message, { format }, { cause: err.cause });
  return err;
}

function imageError(mediaType: string): DocumentError {
  return new DocumentError(
    `the document is an image (${mediaType}) with no text to read offline; a Claude model reads it as an image block (see claude-extract.ts)`,
  );
}

/**
 * What the readers of a document return (parse.ts, asynchronous, every format; parse-text.ts,
 * synchronous, the text formats): its POs numbered in document order, a refusal tagged with the
 * detected format, and the one-PO form that refuses a document holding several.
 */
import { DocumentError } from "../errors.js";
import type { EmailThread } from "./email.js";
import { PoDocumentError } from "./fields.js";
import type { DocumentFormat, NormalizedPo } from "./model.js";

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

/** A document holding one PO → that PO; several → a refusal naming them, so nothing is dropped silently. */
export function single(pos: PositionedPo[]): ParsedDocument {
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
export function positioned(format: DocumentFormat, pos: NormalizedPo[]): PositionedPo[] {
  return pos.map((po, i) => {
    const part = po.source.container ? `${po.source.container.part}: ` : "";
    const label = `${part}${po.source.position?.label ?? `PO ${po.poNumber}`}`;
    const labelled =
      pos.length > 1 ? { ...po, source: { ...po.source, position: { index: i + 1, of: pos.length, label } } } : po;
    const low = labelled.source.lowConfidence;
    return { format, po: labelled, position: i + 1, ...(low && low.length > 0 ? { lowConfidence: low } : {}) };
  });
}

/** A text format's POs; none is a refusal. A refusal from a recognised document carries its format. */
export function textPos(format: DocumentFormat, read: () => NormalizedPo[]): NormalizedPo[] {
  const pos = withFormat(format, read);
  if (pos.length === 0) throw new PoDocumentError(`the ${format} document holds no purchase order`, { format });
  return pos;
}

/** A refusal from a recognised document carries its format (for `extract --json` and the run's reason). */
function withFormat<T>(format: DocumentFormat, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw tagged(err, format);
  }
}

export async function withFormatAsync<T>(format: DocumentFormat, read: () => Promise<T>): Promise<T> {
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

export function imageError(mediaType: string): DocumentError {
  return new DocumentError(
    `the document is an image (${mediaType}) with no text to read offline; a Claude model reads it as an image block (see claude-extract.ts)`,
  );
}

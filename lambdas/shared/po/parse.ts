/**
 * Purchase-order documents → `NormalizedPo`. The format is detected by content, never by the
 * file name (detect.ts), and read by its own module behind the registry in formats.ts: JSON
 * (json.ts), CSV (csv.ts), cXML OrderRequest and UBL 2 Order (xml.ts), X12 850 (x12.ts),
 * EDIFACT ORDERS (edifact.ts), PDF text layer (pdf.ts) and email with attachments (email.ts).
 *
 * One document may hold several POs (an X12 interchange with several 850s, a CSV with several
 * PO numbers, an EDIFACT interchange with several ORDERS, an email with several PO attachments).
 * `readDocumentAll` returns each with its position; `readDocument` reads a document that holds
 * exactly one and refuses one holding more, naming them.
 *
 * These read every format, and load the one parser a document needs when it is met (its module,
 * and in a Lambda bundle its chunk: postal-mime, csv-parse, fast-xml-parser and PDF.js load only
 * for their formats). `parseDocument*` (parse-text.ts) read the text formats synchronously. Arithmetic is
 * not checked here (a line amount that disagrees is the validator's finding); what cannot be read
 * as a PO at all throws a `PoDocumentError` (a `DocumentError`) carrying the detected format and
 * every missing field.
 */
import { detect } from "./detect.js";
import { type ParseOptions, PoDocumentError } from "./fields.js";
import { readerOf } from "./formats.js";
import {
  imageError,
  type ParsedDocument,
  type PositionedPo,
  positioned,
  single,
  textPos,
  withFormatAsync,
} from "./positions.js";

export type { ParseOptions } from "./fields.js";
export { PoDocumentError } from "./fields.js";
export { parseOptionsFor } from "./formats.js";
export { parseJsonPo } from "./json.js";
export type { DocumentFormat } from "./model.js";
export type { ParsedDocument, PositionedPo } from "./positions.js";

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
    case "pdf": {
      const { readPdf } = await import("./pdf.js");
      return positioned("pdf", [await withFormatAsync("pdf", () => readPdf(bytes, fileName, opts))]);
    }
    case "image":
      throw imageError(d.mediaType);
    case "email": {
      const { readEmailAll } = await import("./email.js");
      const { pos, thread } = await withFormatAsync("email", () =>
        readEmailAll(bytes, fileName, opts, depth, readDocumentAll),
      );
      return positioned("email", pos).map((p) => ({ ...p, thread }));
    }
    default: {
      const parse = await readerOf(d.format).parser();
      return positioned(
        d.format,
        textPos(d.format, () => parse(d.text, fileName, opts)),
      );
    }
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

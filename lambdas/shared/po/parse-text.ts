/**
 * The text formats read synchronously: `parseDocument` / `parseDocumentAll` detect the format as
 * `readDocument*` do (parse.ts) and read it with the same parsers, imported here all at once (a
 * caller that reads any text format synchronously needs every one of them). PDF and email are
 * asynchronous: they are read with `readDocument`.
 */
import { DocumentError } from "../errors.js";
import { parseCsvAll } from "./csv.js";
import { detect } from "./detect.js";
import { parseEdifactAll } from "./edifact.js";
import type { ParseOptions } from "./fields.js";
import type { TextFormat, TextParser } from "./formats.js";
import { parseJsonPo } from "./json.js";
import { imageError, type ParsedDocument, type PositionedPo, positioned, single, textPos } from "./positions.js";
import { parseX12All } from "./x12.js";
import { parseCxml, parseUbl } from "./xml.js";

/** Each text format's parser, as the registry's `parser()` loads it (formats.ts). */
const PARSERS: Record<TextFormat, TextParser> = {
  json: (text, fileName, opts) => [parseJsonPo(text, fileName, opts)],
  cxml: (text, fileName, opts) => [parseCxml(text, fileName, opts)],
  ubl: (text, fileName, opts) => [parseUbl(text, fileName, opts)],
  x12: parseX12All,
  edifact: parseEdifactAll,
  csv: parseCsvAll,
};

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
  const parse = PARSERS[d.format];
  return positioned(
    d.format,
    textPos(d.format, () => parse(d.text, fileName, opts)),
  );
}

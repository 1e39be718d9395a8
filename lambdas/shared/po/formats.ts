/**
 * The text formats behind one small registry: each says whether a text is its format (`sniff`)
 * and reads every PO the text holds (`parseAll`). Detection asks them in order; the first that
 * claims the text reads it, CSV last because it is the loosest. Adding a format is one entry here
 * and one file beside this one.
 */
import type { CustomerConfig } from "../config/schema.js";
import { DocumentError } from "../errors.js";
import { parseCsvAll } from "./csv.js";
import { looksLikeEdifact, parseEdifactAll } from "./edifact.js";
import type { ParseOptions } from "./fields.js";
import { parseJsonPo } from "./json.js";
import type { DocumentFormat, NormalizedPo } from "./model.js";
import { parseX12All } from "./x12.js";
import { parseCxml, parseUbl, xmlRootName } from "./xml.js";

export type TextFormat = Exclude<DocumentFormat, "pdf" | "email">;

export interface FormatReader {
  readonly format: TextFormat;
  /** Whether the (BOM-stripped, left-trimmed) text is this format; a near miss may throw a DocumentError saying why. */
  sniff(start: string): boolean;
  /** Every PO the document holds, in document order (most formats hold one). */
  parseAll(text: string, fileName: string, opts: ParseOptions): NormalizedPo[];
}

const xmlRoot = (start: string, expected: string): boolean => {
  if (!start.startsWith("<")) return false;
  return xmlRootName(start) === expected;
};

export const FORMATS: readonly FormatReader[] = [
  {
    format: "json",
    sniff: (start) => {
      if (start.startsWith("[")) {
        throw new DocumentError("the JSON document is an array; expected one purchase order object ({ ... })");
      }
      return start.startsWith("{");
    },
    parseAll: (text, fileName, opts) => [parseJsonPo(text, fileName, opts)],
  },
  {
    format: "cxml",
    sniff: (start) => xmlRoot(start, "cXML"),
    parseAll: (text, fileName, opts) => [parseCxml(text, fileName, opts)],
  },
  {
    format: "ubl",
    sniff: (start) => xmlRoot(start, "Order"),
    parseAll: (text, fileName, opts) => [parseUbl(text, fileName, opts)],
  },
  {
    format: "x12",
    sniff: (start) => {
      // A transaction set or group cut from its interchange: the separators are defined by the ISA.
      if (/^(ST|GS)\*(850|PO)\*/.test(start)) {
        throw new DocumentError(
          "the document is an X12 850 without its ISA interchange header (it starts with " +
            `"${start.slice(0, 6)}"); the separators are defined there: send the whole interchange (ISA … IEA)`,
        );
      }
      return /^ISA[^A-Za-z0-9\s]/.test(start);
    },
    parseAll: (text, fileName, opts) => parseX12All(text, fileName, opts),
  },
  {
    format: "edifact",
    sniff: looksLikeEdifact,
    parseAll: (text, fileName, opts) => parseEdifactAll(text, fileName, opts),
  },
  {
    // The fallback: a text no other format claims is read as CSV, whose error says what it expected.
    format: "csv",
    sniff: (start) => !start.startsWith("<"),
    parseAll: (text, fileName, opts) => parseCsvAll(text, fileName, opts),
  },
];

/** The reader for a text, or a DocumentError for XML with a root we do not read. */
export function readerFor(start: string): FormatReader {
  for (const reader of FORMATS) if (reader.sniff(start)) return reader;
  if (start.startsWith("<")) {
    const root = xmlRootName(start);
    throw new DocumentError(
      root
        ? `the XML document's root element is <${root}>; expected a cXML OrderRequest (<cXML>) or a UBL 2 <Order>`
        : "the document starts with '<' but no XML element could be found (truncated?)",
    );
  }
  // Unreachable: CSV claims every text that is not XML.
  throw new DocumentError("not a purchase order format we read");
}

/** The options a customer's config gives every parser: its time zone, name, vendors and CSV mapping. */
export function parseOptionsFor(customer: CustomerConfig): ParseOptions {
  return {
    timeZone: customer.timeZone,
    receiver: { name: customer.displayName, vendors: customer.vendors },
    ...(customer.formats?.csv?.columns ? { csvColumns: customer.formats.csv.columns } : {}),
  };
}

/**
 * The text formats behind one small registry: each says whether a text is its format (`sniff`)
 * and loads the parser that reads every PO the text holds (`parser`). Detection asks them in order;
 * the first that claims the text reads it, CSV last because it is the loosest. Adding a format is
 * one entry here and one file beside this one.
 *
 * Sniffing is a few string tests and lives here; each parser is its own module, imported on first
 * use (`import()`: its own chunk in a Lambda bundle, with its library: csv-parse, fast-xml-parser),
 * because a call reads one document of one format and needs no other format's parser. The
 * synchronous readers (parse-text.ts) import them all.
 */
import type { CustomerConfig } from "../config/schema.js";
import { DocumentError } from "../errors.js";
import type { ParseOptions } from "./fields.js";
import type { DocumentFormat, NormalizedPo } from "./model.js";

export type TextFormat = Exclude<DocumentFormat, "pdf" | "email">;

/** Reads every PO a text of one format holds, in document order (most formats hold one). */
export type TextParser = (text: string, fileName: string, opts: ParseOptions) => NormalizedPo[];

export interface FormatReader {
  readonly format: TextFormat;
  /** Whether the (BOM-stripped, left-trimmed) text is this format; a near miss may throw a DocumentError saying why. */
  sniff(start: string): boolean;
  /** This format's parser, its module loaded on first use. */
  parser(): Promise<TextParser>;
}

/** The root element's local name (for detection), skipping the declaration, comments and DOCTYPE. */
export function xmlRootName(text: string): string | undefined {
  const body = text
    .replace(/^\uFEFF/, "")
    .replace(/<\?[\s\S]*?\?>/g, "")
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<!DOCTYPE[^[>]*(\[[\s\S]*?\])?\s*>/i, "")
    .trimStart();
  return /^<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)/.exec(body)?.[1];
}

/** Whether a text is an EDIFACT interchange (UNA, UNB or a bare UNH first). */
export function looksLikeEdifact(start: string): boolean {
  return /^UNA.{6}/s.test(start) || /^UN[BH][^A-Za-z0-9\s]/.test(start);
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
    parser: async () => {
      const { parseJsonPo } = await import("./json.js");
      return (text, fileName, opts) => [parseJsonPo(text, fileName, opts)];
    },
  },
  {
    format: "cxml",
    sniff: (start) => xmlRoot(start, "cXML"),
    parser: async () => {
      const { parseCxml } = await import("./xml.js");
      return (text, fileName, opts) => [parseCxml(text, fileName, opts)];
    },
  },
  {
    format: "ubl",
    sniff: (start) => xmlRoot(start, "Order"),
    parser: async () => {
      const { parseUbl } = await import("./xml.js");
      return (text, fileName, opts) => [parseUbl(text, fileName, opts)];
    },
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
    parser: async () => (await import("./x12.js")).parseX12All,
  },
  {
    format: "edifact",
    sniff: looksLikeEdifact,
    parser: async () => (await import("./edifact.js")).parseEdifactAll,
  },
  {
    // The fallback: a text no other format claims is read as CSV, whose error says what it expected.
    format: "csv",
    sniff: (start) => !start.startsWith("<"),
    parser: async () => (await import("./csv.js")).parseCsvAll,
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

/** The registry's reader of a format. */
export function readerOf(format: TextFormat): FormatReader {
  const reader = FORMATS.find((r) => r.format === format);
  if (!reader) throw new DocumentError(`no reader for the ${format} format`);
  return reader;
}

/** The options a customer's config gives every parser: its time zone, name, vendors and CSV mapping. */
export function parseOptionsFor(customer: CustomerConfig): ParseOptions {
  return {
    timeZone: customer.timeZone,
    receiver: { name: customer.displayName, vendors: customer.vendors },
    ...(customer.formats?.csv?.columns ? { csvColumns: customer.formats.csv.columns } : {}),
  };
}

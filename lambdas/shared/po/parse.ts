/**
 * Purchase-order documents → one `NormalizedPo`. The format is detected by content, never by the
 * file name (see detect.ts): JSON, CSV, cXML OrderRequest, UBL 2 Order, X12 850 (xml.ts, x12.ts),
 * PDF text layer (pdf.ts) and email with attachments (email.ts).
 *
 * `parseDocument` is synchronous and reads the text formats; `readDocument` reads everything,
 * PDF and email included (their parsers are asynchronous).
 *
 * JSON: one object.
 * ```
 * { "poNumber": "PO-1001", "orderDate": "2026-11-26",
 *   "buyer": { "name": "..." },            // or "buyer": "..."
 *   "supplier": { "name": "...", "id": "V-1" },  // id optional
 *   "currency": "USD",
 *   "lines": [ { "id": "1", "description": "...", "quantity": 3, "unit": "ea",
 *                "unitPrice": "19.99", "amount": "59.97" } ],   // id and amount optional
 *   "charges": [ { "reason": "Freight", "amount": "25.00", "code": "FC" } ],   // optional
 *   "allowances": [ { "reason": "Volume discount", "amount": "10.00" } ],      // optional
 *   "tax": { "amount": "4.95", "rate": "8.25" },                                // optional
 *   "total": "59.97", "requestedDelivery": "2026-12-10", "notes": "..." }  // last two optional
 * ```
 * Amounts are decimal numbers or decimal strings in major units ("19.99"); quantities likewise.
 * A line without `amount` gets quantity × unit price (rounded half up to the cent). `total` is
 * the payable total (lines + charges − allowances + tax).
 *
 * CSV: a header row, then one row per PO line, the PO columns repeated on every row:
 * `po_number, order_date, buyer, supplier, supplier_id, currency, line_id, description, quantity,
 * unit, unit_price, line_amount, total, requested_delivery, notes`. `supplier_id`, `line_id`,
 * `line_amount` (or `amount`), `requested_delivery` and `notes` may be left out; unknown columns
 * are ignored. Header names are case-insensitive. The delimiter is `,`, `;`, tab or `|` (whichever
 * the header uses most); in `;` files a decimal comma ("12,50") is read as a decimal point. Quoted
 * fields may hold delimiters, doubled quotes and newlines (RFC 4180, read with csv-parse).
 *
 * Arithmetic is not checked here (a line amount that disagrees is the validator's finding); what
 * cannot be read as a PO at all throws `DocumentError` with the reason.
 */
import { CsvError, parse as parseCsv } from "csv-parse/sync";
import { DocumentError } from "../errors.js";
import { detect } from "./detect.js";
import { type EmailThread, readEmail } from "./email.js";
import {
  csvColumn,
  describe,
  Fields,
  finish,
  isObject,
  type Json,
  jsonField,
  nonEmpty,
  optional,
  type ParseOptions,
  type RawLine,
} from "./fields.js";
import type { Adjustment, DocumentFormat, NormalizedPo, PoLine } from "./model.js";
import { readPdf } from "./pdf.js";
import { toIsoDate } from "./transform.js";
import { parseX12 } from "./x12.js";
import { parseCxml, parseUbl } from "./xml.js";

export type { ParseOptions } from "./fields.js";
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

/** The text formats, synchronously. A PDF or an email needs `readDocument`. */
export function parseDocument(bytes: Uint8Array, fileName: string, opts: ParseOptions = {}): ParsedDocument {
  const d = detect(bytes);
  if (d.kind === "pdf" || d.kind === "email") {
    throw new DocumentError(
      `the document is ${d.kind === "pdf" ? "a PDF" : "an email"}; it is read with readDocument()`,
    );
  }
  if (d.kind === "image") throw imageError(d.mediaType);
  return withLowConfidence(d.format, parseText(d.format, d.text, fileName, opts));
}

/** Every format, PDF and email included. Size and content checks come before any parser runs. */
export async function readDocument(
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions = {},
  depth = 0,
): Promise<ParsedDocument> {
  const d = detect(bytes);
  switch (d.kind) {
    case "pdf":
      return withLowConfidence("pdf", await readPdf(bytes, fileName, opts));
    case "image":
      throw imageError(d.mediaType);
    case "email": {
      const { po, thread } = await readEmail(bytes, fileName, opts, depth, readDocument);
      return { ...withLowConfidence("email", po), thread };
    }
    default:
      return withLowConfidence(d.format, parseText(d.format, d.text, fileName, opts));
  }
}

function parseText(
  format: "json" | "csv" | "cxml" | "ubl" | "x12",
  text: string,
  fileName: string,
  opts: ParseOptions,
): NormalizedPo {
  switch (format) {
    case "json":
      return parseJsonPo(text, fileName, opts);
    case "cxml":
      return parseCxml(text, fileName, opts);
    case "ubl":
      return parseUbl(text, fileName, opts);
    case "x12":
      return parseX12(text, fileName, opts);
    case "csv": {
      const start = text.trimStart();
      const firstLine = start.split(/\r?\n/, 1)[0] ?? "";
      const delimiter = delimiterOf(firstLine);
      // A header row names at least one of our columns; prose with a comma in it is not a CSV.
      if (delimiter && firstLine.split(delimiter).some((h) => isKnownColumn(h))) {
        return parseCsvPo(start, fileName, opts);
      }
      throw new DocumentError(
        `not a purchase order format we read: expected a JSON object or a CSV file with a header row naming columns such as ${REQUIRED_COLUMNS.join(", ")} (or cXML, UBL, X12 850, PDF, email); the document starts with ${JSON.stringify(firstLine.slice(0, 60))}`,
      );
    }
  }
}

function withLowConfidence(format: DocumentFormat, po: NormalizedPo): ParsedDocument {
  const low = po.source.lowConfidence;
  return { format, po, ...(low && low.length > 0 ? { lowConfidence: low } : {}) };
}

function imageError(mediaType: string): DocumentError {
  return new DocumentError(
    `the document is an image (${mediaType}) with no text to read offline; a Claude model reads it as an image block (see claude-extract.ts)`,
  );
}

// ---------------------------------------------------------------------------------------- JSON

/** Exported for the Claude path: a model's answer is this same JSON shape, read by the same code. */
export function parseJsonPo(text: string, fileName: string, opts: ParseOptions): NormalizedPo {
  let data: Json;
  try {
    data = JSON.parse(text) as Json;
  } catch (err) {
    throw new DocumentError(jsonSyntaxReason(text, (err as Error).message), { cause: err });
  }
  if (!isObject(data)) throw new DocumentError("the JSON document is not an object");
  const f = new Fields("");
  const currency = f.currency(data.currency, jsonField("currency"));
  const { buyer, supplier } = data;
  const supplierObj = isObject(supplier) ? supplier : undefined;
  const rawLines = data.lines;
  if (rawLines === undefined || rawLines === null) throw new DocumentError('missing field "lines"');
  if (!Array.isArray(rawLines))
    throw new DocumentError(`field "lines": expected a list of order lines, got ${describe(rawLines)}`);
  if (rawLines.length === 0) throw new DocumentError('field "lines" is empty; a PO needs at least one line');

  const adjustments = (key: "charges" | "allowances"): Adjustment[] => {
    const raw = data[key];
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) throw new DocumentError(`field "${key}": expected a list, got ${describe(raw)}`);
    return raw.map((a, i) => {
      if (!isObject(a)) throw new DocumentError(`field "${key}[${i}]": expected an object with reason and amount`);
      return f.adjustment(a.reason, a.amount, a.code, (k) => jsonField(`${key}[${i}].${k}`), currency);
    });
  };
  const rawTax = data.tax;
  const tax =
    rawTax === undefined || rawTax === null
      ? undefined
      : isObject(rawTax)
        ? {
            amountMinor: f.amount(rawTax.amount, jsonField("tax.amount"), currency),
            ...optional("rate", f.optionalRate(rawTax.rate, jsonField("tax.rate"))),
            ...optional("description", f.optionalText(rawTax.description, jsonField("tax.description"))),
          }
        : { amountMinor: f.amount(rawTax, jsonField("tax"), currency) };
  const low = data.lowConfidence;
  const lowConfidence = Array.isArray(low) ? low.filter((x): x is string => typeof x === "string") : [];

  const lines = rawLines.map((raw, i): PoLine => {
    if (!isObject(raw)) {
      throw new DocumentError(`field "lines[${i}]": expected an object with description, quantity, unit and unitPrice`);
    }
    const where = (k: keyof RawLine) => jsonField(`lines[${i}].${k}`);
    return f.line(
      {
        id: raw.id,
        description: raw.description,
        quantity: raw.quantity,
        unit: raw.unit,
        unitPrice: raw.unitPrice,
        amount: raw.amount,
      },
      where,
      i,
      currency,
    );
  });

  return finish(
    {
      poNumber: f.text(data.poNumber, jsonField("poNumber")),
      orderDate: f.date(data.orderDate, jsonField("orderDate"), opts),
      buyer: {
        name: isObject(buyer) ? f.text(buyer.name, jsonField("buyer.name")) : f.text(buyer, jsonField("buyer")),
        ...optional("id", isObject(buyer) ? f.optionalText(buyer.id, jsonField("buyer.id")) : undefined),
      },
      supplier: {
        name: supplierObj
          ? f.text(supplierObj.name, jsonField("supplier.name"))
          : f.text(supplier, jsonField("supplier")),
        ...optional("id", supplierObj ? f.optionalText(supplierObj.id, jsonField("supplier.id")) : undefined),
      },
      currency,
      lines,
      ...nonEmpty("charges", adjustments("charges")),
      ...nonEmpty("allowances", adjustments("allowances")),
      ...optional("tax", tax),
      totalMinor: f.amount(data.total, jsonField("total"), currency),
      ...optional("requestedDelivery", f.optionalDate(data.requestedDelivery, jsonField("requestedDelivery"), opts)),
      ...optional("notes", f.optionalText(data.notes, jsonField("notes"))),
      source: { format: "json", document: fileName, ...nonEmpty("lowConfidence", lowConfidence) },
    },
    "json",
  );
}

/** "invalid JSON at line 3, column 14: Expected ',' or '}' ..." from V8's message and position. */
function jsonSyntaxReason(text: string, message: string): string {
  const pos = /at position (\d+)/.exec(message);
  const detail = message.replace(/\s*in JSON at position \d+.*$/, "").replace(/ \(line \d+ column \d+\)$/, "");
  if (!pos) {
    if (/end of JSON input/i.test(message)) {
      const { line, col } = lineCol(text, text.length);
      return `invalid JSON: the document ends at line ${line}, column ${col} before the JSON is complete (truncated?)`;
    }
    return `invalid JSON: ${detail}`;
  }
  const offset = Number(pos[1]);
  const { line, col } = lineCol(text, offset);
  if (text.slice(offset).trim() === "") {
    return `invalid JSON: the document ends at line ${line}, column ${col} before the JSON is complete (truncated?): ${detail}`;
  }
  return `invalid JSON at line ${line}, column ${col} (position ${offset}): ${detail}`;
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, col: offset - before.lastIndexOf("\n") };
}

// ----------------------------------------------------------------------------------------- CSV

const REQUIRED_COLUMNS = [
  "po_number",
  "order_date",
  "buyer",
  "supplier",
  "currency",
  "description",
  "quantity",
  "unit",
  "unit_price",
  "total",
] as const;
const OPTIONAL_COLUMNS = ["supplier_id", "line_id", "line_amount", "requested_delivery", "notes"] as const;
type Column = (typeof REQUIRED_COLUMNS)[number] | (typeof OPTIONAL_COLUMNS)[number];
const COLUMN_ALIASES: Record<string, Column> = { amount: "line_amount" };

/** A header cell as a column name: case-insensitive, spaces and dashes as underscores. */
function columnName(header: string): string {
  const n = header
    .trim()
    .replace(/^"|"$/g, "")
    .toLowerCase()
    .replace(/[\s-]+/g, "_");
  return COLUMN_ALIASES[n] ?? n;
}

function isKnownColumn(header: string): boolean {
  const n = columnName(header);
  return (REQUIRED_COLUMNS as readonly string[]).includes(n) || (OPTIONAL_COLUMNS as readonly string[]).includes(n);
}

type Delimiter = "," | ";" | "\t" | "|";

/** The header's delimiter: whichever of `,` `;` tab `|` occurs most outside quotes (ties go to `,`). */
function delimiterOf(headerLine: string): Delimiter | undefined {
  const counts: Record<Delimiter, number> = { ",": 0, ";": 0, "\t": 0, "|": 0 };
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch in counts) counts[ch as Delimiter]++;
  }
  const best = (Object.entries(counts) as [Delimiter, number][]).reduce((a, b) => (b[1] > a[1] ? b : a));
  return best[1] === 0 ? undefined : best[0];
}

function parseCsvPo(text: string, fileName: string, opts: ParseOptions): NormalizedPo {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? "";
  const delimiter = delimiterOf(firstLine) ?? ",";
  let records: { record: string[]; line: number }[];
  try {
    const raw = parseCsv(text, { delimiter, bom: true, trim: true, skip_empty_lines: true, info: true }) as unknown[];
    records = raw.map((r) => {
      const { record, info } = r as { record: string[]; info: { lines: number } };
      return { record, line: info.lines };
    });
  } catch (err) {
    if (err instanceof CsvError) throw new DocumentError(`invalid CSV: ${err.message}`, { cause: err });
    throw err;
  }

  const [header, ...body] = records;
  if (!header) throw new DocumentError("the CSV has no header row");
  const names = header.record.map(columnName);
  const seen = new Set<string>();
  for (const n of names) {
    if (n && seen.has(n)) throw new DocumentError(`the CSV header has the column "${n}" twice`);
    seen.add(n);
  }
  const missing = REQUIRED_COLUMNS.filter((c) => !seen.has(c));
  if (missing.length > 0) {
    throw new DocumentError(
      `the CSV is missing the header${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")} (required columns: ${REQUIRED_COLUMNS.join(", ")})`,
    );
  }
  const rows = body
    .filter((r) => r.record.some((v) => v.trim() !== ""))
    .map((r) => {
      const get = (c: Column): string | undefined => {
        const i = names.indexOf(c);
        const v = i >= 0 ? r.record[i]?.trim() : undefined;
        return v === "" ? undefined : v;
      };
      return { get, line: r.line };
    });
  if (rows.length === 0) throw new DocumentError("the CSV has a header row but no order lines");

  const f = new Fields(delimiter === ";" ? "," : "");
  /** A PO-level column: the same value on every row that fills it in. */
  const poValue = (c: Column, same: (a: string, b: string) => boolean = (a, b) => a === b): string | undefined => {
    let first: { value: string; line: number } | undefined;
    for (const row of rows) {
      const v = row.get(c);
      if (v === undefined) continue;
      if (!first) first = { value: v, line: row.line };
      else if (!same(first.value, v)) {
        const what = c === "po_number" ? "PO numbers (one CSV file holds one PO)" : c.replace(/_/g, " ");
        throw new DocumentError(
          `inconsistent ${what}: line ${first.line} says ${JSON.stringify(first.value)}, line ${row.line} says ${JSON.stringify(v)}`,
        );
      }
    }
    return first?.value;
  };

  const currency = f.currency(
    poValue("currency", (a, b) => a.toUpperCase() === b.toUpperCase()),
    csvColumn("currency"),
  );
  const sameAmount = (a: string, b: string) => {
    try {
      return f.amount(a, csvColumn("total"), currency) === f.amount(b, csvColumn("total"), currency);
    } catch {
      return a === b;
    }
  };
  const sameDate = (a: string, b: string) => (toIsoDate(a) ?? a) === (toIsoDate(b) ?? b);
  const cols: Record<keyof RawLine, Column> = {
    id: "line_id",
    description: "description",
    quantity: "quantity",
    unit: "unit",
    unitPrice: "unit_price",
    amount: "line_amount",
  };

  const lines = rows.map((row, i) =>
    f.line(
      {
        id: row.get("line_id"),
        description: row.get("description") ?? "",
        quantity: row.get("quantity"),
        unit: row.get("unit"),
        unitPrice: row.get("unit_price"),
        amount: row.get("line_amount"),
      },
      (k) => csvColumn(cols[k], row.line),
      i,
      currency,
    ),
  );

  return finish(
    {
      poNumber: f.text(poValue("po_number"), csvColumn("po_number")),
      orderDate: f.date(poValue("order_date", sameDate), csvColumn("order_date"), opts),
      buyer: { name: f.text(poValue("buyer"), csvColumn("buyer")) },
      supplier: {
        name: f.text(poValue("supplier"), csvColumn("supplier")),
        ...optional("id", poValue("supplier_id")),
      },
      currency,
      lines,
      totalMinor: f.amount(poValue("total", sameAmount), csvColumn("total"), currency),
      ...optional(
        "requestedDelivery",
        f.optionalDate(poValue("requested_delivery", sameDate), csvColumn("requested_delivery"), opts),
      ),
      ...optional("notes", poValue("notes")),
      source: { format: "csv", document: fileName },
    },
    "csv",
  );
}

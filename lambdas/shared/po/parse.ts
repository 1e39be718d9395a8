/**
 * Purchase-order documents → one `NormalizedPo`. Two formats, detected by content (never by the
 * file name):
 *
 * JSON: one object.
 * ```
 * { "poNumber": "PO-1001", "orderDate": "2026-11-26",
 *   "buyer": { "name": "..." },            // or "buyer": "..."
 *   "supplier": { "name": "...", "id": "V-1" },  // id optional
 *   "currency": "USD",
 *   "lines": [ { "id": "1", "description": "...", "quantity": 3, "unit": "ea",
 *                "unitPrice": "19.99", "amount": "59.97" } ],   // id and amount optional
 *   "total": "59.97", "requestedDelivery": "2026-12-10", "notes": "..." }  // last two optional
 * ```
 * Amounts are decimal numbers or decimal strings in major units ("19.99"); quantities likewise.
 * A line without `amount` gets quantity × unit price (rounded half up to the cent).
 *
 * CSV: a header row, then one row per PO line, the PO columns repeated on every row:
 * `po_number, order_date, buyer, supplier, supplier_id, currency, line_id, description, quantity,
 * unit, unit_price, line_amount, total, requested_delivery, notes`. `supplier_id`, `line_id`,
 * `line_amount` (or `amount`), `requested_delivery` and `notes` may be left out; unknown columns
 * are ignored. Header names are case-insensitive. The delimiter is `,` or `;` (whichever the header
 * uses); in `;` files a decimal comma ("12,50") is read as a decimal point. Quoted fields may
 * hold delimiters, doubled quotes and newlines (RFC 4180, read with csv-parse).
 *
 * Arithmetic is not checked here (a line amount that disagrees is the validator's finding); what
 * cannot be read as a PO at all throws `DocumentError` with the reason.
 */
import { CsvError, parse as parseCsv } from "csv-parse/sync";
import { DEFAULTS } from "../constants.js";
import { DocumentError } from "../errors.js";
import { type NormalizedPo, NormalizedPo as NormalizedPoSchema, type PoLine } from "./model.js";
import { multiplyQuantity, numberToDecimalText, toMinor } from "./money.js";
import { toIsoDate } from "./transform.js";

export type DocumentFormat = "json" | "csv";

export interface ParseOptions {
  /** The customer's IANA time zone: a timestamp (rather than a date) becomes the date there. */
  timeZone?: string;
}

export function parseDocument(
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions = {},
): { format: DocumentFormat; po: NormalizedPo } {
  const text = decodeText(bytes);
  const start = text.trimStart();
  if (start.startsWith("{")) return { format: "json", po: parseJsonPo(text, fileName, opts) };
  if (start.startsWith("[")) {
    throw new DocumentError("the JSON document is an array; expected one purchase order object ({ ... })");
  }
  const firstLine = start.split(/\r?\n/, 1)[0] ?? "";
  const delimiter = delimiterOf(firstLine);
  // A header row names at least one of our columns; prose with a comma in it is not a CSV.
  if (delimiter && firstLine.split(delimiter).some((h) => isKnownColumn(h))) {
    return { format: "csv", po: parseCsvPo(start, fileName, opts) };
  }
  throw new DocumentError(
    `not a purchase order format we read: expected a JSON object or a CSV file with a header row naming columns such as ${REQUIRED_COLUMNS.join(", ")}; the document starts with ${JSON.stringify(firstLine.slice(0, 60))}`,
  );
}

/** Bytes → text, refusing what is not UTF-8 text, with the reason a person can act on. */
function decodeText(bytes: Uint8Array): string {
  const limit = DEFAULTS.maxDocumentBytes;
  if (bytes.length > limit) {
    throw new DocumentError(
      `the document is ${bytes.length} bytes, larger than the ${limit / (1024 * 1024)} MiB (${limit} bytes) limit`,
    );
  }
  if (bytes.length === 0) throw new DocumentError("the document is empty (0 bytes)");
  const head = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (head(0x25, 0x50, 0x44, 0x46)) {
    throw new DocumentError("the document is a PDF; only JSON and CSV purchase orders can be read");
  }
  if (head(0x50, 0x4b, 0x03, 0x04)) {
    throw new DocumentError(
      "the document is a ZIP archive (or an Office file such as .xlsx); export the PO as CSV or JSON",
    );
  }
  if (head(0xff, 0xfe) || head(0xfe, 0xff)) {
    throw new DocumentError("the document is UTF-16 text; save it as UTF-8");
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new DocumentError(`the document is binary, not text (a zero byte at offset ${nul})`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new DocumentError(
      `the document is not UTF-8 text (invalid byte sequence near offset ${firstInvalidUtf8(bytes)}); save it as UTF-8`,
      { cause: err },
    );
  }
  if (text.trim() === "") throw new DocumentError("the document is empty (only whitespace)");
  return text;
}

/** Byte offset of the first invalid UTF-8 sequence: where the lenient decoder put U+FFFD. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const lenient = new TextDecoder("utf-8").decode(bytes);
  const at = lenient.indexOf("\uFFFD");
  return at < 0 ? 0 : new TextEncoder().encode(lenient.slice(0, at)).length;
}

// ---------------------------------------------------------------------------------------- JSON

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function parseJsonPo(text: string, fileName: string, opts: ParseOptions): NormalizedPo {
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
      },
      supplier: {
        name: supplierObj
          ? f.text(supplierObj.name, jsonField("supplier.name"))
          : f.text(supplier, jsonField("supplier")),
        ...optional("id", supplierObj ? f.optionalText(supplierObj.id, jsonField("supplier.id")) : undefined),
      },
      currency,
      lines,
      totalMinor: f.amount(data.total, jsonField("total"), currency),
      ...optional("requestedDelivery", f.optionalDate(data.requestedDelivery, jsonField("requestedDelivery"), opts)),
      ...optional("notes", f.optionalText(data.notes, jsonField("notes"))),
      source: { format: "json", document: fileName },
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

/** The header's delimiter: `,` or `;`, whichever occurs more outside quotes; undefined for neither. */
function delimiterOf(headerLine: string): "," | ";" | undefined {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === ",") commas++;
    else if (!quoted && ch === ";") semicolons++;
  }
  if (commas === 0 && semicolons === 0) return undefined;
  return semicolons > commas ? ";" : ",";
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

// -------------------------------------------------------------------------------------- shared

/** Where a value came from, worded for the message: `field "lines[0].quantity"`, `column "quantity" on line 3`. */
interface Where {
  label: string;
  missing: string;
}

const jsonField = (name: string): Where => ({ label: `field "${name}"`, missing: `missing field "${name}"` });
const csvColumn = (name: string, line?: number): Where => {
  const on = line === undefined ? "" : ` on line ${line}`;
  return { label: `column "${name}"${on}`, missing: `missing value for "${name}"${on}` };
};

interface RawLine {
  id: unknown;
  description: unknown;
  quantity: unknown;
  unit: unknown;
  unitPrice: unknown;
  amount: unknown;
}

/** Reads typed values, throwing a DocumentError that names the field and what it held. */
class Fields {
  /** `decimalComma` is "," for `;`-delimited CSV, where "12,50" means 12.50. */
  constructor(private readonly decimalComma: "," | "") {}

  text(v: unknown, w: Where): string {
    const t = this.optionalText(v, w);
    if (t === undefined) throw new DocumentError(w.missing);
    return t;
  }

  optionalText(v: unknown, w: Where): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
    if (typeof v !== "string") throw new DocumentError(`${w.label}: expected text, got ${describe(v)}`);
    const t = v.trim();
    return t === "" ? undefined : t;
  }

  currency(v: unknown, w: Where): string {
    const t = this.text(v, w);
    if (!/^[A-Za-z]{3}$/.test(t)) {
      throw new DocumentError(`${w.label}: expected an ISO 4217 code such as USD, got ${JSON.stringify(t)}`);
    }
    return t.toUpperCase();
  }

  date(v: unknown, w: Where, opts: ParseOptions): string {
    const d = this.optionalDate(v, w, opts);
    if (d === undefined) throw new DocumentError(w.missing);
    return d;
  }

  optionalDate(v: unknown, w: Where, opts: ParseOptions): string | undefined {
    const t = this.optionalText(v, w);
    if (t === undefined) return undefined;
    const iso = toIsoDate(t, opts.timeZone);
    if (!iso) {
      const hint = /^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$/.test(t)
        ? " (the order of day and month is ambiguous; write 2026-11-26)"
        : "";
      throw new DocumentError(`${w.label}: expected a date such as 2026-11-26, got ${JSON.stringify(t)}${hint}`);
    }
    return iso;
  }

  /** Decimal text, from a JSON number or string, or a CSV cell (decimal comma in `;` files). */
  decimal(v: unknown, w: Where): string {
    if (v === undefined || v === null || v === "") throw new DocumentError(w.missing);
    let t: string;
    if (typeof v === "number") {
      try {
        t = numberToDecimalText(v);
      } catch (err) {
        throw new DocumentError(`${w.label}: ${(err as Error).message}`, { cause: err });
      }
    } else if (typeof v === "string") {
      t = v.trim();
      if (this.decimalComma && /^-?\d+,\d+$/.test(t)) t = t.replace(",", ".");
    } else {
      throw new DocumentError(`${w.label}: expected a decimal number, got ${describe(v)}`);
    }
    if (/^-?\.\d/.test(t)) t = t.replace(".", "0.");
    if (!/^-?\d+(\.\d+)?$/.test(t)) {
      throw new DocumentError(
        `${w.label}: expected a plain decimal number such as 1234.50, got ${JSON.stringify(String(v))}`,
      );
    }
    return t;
  }

  amount(v: unknown, w: Where, currency: string): number {
    const t = this.decimal(v, w);
    try {
      return toMinor(t, currency);
    } catch (err) {
      throw new DocumentError(`${w.label}: ${(err as Error).message}`, { cause: err });
    }
  }

  line(raw: RawLine, where: (field: keyof RawLine) => Where, index: number, currency: string): PoLine {
    const quantity = this.decimal(raw.quantity, where("quantity")).replace(/^0+(?=\d)/, "");
    if (quantity.startsWith("-")) {
      throw new DocumentError(`${where("quantity").label}: a quantity cannot be negative, got ${quantity}`);
    }
    const unitPriceMinor = this.amount(raw.unitPrice, where("unitPrice"), currency);
    if (raw.description === undefined || raw.description === null) {
      throw new DocumentError(where("description").missing);
    }
    let amountMinor: number;
    if (raw.amount === undefined || raw.amount === null || raw.amount === "") {
      try {
        amountMinor = multiplyQuantity(quantity, unitPriceMinor);
      } catch (err) {
        throw new DocumentError(`${where("amount").label}: ${(err as Error).message}`, { cause: err });
      }
    } else {
      amountMinor = this.amount(raw.amount, where("amount"), currency);
    }
    return {
      id: this.optionalText(raw.id, where("id")) ?? String(index + 1),
      description: this.optionalText(raw.description, where("description")) ?? "",
      quantity,
      unit: this.text(raw.unit, where("unit")),
      unitPriceMinor,
      amountMinor,
    };
  }
}

function finish(po: NormalizedPo, format: DocumentFormat): NormalizedPo {
  const checked = NormalizedPoSchema.safeParse(po);
  if (!checked.success) {
    const issues = checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new DocumentError(`the ${format.toUpperCase()} purchase order is incomplete: ${issues}`);
  }
  return checked.data;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}

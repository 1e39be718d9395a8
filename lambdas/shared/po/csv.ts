/**
 * CSV → one `NormalizedPo` per PO number. A header row, then one row per PO line, the PO columns
 * repeated on every row (or left blank on a PO's later rows). Canonical columns:
 * `po_number, order_date, buyer, supplier, supplier_id, currency, line_id, description, quantity,
 * unit, unit_price, line_amount, total, requested_delivery, notes`.
 *
 * Headers are matched case-insensitively, spaces, dashes and dots as underscores, and through the
 * synonyms common ERP exports use (`qty`, `vendor_name`, `date`, `unit cost`, `total_amount`,
 * `uom`, ...; see `SYNONYMS`). A customer whose export uses names no synonym covers maps them in
 * its config (`formats.csv.columns: { quantity: "Menge" }`); the error for an unreadable header
 * names the unrecognised headers and that setting.
 *
 * Left out, and said so in `source.fields`: `buyer` (the receiving customer stands in, flagged
 * low-confidence), `total` (computed from the lines), `unit` (UN/ECE `C62` "one"), `line_amount`
 * (quantity × unit price). The delimiter is `,`, `;`, tab or `|` (whichever the header uses most);
 * the decimal separator is read from the numbers themselves (`1.234,50` and `12,50` in a
 * decimal-comma file, `1,234.50` in a decimal-point one); in a decimal-comma file a date written
 * `26.11.2026` is day.month.year. Quoted fields may hold delimiters,
 * doubled quotes and newlines (RFC 4180, read with csv-parse).
 */
import { CsvError, parse as parseCsv } from "csv-parse/sync";
import { DocumentError } from "../errors.js";
import { csvColumn, Fields, finish, optional, type ParseOptions, PoDocumentError, type RawLine } from "./fields.js";
import { CSV_COLUMNS, type CsvColumn, type NormalizedPo } from "./model.js";
import { minorToDecimalText } from "./money.js";
import { toIsoDate } from "./transform.js";

/** Columns without which no PO can be read (buyer, total, unit and line amount have stand-ins). */
const REQUIRED: readonly CsvColumn[] = [
  "po_number",
  "order_date",
  "supplier",
  "currency",
  "description",
  "quantity",
  "unit_price",
];

/** Header names seen in ERP and spreadsheet exports, normalized (see `headerKey`), per column. */
const SYNONYMS: Record<CsvColumn, readonly string[]> = {
  po_number: [
    "po",
    "po_no",
    "po_num",
    "ponumber",
    "po_id",
    "purchase_order",
    "purchase_order_number",
    "purchase_order_no",
    "order_number",
    "order_no",
    "order_id",
    "document_number",
    "doc_no",
  ],
  order_date: [
    "date",
    "po_date",
    "document_date",
    "doc_date",
    "issue_date",
    "created",
    "created_date",
    "order_created",
  ],
  buyer: ["buyer_name", "customer", "customer_name", "bill_to", "ordered_by", "purchaser", "company"],
  supplier: ["supplier_name", "vendor", "vendor_name", "seller", "seller_name"],
  supplier_id: [
    "vendor_id",
    "vendor_no",
    "vendor_number",
    "vendor_code",
    "supplier_code",
    "supplier_no",
    "supplier_number",
  ],
  currency: ["currency_code", "curr", "ccy", "cur"],
  line_id: ["line", "line_no", "line_number", "ln", "pos", "position", "item_line"],
  description: [
    "item_description",
    "item",
    "item_name",
    "product",
    "product_name",
    "material_description",
    "desc",
    "item_desc",
    "short_text",
  ],
  quantity: ["qty", "qty_ordered", "order_qty", "ordered_qty", "quantity_ordered", "po_qty"],
  unit: ["uom", "unit_of_measure", "um", "order_unit"],
  unit_price: ["price", "unit_cost", "cost", "price_each", "net_price", "unit_price_net"],
  line_amount: [
    "amount",
    "line_total",
    "extended_price",
    "ext_price",
    "extended_amount",
    "extended_cost",
    "line_value",
    "net_amount",
    "net_value",
  ],
  total: ["total_amount", "po_total", "order_total", "grand_total", "total_value", "document_total"],
  requested_delivery: [
    "delivery_date",
    "need_by",
    "need_by_date",
    "required_date",
    "requested_date",
    "requested_delivery_date",
    "deliver_by",
    "due_date",
  ],
  notes: ["note", "comments", "comment", "remarks", "memo"],
};

const BY_SYNONYM = new Map<string, CsvColumn>(
  CSV_COLUMNS.flatMap((c) => [[c, c] as const, ...SYNONYMS[c].map((s) => [s, c] as const)]),
);

/** "Unit Cost " → "unit_cost", "PO #" → "po", "Qty." → "qty". */
export function headerKey(header: string): string {
  return header
    .trim()
    .replace(/^"|"$/g, "")
    .toLowerCase()
    .replace(/#/g, "")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
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

/** Header cells → canonical columns: the customer's mapping first, then names and synonyms. */
function mapHeaders(headers: string[], mapping: Readonly<Partial<Record<string, string>>>): (CsvColumn | undefined)[] {
  const mapped = new Map<string, CsvColumn>();
  for (const [column, header] of Object.entries(mapping)) {
    if (header && (CSV_COLUMNS as readonly string[]).includes(column))
      mapped.set(headerKey(header), column as CsvColumn);
  }
  const mappedColumns = new Set(mapped.values());
  return headers.map((h) => {
    const key = headerKey(h);
    const explicit = mapped.get(key);
    if (explicit) return explicit;
    const synonym = BY_SYNONYM.get(key);
    // A column the customer mapped to another header is taken from that header only.
    return synonym && !mappedColumns.has(synonym) ? synonym : undefined;
  });
}

/** Whether the text reads as a PO CSV: a delimited header with at least one column we know. */
export function looksLikeCsv(text: string, opts: ParseOptions = {}): boolean {
  const lines = text.trimStart().split(/\r?\n/, 3);
  const first = lines[0] ?? "";
  const delimiter = delimiterOf(first);
  if (!delimiter) return false;
  const headers = first.split(delimiter);
  const known = mapHeaders(headers, opts.csvColumns ?? {}).filter(Boolean).length;
  // A table whose headers are all foreign is still a CSV: its error names them and the mapping.
  const tabular = headers.length >= 3 && (lines[1] ?? "").split(delimiter).length === headers.length;
  return known >= 2 || tabular;
}

type DecimalStyle = "." | ",";

/**
 * Which mark separates decimals in this file, from the numbers themselves: `12,50` or `1.234,5`
 * mean a decimal comma, `12.50` or `1,234.5` a decimal point; `1,234` alone is ambiguous and
 * decided by the delimiter (a `;` file is a decimal-comma export).
 */
function decimalStyleOf(cells: string[], delimiter: Delimiter): DecimalStyle {
  let comma = false;
  let point = false;
  for (const raw of cells) {
    const c = raw.replace(/[\s'’]/g, "");
    if (/^-?\d{1,3}(\.\d{3})+,\d+$/.test(c) || (/^-?\d+,\d+$/.test(c) && !/^-?\d{1,3}(,\d{3})+$/.test(c))) comma = true;
    else if (/^-?\d{1,3}(,\d{3})+\.\d+$/.test(c) || (/^-?\d+\.\d+$/.test(c) && !/^-?\d{1,3}(\.\d{3})+$/.test(c)))
      point = true;
  }
  if (comma && point) {
    throw new DocumentError(
      "the CSV mixes decimal commas (12,50) and decimal points (12.50) in its numbers; export it with one decimal separator",
    );
  }
  if (comma) return ",";
  if (point) return ".";
  return delimiter === ";" ? "," : ".";
}

/** A number cell in plain decimal form ("1.234,50" → "1234.50" in a decimal-comma file). */
function plainNumber(cell: string, style: DecimalStyle): string {
  const c = cell.replace(/[\s'’]/g, "");
  const thousands = style === "," ? "." : ",";
  const grouped = new RegExp(`^-?\\d{1,3}(\\${thousands}\\d{3})+(\\${style}\\d+)?$`);
  const plain = grouped.test(c) ? c.split(thousands).join("") : c;
  return style === "," ? plain.replace(",", ".") : plain;
}

const NUMERIC: readonly CsvColumn[] = ["quantity", "unit_price", "line_amount", "total"];
const DATES: readonly CsvColumn[] = ["order_date", "requested_delivery"];

interface Row {
  get(c: CsvColumn): string | undefined;
  line: number;
}

export function parseCsvAll(text: string, fileName: string, opts: ParseOptions): NormalizedPo[] {
  const start = text.trimStart();
  const firstLine = start.split(/\r?\n/, 1)[0] ?? "";
  const delimiter = delimiterOf(firstLine);
  if (!delimiter || !looksLikeCsv(start, opts)) {
    throw new DocumentError(
      `not a purchase order format we read: expected a JSON object or a CSV file with a header row naming columns such as ${REQUIRED.join(", ")} (or cXML, UBL, X12 850, EDIFACT ORDERS, PDF, email); the document starts with ${JSON.stringify(firstLine.slice(0, 60))}`,
    );
  }
  let records: { record: string[]; line: number }[];
  try {
    // relax_quotes: a quote inside an unquoted field (12" hose) is a character, as spreadsheets write it.
    const raw = parseCsv(start, {
      delimiter,
      bom: true,
      trim: true,
      skip_empty_lines: true,
      info: true,
      relax_quotes: true,
    }) as unknown[];
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
  const names = mapHeaders(header.record, opts.csvColumns ?? {});
  const seen = new Map<CsvColumn, string>();
  names.forEach((n, i) => {
    if (!n) return;
    const earlier = seen.get(n);
    const here = header.record[i] ?? "";
    if (earlier !== undefined) {
      throw new DocumentError(
        earlier === here
          ? `the CSV header has the column "${here}" twice`
          : `the CSV headers "${earlier}" and "${here}" both read as "${n}"; say which one is meant in the customer config: formats.csv.columns: { ${n}: "<header>" }`,
      );
    }
    seen.set(n, here);
  });
  const missing = REQUIRED.filter((c) => !seen.has(c));
  if (missing.length > 0) {
    const unknown = header.record.filter((h, i) => !names[i] && h.trim() !== "");
    const hint =
      unknown.length > 0
        ? `; headers not recognised: ${unknown.map((h) => JSON.stringify(h)).join(", ")}. If one of them is meant, map it in the customer config: formats.csv.columns: { ${missing[0]}: "<header>" }`
        : "";
    throw new PoDocumentError(
      `the CSV is missing the header${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")} (required columns: ${REQUIRED.join(", ")}; synonyms such as qty, vendor_name, unit cost are read too)${hint}`,
      { format: "csv", missing: missing.map((m) => `column "${m}"`) },
    );
  }
  const filled = body.filter((r) => r.record.some((v) => v.trim() !== ""));
  if (filled.length === 0) throw new DocumentError("the CSV has a header row but no order lines");
  const numericCells = filled.flatMap((r) =>
    NUMERIC.flatMap((c) => {
      const i = names.indexOf(c);
      return i >= 0 ? [r.record[i] ?? ""] : [];
    }),
  );
  const style = decimalStyleOf(numericCells, delimiter);
  const dottedDates = new Set<CsvColumn>();
  const rows: Row[] = filled.map((r) => ({
    get: (c: CsvColumn): string | undefined => {
      const i = names.indexOf(c);
      const v = i >= 0 ? r.record[i]?.trim() : undefined;
      if (v === undefined || v === "") return undefined;
      if (NUMERIC.includes(c)) return plainNumber(v, style);
      // 26.11.2026 in a decimal-comma export is day.month.year (as those locales write it).
      const dotted = style === "," && DATES.includes(c) ? /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/.exec(v) : null;
      if (dotted) {
        dottedDates.add(c);
        return `${dotted[3]}-${dotted[2]?.padStart(2, "0")}-${dotted[1]?.padStart(2, "0")}`;
      }
      return v;
    },
    line: r.line,
  }));

  // One PO per PO number, in order of appearance; a row with the PO number left blank continues the one above.
  const groups: { poNumber: string | undefined; rows: Row[] }[] = [];
  for (const row of rows) {
    const n = row.get("po_number");
    const last = groups[groups.length - 1];
    if (last && (n === undefined || n === last.poNumber)) last.rows.push(row);
    else {
      const earlier = n === undefined ? undefined : groups.find((g) => g.poNumber === n);
      if (earlier) earlier.rows.push(row);
      else groups.push({ poNumber: n, rows: [row] });
    }
  }
  return groups.map((g) => readPo(g.rows, fileName, opts, seen, style, dottedDates));
}

function readPo(
  rows: Row[],
  fileName: string,
  opts: ParseOptions,
  headers: Map<CsvColumn, string>,
  style: DecimalStyle,
  dottedDates: ReadonlySet<CsvColumn>,
): NormalizedPo {
  const f = new Fields();
  const fields: { field: string; from: string }[] = [];
  const lowConfidence: string[] = [];
  const from = (c: CsvColumn) => {
    const h = headers.get(c);
    return h === undefined || headerKey(h) === c ? `column "${c}"` : `column "${h}" (read as ${c})`;
  };
  const note = (field: string, c: CsvColumn) => fields.push({ field, from: from(c) });

  /** A PO-level column: the same value on every row that fills it in. */
  const poValue = (c: CsvColumn, same: (a: string, b: string) => boolean = (a, b) => a === b): string | undefined => {
    let first: { value: string; line: number } | undefined;
    for (const row of rows) {
      const v = row.get(c);
      if (v === undefined) continue;
      if (!first) first = { value: v, line: row.line };
      else if (!same(first.value, v)) {
        throw new DocumentError(
          `inconsistent ${c.replace(/_/g, " ")}: line ${first.line} says ${JSON.stringify(first.value)}, line ${row.line} says ${JSON.stringify(v)}`,
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
  const cols: Record<keyof RawLine, CsvColumn> = {
    id: "line_id",
    description: "description",
    quantity: "quantity",
    unit: "unit",
    unitPrice: "unit_price",
    amount: "line_amount",
  };
  const hasUnit = headers.has("unit");
  const lines = rows.map((row, i) =>
    f.line(
      {
        id: row.get("line_id"),
        description: row.get("description") ?? "",
        quantity: row.get("quantity"),
        unit: hasUnit ? row.get("unit") : "C62",
        unitPrice: row.get("unit_price"),
        amount: row.get("line_amount"),
      },
      (k) => csvColumn(headers.get(cols[k]) ?? cols[k], row.line),
      i,
      currency,
    ),
  );
  const mandatory: [string, CsvColumn][] = [
    ["poNumber", "po_number"],
    ["orderDate", "order_date"],
    ["supplier.name", "supplier"],
    ["currency", "currency"],
    ["lines[].description", "description"],
    ["lines[].quantity", "quantity"],
    ["lines[].unitPriceMinor", "unit_price"],
  ];
  for (const [field, column] of mandatory) note(field, column);
  if (hasUnit) note("lines[].unit", "unit");
  else fields.push({ field: "lines[].unit", from: 'no unit column: UN/ECE "C62" (one)' });
  if (headers.has("line_amount")) note("lines[].amountMinor", "line_amount");
  else fields.push({ field: "lines[].amountMinor", from: "computed: quantity × unit price (no line amount column)" });
  if (style === ",") fields.push({ field: "lines[]", from: "numbers with a decimal comma (12,50 = 12.50)" });

  let buyer = poValue("buyer");
  if (buyer) note("buyer.name", "buyer");
  else if (opts.receiver) {
    buyer = opts.receiver.name;
    fields.push({ field: "buyer.name", from: "the receiving customer (the CSV names no buyer)" });
    lowConfidence.push("buyer.name");
  }

  const statedTotal = poValue("total", sameAmount);
  let totalMinor: number;
  if (statedTotal !== undefined) {
    totalMinor = f.amount(statedTotal, csvColumn(headers.get("total") ?? "total"), currency);
    note("totalMinor", "total");
  } else {
    totalMinor = lines.reduce((a, l) => a + l.amountMinor, 0);
    fields.push({
      field: "totalMinor",
      from: `computed: the sum of the line amounts = ${minorToDecimalText(totalMinor, currency)} (no total column)`,
    });
  }
  const supplierId = poValue("supplier_id");
  if (supplierId) note("supplier.id", "supplier_id");
  const delivery = f.optionalDate(
    poValue("requested_delivery", sameDate),
    csvColumn(headers.get("requested_delivery") ?? "requested_delivery"),
    opts,
  );
  if (delivery) note("requestedDelivery", "requested_delivery");

  const orderDate = poValue("order_date", sameDate);
  // Read through Row.get above, so the conversions are known by now.
  for (const c of dottedDates) {
    fields.push({
      field: c === "order_date" ? "orderDate" : "requestedDelivery",
      from: `${from(c)} as day.month.year (a decimal-comma export)`,
    });
  }

  return finish(
    {
      poNumber: f.required(poValue("po_number"), csvColumn(headers.get("po_number") ?? "po_number")),
      orderDate: f.requiredDate(orderDate, csvColumn(headers.get("order_date") ?? "order_date"), opts),
      buyer: {
        name: f.required(
          buyer,
          headers.has("buyer")
            ? csvColumn(headers.get("buyer") ?? "buyer")
            : {
                label: 'column "buyer"',
                missing: 'missing buyer: the CSV has no "buyer" column (or customer, bill_to)',
              },
        ),
      },
      supplier: {
        name: f.required(poValue("supplier"), csvColumn(headers.get("supplier") ?? "supplier")),
        ...optional("id", supplierId),
      },
      currency,
      lines,
      totalMinor,
      ...optional("requestedDelivery", delivery),
      ...optional("notes", poValue("notes")),
      source: {
        format: "csv",
        document: fileName,
        method: "structured",
        fields,
        ...(lowConfidence.length ? { lowConfidence } : {}),
      },
    },
    "csv",
    f.missing,
  );
}

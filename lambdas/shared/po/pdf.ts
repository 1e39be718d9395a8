/**
 * PDF → text layer (unpdf's bundled PDF.js, no network, no workers) → a PO read by labels, flagged
 * where the reading is weak. A Claude model reads the PDF itself instead (claude-extract.ts).
 *
 * The text layer is rebuilt into lines by position (items on one baseline, left to right; a wide
 * gap becomes two spaces), then read by `parsePoText`:
 * - labelled fields: `PO Number:`, `Order Date:`, `Buyer:`/`Bill To:`, `Supplier:`/`Vendor:`,
 *   `Supplier ID:`, `Currency:`, `Requested Delivery:`, `Notes:`, the value beside the label or,
 *   for a heading on its own line (`VENDOR`, `BUYER`, `CURRENCY`), on the line below it;
 * - `No. P00342` as the PO number in a document titled "Purchase Order";
 * - a line table row: `<id> <description> <quantity> <unit> <unit price> <amount>`;
 * - summary lines: `Subtotal`, `Freight`/`Shipping`/`Handling` (charges), `Discount` (allowance),
 *   `Tax` (with an optional `(8.25%)`) and `Total`.
 * A field read from a weaker cue (a title instead of a label, a `$` instead of a currency code,
 * a total computed because none is printed) is listed in `source.lowConfidence`, never silently
 * guessed; a mandatory field with no cue at all is a DocumentError naming what was looked for.
 */
import { extractTextItems, getDocumentProxy } from "unpdf";
import { DocumentError } from "../errors.js";
import { at, Fields, finish, messageOf, NO_TEXT_LAYER, nonEmpty, optional, type ParseOptions } from "./fields.js";
import type { Adjustment, DocumentFormat, NormalizedPo, PoLine } from "./model.js";

/** PDFs longer than this are refused: a PO is a few pages; a long file is something else (or hostile). */
export const MAX_PDF_PAGES = 50;

/** The text layer as lines, page after page. Empty when the PDF has no text (a scan). */
export async function pdfTextLines(bytes: Uint8Array): Promise<string[]> {
  let proxy: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // PDF.js may transfer (detach) the buffer it is given: hand it a copy.
    proxy = await getDocumentProxy(new Uint8Array(bytes), {
      isEvalSupported: false,
      useSystemFonts: false,
      disableFontFace: true,
      stopAtErrors: false,
      verbosity: 0,
    });
  } catch (err) {
    const reason = messageOf(err);
    const encrypted = /password/i.test(reason) ? " (it is password-protected)" : "";
    throw new DocumentError(`the PDF cannot be opened${encrypted}: ${reason}`, { cause: err });
  }
  try {
    if (proxy.numPages > MAX_PDF_PAGES) {
      throw new DocumentError(`the PDF has ${proxy.numPages} pages; a purchase order is read up to ${MAX_PDF_PAGES}`);
    }
    const { items } = await extractTextItems(proxy);
    return items.flatMap((page) => toLines(page));
  } catch (err) {
    if (err instanceof DocumentError) throw err;
    throw new DocumentError(`the PDF is damaged: ${messageOf(err)}`, { cause: err });
  } finally {
    await proxy.destroy().catch(() => undefined);
  }
}

interface Item {
  str: string;
  x: number;
  y: number;
  width: number;
  fontSize: number;
}

function toLines(items: Item[]): string[] {
  const rows: { y: number; items: Item[] }[] = [];
  for (const it of items) {
    if (!it.str.trim()) continue;
    const tol = Math.max(2, (it.fontSize || 10) * 0.4);
    const row = rows.find((r) => Math.abs(r.y - it.y) <= tol);
    if (row) row.items.push(it);
    else rows.push({ y: it.y, items: [it] });
  }
  rows.sort((a, b) => b.y - a.y);
  return rows.map((r) => {
    r.items.sort((a, b) => a.x - b.x);
    let line = "";
    let end = Number.NEGATIVE_INFINITY;
    for (const it of r.items) {
      const gap = it.x - end;
      if (line) line += gap > (it.fontSize || 10) * 0.8 ? "  " : gap > 0.5 ? " " : "";
      line += it.str;
      end = it.x + it.width;
    }
    return line.trim();
  });
}

export async function readPdf(bytes: Uint8Array, fileName: string, opts: ParseOptions): Promise<NormalizedPo> {
  const lines = await pdfTextLines(bytes);
  if (lines.join("").trim() === "") {
    throw new DocumentError(
      `${NO_TEXT_LAYER}; it cannot be read offline. With Claude as the model it is sent as a document block; otherwise ask the sender for a text PDF or a structured format`,
    );
  }
  return parsePoText(lines, fileName, opts, "pdf");
}

const AMOUNT = String.raw`[-−]?[$€£]?\s?\d{1,3}(?:,\d{3})*(?:\.\d+)?|[-−]?[$€£]?\s?\d+(?:\.\d+)?`;
const ROW = new RegExp(
  String.raw`^(\d{1,4})\s+(.+?)\s+(\d+(?:\.\d+)?)\s+([A-Za-z][A-Za-z0-9]{0,7})\s+(${AMOUNT})\s+(${AMOUNT})$`,
);

/** Label patterns; the value is the rest of the cell or, for a label standing alone, the next cell. */
const LABELS = {
  poNumber: /^(?:purchase\s+order|p\.?\s?o\.?)\s*(?:number|no\.?|#|num\.?)\s*[:#]?/i,
  orderDate: /^(?:order|po|p\.o\.|issue)\s+date\s*:?/i,
  buyer: /^(?:buyer|bill\s+to|ordered\s+by|customer|purchaser)\s*:/i,
  supplier: /^(?:supplier|vendor|seller)(?:\s+name)?\s*:/i,
  supplierId: /^(?:supplier|vendor)\s*(?:id|no\.?|number|#|code)\s*:?/i,
  currency: /^currency\s*:?/i,
  requestedDelivery:
    /^(?:requested\s+delivery(?:\s+date)?|delivery\s+date|deliver\s+by|need(?:ed)?\s+by|ship\s+by)\s*:?/i,
  notes: /^(?:notes?|comments?|remarks?)\s*:/i,
} as const;
/**
 * Headings printed on their own (`VENDOR`, `BUYER`, `CURRENCY`), the value on the next line below
 * them: in the same column when the next line has as many cells, else its first cell.
 */
const HEADINGS: Partial<Record<keyof typeof LABELS, RegExp>> = {
  poNumber: /^(?:purchase\s+order|p\.?\s?o\.?)\s*(?:number|no\.?|#|num\.?)$/i,
  orderDate: /^(?:(?:order|po|p\.o\.|issue)\s+)?date$/i,
  buyer: /^(?:buyer|bill\s+to|ordered\s+by|customer|purchaser|sold\s+to)$/i,
  supplier: /^(?:supplier|vendor|seller)(?:\s+name)?$/i,
  supplierId: /^(?:supplier|vendor)\s*(?:id|no\.?|number|#|code)$/i,
  currency: /^currency$/i,
  requestedDelivery: /^(?:requested\s+delivery(?:\s+date)?|delivery\s+date|deliver\s+by|need(?:ed)?\s+by)$/i,
  notes: /^(?:notes?|comments?|remarks?)$/i,
};
/** `No. P00342` under a "Purchase Order" title: the PO number. */
const TITLED_NUMBER = /^(?:no\.?|nr\.?|number|#)\s*:?\s*([A-Z0-9][\w\-/.]*\d[\w\-/.]*)$/i;

/** Fields whose value is one token (a number or code), not the rest of the cell. */
const ONE_TOKEN = new Set(["poNumber", "supplierId", "currency"]);
/** Label keys as PO field paths, for the source block. */
const PATH: Record<string, string> = { buyer: "buyer.name", supplier: "supplier.name", supplierId: "supplier.id" };

/** Weaker cues, each making the field low-confidence. */
const WEAK = {
  poNumber: [/^purchase\s+order\s+([A-Z0-9][\w\-/.]*\d[\w\-/.]*)$/i, /\bP\.?O\.?\s*#?\s*:?\s*([A-Z]{0,5}-?\d[\w-]*)/],
  orderDate: [/^date\s*:?\s*(.+)/i],
} as const;

/**
 * The heuristic reader over text lines (a PDF text layer or an email body). Cells are split on
 * two or more spaces: a label's value ends where the next column starts.
 */
export function parsePoText(
  lines: string[],
  fileName: string,
  opts: ParseOptions,
  format: DocumentFormat,
): NormalizedPo {
  const f = new Fields();
  const fields: { field: string; from: string }[] = [];
  const lowConfidence: string[] = [];
  const rows = lines.map((l) =>
    l
      .split(/\s{2,}/)
      .map((c) => c.trim())
      .filter(Boolean),
  );
  const cells = rows.flat();

  const isHeading = (c: string) =>
    Object.values(HEADINGS).some((re) => re.test(c)) ||
    Object.values(LABELS).some((re) => re.test(c) && re.exec(c)?.[0] === c);
  /** The value printed under a heading: the next non-empty line, same column when the columns line up. */
  const below = (r: number, i: number): string | undefined => {
    const row = rows[r] ?? [];
    const next = rows.slice(r + 1).find((x) => x.length > 0);
    if (!next) return undefined;
    const v = row.length === 1 ? next[0] : next.length === row.length ? next[i] : undefined;
    return v && !isHeading(v) ? v : undefined;
  };
  const find = (key: keyof typeof LABELS): string | undefined => {
    for (const [r, row] of rows.entries()) {
      for (const [i, c] of row.entries()) {
        const heading = HEADINGS[key]?.test(c) ? c : undefined;
        const m = heading ? undefined : LABELS[key].exec(c);
        if (!m && !heading) continue;
        const label = heading ?? (m?.[0] as string);
        const rest = c.slice(label.length).trim();
        const beside = row[i + 1] !== undefined && !isHeading(row[i + 1] as string) ? row[i + 1] : undefined;
        const under = rest || beside ? undefined : below(r, i);
        const raw = rest || beside || under || "";
        const value = ONE_TOKEN.has(key) ? raw.split(/\s+/)[0] : raw;
        if (!value) continue;
        const name = label.replace(/[:#\s]+$/, "");
        fields.push({
          field: PATH[key] ?? key,
          from: under ? `heading "${name}" (value on the line below)` : `label "${name}"`,
        });
        return value;
      }
    }
    return undefined;
  };
  /** `No. P00342` in a document titled "Purchase Order". */
  const titledNumber = (): string | undefined => {
    if (!lines.some((l) => /\bpurchase\s+order\b/i.test(l))) return undefined;
    for (const c of cells) {
      const m = TITLED_NUMBER.exec(c);
      if (m?.[1]) {
        fields.push({ field: "poNumber", from: `label "${c.split(/\s/)[0]}" under the "Purchase Order" title` });
        return m[1];
      }
    }
    return undefined;
  };
  const findWeak = (key: keyof typeof WEAK): string | undefined => {
    for (const re of WEAK[key]) {
      for (const l of [...cells, ...lines]) {
        const m = re.exec(l);
        if (m?.[1]) {
          fields.push({ field: key, from: `text "${l.slice(0, 40)}" (no label)` });
          lowConfidence.push(key);
          return m[1].trim();
        }
      }
    }
    return undefined;
  };

  const poNumber = find("poNumber") ?? titledNumber() ?? findWeak("poNumber");
  const orderDate = find("orderDate") ?? findWeak("orderDate");
  const buyer = find("buyer");
  const supplier = find("supplier");
  const supplierId = find("supplierId");
  let currency = find("currency")?.toUpperCase();
  if (!currency) {
    const symbols = new Set(lines.join(" ").match(/[$€£]/g) ?? []);
    const only = symbols.size === 1 ? [...symbols][0] : undefined;
    currency = only === "$" ? "USD" : only === "€" ? "EUR" : only === "£" ? "GBP" : undefined;
    if (currency) {
      fields.push({ field: "currency", from: `the ${only} sign (no currency code printed)` });
      lowConfidence.push("currency");
    }
  }

  const missing = [
    [poNumber, "no PO number (looked for 'PO Number:', 'Purchase Order No.')"],
    [orderDate, "no order date (looked for 'Order Date:', 'Date:')"],
    [buyer, "no buyer (looked for 'Buyer:', 'Bill To:', 'Customer:')"],
    [supplier, "no supplier (looked for 'Supplier:', 'Vendor:')"],
    [currency, "no currency (looked for 'Currency:' or a single currency sign)"],
  ]
    .filter(([v]) => v === undefined)
    .map(([, why]) => why);
  const what = format === "pdf" ? "the PDF's text layer" : "the text";
  if (missing.length > 0) throw new DocumentError(`${what} has ${missing.join(", ")}`);
  const cur = currency as string;

  const money = (t: string, where: string) => f.amount(t.replace(/[$€£,\s]/g, "").replace("−", "-"), at(where), cur);
  const poLines: PoLine[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\s+/g, " ").trim();
    const m = ROW.exec(line);
    if (!m) continue;
    const [, id, description, quantity, unit, price, amount] = m;
    const i = poLines.length;
    poLines.push(
      f.line(
        {
          id,
          description: description?.trim(),
          quantity,
          unit,
          unitPrice: price?.replace(/[$€£,\s]/g, ""),
          amount: amount?.replace(/[$€£,\s]/g, ""),
        },
        (k) => at(`table row ${i + 1} (${k})`, k),
        i,
        cur,
      ),
    );
  }
  if (poLines.length === 0) {
    throw new DocumentError(
      `${what} has no order lines (looked for table rows: line, description, quantity, unit, unit price, amount)`,
    );
  }
  fields.push({ field: "lines[]", from: "table rows: line, description, quantity, unit, unit price, amount" });

  const summary = (re: RegExp): { amount: number; label: string; rate?: string }[] =>
    lines.flatMap((l) => {
      const m = new RegExp(String.raw`^(${re.source})\s*(?:\((\d+(?:\.\d+)?)\s*%\))?\s*:?\s*(${AMOUNT})$`, "i").exec(
        l.replace(/\s+/g, " ").trim(),
      );
      if (!m?.[1] || !m[3]) return [];
      return [{ label: m[1], amount: money(m[3], `summary line "${m[1]}"`), ...optional("rate", m[2]) }];
    });
  const charges: Adjustment[] = summary(
    /freight|shipping(?: (?:&|and) handling)?|handling|delivery charge|surcharge/,
  ).map((s) => ({ reason: s.label, amountMinor: Math.abs(s.amount) }));
  const allowances: Adjustment[] = summary(/discount|allowance|rebate/).map((s) => ({
    reason: s.label,
    amountMinor: Math.abs(s.amount),
  }));
  const taxes = summary(/(?:sales )?tax|vat|gst/);
  const tax = taxes[0] ? { amountMinor: taxes[0].amount, ...optional("rate", taxes[0].rate) } : undefined;
  const subtotal = summary(/sub-?total/)[0];
  let total = summary(/(?:grand )?total(?: due| amount)?|amount due|balance due/)[0]?.amount;
  if (total === undefined) {
    total =
      poLines.reduce((a, l) => a + l.amountMinor, 0) +
      charges.reduce((a, c) => a + c.amountMinor, 0) -
      allowances.reduce((a, c) => a + c.amountMinor, 0) +
      (tax?.amountMinor ?? 0);
    fields.push({ field: "totalMinor", from: "computed: no 'Total' line printed" });
    lowConfidence.push("totalMinor");
  } else fields.push({ field: "totalMinor", from: "summary line 'Total'" });

  const delivery = find("requestedDelivery");
  return finish(
    {
      poNumber: f.text(poNumber, at("PO number")),
      orderDate: f.date(orderDate, at("label 'Order Date'", "order date"), opts),
      buyer: { name: f.text(buyer, at("buyer")) },
      supplier: { name: f.text(supplier, at("supplier")), ...optional("id", supplierId) },
      currency: cur,
      lines: poLines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional("tax", tax),
      ...optional(
        "totals",
        subtotal || tax
          ? { ...optional("lineTotalMinor", subtotal?.amount), ...optional("taxMinor", tax?.amountMinor) }
          : undefined,
      ),
      totalMinor: total,
      ...optional("requestedDelivery", f.optionalDate(delivery, at("label 'Requested Delivery'"), opts)),
      ...optional("notes", find("notes")),
      source: {
        format,
        document: fileName,
        method: "text-layer",
        fields,
        ...nonEmpty("lowConfidence", lowConfidence),
      },
    },
    format,
  );
}

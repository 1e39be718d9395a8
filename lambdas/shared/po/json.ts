/**
 * JSON → `NormalizedPo`: one object, the shape a model's extraction answer has too (claude-extract.ts).
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
 */
import { DocumentError } from "../errors.js";
import {
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
import type { Adjustment, NormalizedPo, PoLine } from "./model.js";

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

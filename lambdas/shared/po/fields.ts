/**
 * Shared reading helpers for every format: typed values out of loosely typed documents, each
 * failure a `DocumentError` that names the field and what it held.
 */
import { DocumentError } from "../errors.js";
import {
  type Adjustment,
  type DocumentFormat,
  type NormalizedPo,
  NormalizedPo as NormalizedPoSchema,
  type PoLine,
} from "./model.js";
import { multiplyQuantity, numberToDecimalText, toMinor } from "./money.js";
import { toIsoDate } from "./transform.js";

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface ParseOptions {
  /** The customer's IANA time zone: a timestamp (rather than a date) becomes the date there. */
  timeZone?: string;
  /**
   * The customer receiving the document. Its name stands in for a buyer the document does not
   * name, and its vendor list names a supplier the document gives only by id; both are flagged
   * low-confidence, so the policy or a human confirms them.
   */
  receiver?: { name: string; vendors?: readonly { id: string; name: string }[] };
  /** This customer's CSV headers for the columns no synonym covers: canonical column → header. */
  csvColumns?: Readonly<Partial<Record<string, string>>>;
}

/**
 * A document that was recognised but cannot be read as a PO. `format` is the detected format (so
 * a caller can say "X12, but ..."), `missing` every mandatory field absent, not only the first.
 */
export class PoDocumentError extends DocumentError {
  override readonly name: string = "PoDocumentError";
  readonly format: DocumentFormat | undefined;
  readonly missing: string[];
  constructor(
    message: string,
    detail: { format?: DocumentFormat; missing?: string[] } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.format = detail.format;
    this.missing = detail.missing ?? [];
  }
}

/** Where a value came from, worded for the message: `field "lines[0].quantity"`, `column "quantity" on line 3`. */
export interface Where {
  label: string;
  missing: string;
}

export const jsonField = (name: string): Where => ({ label: `field "${name}"`, missing: `missing field "${name}"` });
export const csvColumn = (name: string, line?: number): Where => {
  const on = line === undefined ? "" : ` on line ${line}`;
  return { label: `column "${name}"${on}`, missing: `missing value for "${name}"${on}` };
};
/** A place in a structured document: an XML path or an X12 element such as `PO1[2]/PO104`. */
export const at = (place: string, what?: string): Where => ({
  label: place,
  missing: `missing ${what ?? "value"} (${place})`,
});

export interface RawLine {
  id: unknown;
  description: unknown;
  quantity: unknown;
  unit: unknown;
  unitPrice: unknown;
  amount: unknown;
}

/** Reads typed values, throwing a DocumentError that names the field and what it held. */
export class Fields {
  /** `decimalComma` is "," for `;`-delimited CSV, where "12,50" means 12.50. */
  constructor(private readonly decimalComma: "," | "" = "") {}

  /** Mandatory fields found absent by `required`/`requiredDate`, reported together by `finish`. */
  readonly missing: string[] = [];

  /** Mandatory text whose absence is noted (and reported with the others by `finish`), not thrown at once. */
  required(v: unknown, w: Where): string {
    const t = this.optionalText(v, w);
    if (t === undefined) this.missing.push(w.missing);
    return t ?? "";
  }

  /** Like `required`, for a date; an unreadable date still throws at once (it is there, but wrong). */
  requiredDate(v: unknown, w: Where, opts: ParseOptions): string {
    const d = this.optionalDate(v, w, opts);
    if (d === undefined) this.missing.push(w.missing);
    return d ?? "";
  }

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

  optionalAmount(v: unknown, w: Where, currency: string): number | undefined {
    if (v === undefined || v === null || v === "") return undefined;
    return this.amount(v, w, currency);
  }

  /** A non-negative percentage rate as decimal text ("8.25"). */
  optionalRate(v: unknown, w: Where): string | undefined {
    if (v === undefined || v === null || v === "") return undefined;
    const t = this.decimal(v, w).replace(/^0+(?=\d)/, "");
    if (t.startsWith("-")) throw new DocumentError(`${w.label}: a tax rate cannot be negative, got ${t}`);
    return t;
  }

  adjustment(reason: unknown, amount: unknown, code: unknown, w: (k: string) => Where, currency: string): Adjustment {
    const amountMinor = this.amount(amount, w("amount"), currency);
    if (amountMinor < 0) {
      throw new DocumentError(
        `${w("amount").label}: a charge or allowance is a positive amount (the kind says which way it goes), got ${String(amount)}`,
      );
    }
    const c = this.optionalText(code, w("code"));
    return { reason: this.optionalText(reason, w("reason")) ?? "", ...optional("code", c), amountMinor };
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

/**
 * Checks the assembled PO against the schema; what is missing becomes one DocumentError. `missing`
 * (from `Fields.required`) names every absent mandatory field at once.
 */
export function finish(po: NormalizedPo, format: DocumentFormat, missing: readonly string[] = []): NormalizedPo {
  if (missing.length > 0) {
    throw new PoDocumentError(missing.length === 1 ? (missing[0] as string) : missing.join("; "), {
      format,
      missing: [...missing],
    });
  }
  const checked = NormalizedPoSchema.safeParse(po);
  if (!checked.success) {
    const issues = checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new DocumentError(`the ${format.toUpperCase()} purchase order is incomplete: ${issues}`);
  }
  return checked.data;
}

export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** `{ key: list }` when the list has items, `{}` otherwise: empty lists stay out of the PO. */
export function nonEmpty<K extends string, V>(key: K, list: V[]): { [P in K]?: V[] } {
  return optional(key, list.length > 0 ? list : undefined);
}

export function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * How a PDF without a text layer is refused (read_document has nothing to show for it either); here,
 * not in pdf.ts, so telling a scan from a failed parse does not load the PDF reader.
 */
export const NO_TEXT_LAYER = "the PDF has no text layer (a scanned image?)";

/** The text an error carries, for wrapping library errors into a DocumentError reason. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

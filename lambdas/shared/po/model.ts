import { z } from "zod/v3";

/** Money is integer minor units (cents) to keep arithmetic exact; never binary floats. */
export const Minor = z.number().int();

const Decimal = z.string().regex(/^\d+(\.\d+)?$/);

/** A charge (freight, handling) or allowance (discount): always a non-negative amount. */
export const Adjustment = z.object({
  reason: z.string(),
  /** The sender's code, e.g. X12 SAC02 `D240` or UN/CEFACT 5189/7161. */
  code: z.string().optional(),
  amountMinor: Minor,
});
export type Adjustment = z.infer<typeof Adjustment>;

export const PoLine = z.object({
  id: z.string().min(1),
  description: z.string(),
  /** Decimal string so fractional quantities (2.5 kg) stay exact. */
  quantity: Decimal,
  unit: z.string().min(1),
  unitPriceMinor: Minor,
  /** The line's net amount: quantity × unit price + its charges − its allowances. */
  amountMinor: Minor,
  /** Line-level charges and allowances (UBL `LineItem/AllowanceCharge`, X12 SAC in a PO1 loop). */
  charges: z.array(Adjustment).optional(),
  allowances: z.array(Adjustment).optional(),
});
export type PoLine = z.infer<typeof PoLine>;

export const Tax = z.object({
  amountMinor: Minor,
  /** Percent as decimal text ("8.25"), when the document states one. */
  rate: Decimal.optional(),
  description: z.string().optional(),
});
export type Tax = z.infer<typeof Tax>;

/**
 * Subtotals as the document states them (the validator checks them); the payable total is
 * `totalMinor` = lines + charges − allowances + tax − prepaid + rounding.
 */
export const Totals = z.object({
  lineTotalMinor: Minor.optional(),
  chargeTotalMinor: Minor.optional(),
  allowanceTotalMinor: Minor.optional(),
  taxExclusiveMinor: Minor.optional(),
  taxMinor: Minor.optional(),
  /** Amount with tax, before prepayment and rounding (UBL `TaxInclusiveAmount`). */
  taxInclusiveMinor: Minor.optional(),
  /** Already paid: subtracted from the payable total (UBL `PrepaidAmount`). */
  prepaidMinor: Minor.optional(),
  /** Rounding of the payable total, signed (UBL `PayableRoundingAmount`). */
  roundingMinor: Minor.optional(),
});
export type Totals = z.infer<typeof Totals>;

export const PARTY_ID = z.object({ scheme: z.string(), value: z.string().min(1) });

/** The canonical CSV columns; a customer maps its own headers onto these (config `formats.csv.columns`). */
export const CSV_COLUMNS = [
  "po_number",
  "order_date",
  "buyer",
  "supplier",
  "supplier_id",
  "currency",
  "line_id",
  "description",
  "quantity",
  "unit",
  "unit_price",
  "line_amount",
  "total",
  "requested_delivery",
  "notes",
] as const;
export type CsvColumn = (typeof CSV_COLUMNS)[number];

export const DOCUMENT_FORMATS = ["json", "csv", "cxml", "ubl", "x12", "edifact", "pdf", "email"] as const;
export const DocumentFormatSchema = z.enum(DOCUMENT_FORMATS);
export type DocumentFormat = z.infer<typeof DocumentFormatSchema>;

/**
 * Where the PO came from. `fields` maps a PO field (`poNumber`, `lines[].quantity`) to where the
 * parser took it (`BEG03`, `/cXML/Request/OrderRequest/OrderRequestHeader/@orderID`, `label "PO Number"`).
 * `lowConfidence` lists the fields a heuristic or a model read and a human should check.
 */
export const Source = z.object({
  format: DocumentFormatSchema,
  document: z.string(),
  /** How the fields were read: a structured format, the PDF text layer, or a model reading the document. */
  method: z.enum(["structured", "text-layer", "model"]).optional(),
  /** The enclosing document, when the PO was an email attachment (or body). */
  container: z
    .object({ format: DocumentFormatSchema, document: z.string(), part: z.string(), messageId: z.string().optional() })
    .optional(),
  /** Which PO of a document holding several (an X12 interchange, a CSV, an EDIFACT interchange). */
  position: z
    .object({ index: z.number().int().positive(), of: z.number().int().positive(), label: z.string() })
    .optional(),
  fields: z.array(z.object({ field: z.string(), from: z.string() })).optional(),
  lowConfidence: z.array(z.string()).optional(),
});
export type Source = z.infer<typeof Source>;

/** The one normalized purchase order every format is parsed into. */
export const NormalizedPo = z.object({
  poNumber: z.string().min(1),
  /** Issue date, ISO 8601 (YYYY-MM-DD). */
  orderDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  buyer: z.object({ name: z.string().min(1), id: z.string().optional() }),
  /** `id` is the id the customer's vendor list knows; `ids` every other id the document gives (DUNS, GLN...). */
  supplier: z.object({ name: z.string().min(1), id: z.string().optional(), ids: z.array(PARTY_ID).optional() }),
  /** ISO 4217. */
  currency: z.string().regex(/^[A-Z]{3}$/),
  lines: z.array(PoLine).min(1),
  charges: z.array(Adjustment).optional(),
  allowances: z.array(Adjustment).optional(),
  tax: Tax.optional(),
  totals: Totals.optional(),
  /** The payable total as the document states it: lines + charges − allowances + tax (− prepaid + rounding). Policy limits apply to it. */
  totalMinor: Minor,
  requestedDelivery: z.string().optional(),
  notes: z.string().optional(),
  source: Source,
});
export type NormalizedPo = z.infer<typeof NormalizedPo>;

export type Severity = "error" | "warning" | "info";

/** A validation finding: machine code, severity and a sentence a human can act on. */
export interface Finding {
  code: string;
  severity: Severity;
  message: string;
  path?: string;
}

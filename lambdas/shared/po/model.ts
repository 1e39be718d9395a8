import { z } from "zod";

/** Money is integer minor units (cents) to keep arithmetic exact; never binary floats. */
export const Minor = z.number().int();

export const PoLine = z.object({
  id: z.string().min(1),
  description: z.string(),
  /** Decimal string so fractional quantities (2.5 kg) stay exact. */
  quantity: z.string().regex(/^\d+(\.\d+)?$/),
  unit: z.string().min(1),
  unitPriceMinor: Minor,
  amountMinor: Minor,
});
export type PoLine = z.infer<typeof PoLine>;

/** The one normalized purchase order every format is parsed into. */
export const NormalizedPo = z.object({
  poNumber: z.string().min(1),
  /** ISO 8601 date (YYYY-MM-DD). */
  orderDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  buyer: z.object({ name: z.string().min(1) }),
  supplier: z.object({ name: z.string().min(1), id: z.string().optional() }),
  /** ISO 4217. */
  currency: z.string().regex(/^[A-Z]{3}$/),
  lines: z.array(PoLine).min(1),
  totalMinor: Minor,
  requestedDelivery: z.string().optional(),
  notes: z.string().optional(),
  source: z.object({ format: z.enum(["json", "csv"]), document: z.string() }),
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

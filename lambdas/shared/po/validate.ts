import type { CustomerConfig } from "../config/schema.js";
import { findVendor, normalizeVendorName } from "../policy/evaluate.js";
import type { Finding, NormalizedPo } from "./model.js";
import { formatMinor, multiplyQuantity } from "./money.js";
import { toIsoDate } from "./transform.js";

export interface ValidateOptions {
  /** Run id that already saved an order with this PO number, if any (duplicate detection). */
  existingRunForPoNumber?: string;
}

/** Finding codes, so callers and tests match on names rather than on sentences. */
export const FINDING = {
  LINE_AMOUNT_MISMATCH: "LINE_AMOUNT_MISMATCH",
  TOTAL_MISMATCH: "TOTAL_MISMATCH",
  NON_POSITIVE_TOTAL: "NON_POSITIVE_TOTAL",
  DUPLICATE_LINE_ID: "DUPLICATE_LINE_ID",
  ZERO_QUANTITY: "ZERO_QUANTITY",
  INVALID_ORDER_DATE: "INVALID_ORDER_DATE",
  DUPLICATE_PO_NUMBER: "DUPLICATE_PO_NUMBER",
  CURRENCY_MISMATCH: "CURRENCY_MISMATCH",
  UNKNOWN_SUPPLIER: "UNKNOWN_SUPPLIER",
  DELIVERY_BEFORE_ORDER: "DELIVERY_BEFORE_ORDER",
  UNREADABLE_DELIVERY_DATE: "UNREADABLE_DELIVERY_DATE",
  MISSING_DELIVERY_DATE: "MISSING_DELIVERY_DATE",
  LINE_TOTAL_MISMATCH: "LINE_TOTAL_MISMATCH",
  CHARGE_TOTAL_MISMATCH: "CHARGE_TOTAL_MISMATCH",
  ALLOWANCE_TOTAL_MISMATCH: "ALLOWANCE_TOTAL_MISMATCH",
  TAX_EXCLUSIVE_MISMATCH: "TAX_EXCLUSIVE_MISMATCH",
  TAX_INCLUSIVE_MISMATCH: "TAX_INCLUSIVE_MISMATCH",
  TAX_TOTAL_MISMATCH: "TAX_TOTAL_MISMATCH",
  TAX_RATE_MISMATCH: "TAX_RATE_MISMATCH",
  NEGATIVE_ADJUSTMENT: "NEGATIVE_ADJUSTMENT",
  MISSING_FIELD: "MISSING_FIELD",
  LOW_CONFIDENCE_FIELDS: "LOW_CONFIDENCE_FIELDS",
} as const;

/**
 * Business checks on a parsed PO. Errors mean the PO must not be saved as is; warnings need a
 * human's eye (or the policy's); info is for the record. Pure: the caller looks up duplicates.
 */
export function validatePo(po: NormalizedPo, customer: CustomerConfig, opts: ValidateOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const money = (minor: number) => formatMinor(minor, po.currency);
  const add = (code: keyof typeof FINDING, severity: Finding["severity"], message: string, path?: string) =>
    findings.push({ code: FINDING[code], severity, message, ...(path ? { path } : {}) });

  if (opts.existingRunForPoNumber) {
    add(
      "DUPLICATE_PO_NUMBER",
      "error",
      `PO ${po.poNumber} was already saved by run ${opts.existingRunForPoNumber}; saving it again would duplicate the order.`,
      "poNumber",
    );
  }

  const seenIds = new Map<string, number>();
  po.lines.forEach((line, i) => {
    const label = `Line ${line.id}${line.description ? ` (${line.description})` : ""}`;
    const earlier = seenIds.get(line.id);
    if (earlier !== undefined) {
      add(
        "DUPLICATE_LINE_ID",
        "error",
        `Line id ${line.id} is used by lines ${earlier + 1} and ${i + 1}.`,
        `lines[${i}].id`,
      );
    } else seenIds.set(line.id, i);

    if (/^0+(\.0+)?$/.test(line.quantity)) {
      add("ZERO_QUANTITY", "warning", `${label} orders a quantity of 0.`, `lines[${i}].quantity`);
    }
    const lineCharges = (line.charges ?? []).reduce((a, c) => a + c.amountMinor, 0);
    const lineAllowances = (line.allowances ?? []).reduce((a, c) => a + c.amountMinor, 0);
    const expected = multiplyQuantity(line.quantity, line.unitPriceMinor) + lineCharges - lineAllowances;
    if (expected !== line.amountMinor) {
      const adjusted = `${lineCharges ? ` + ${money(lineCharges)} charges` : ""}${lineAllowances ? ` − ${money(lineAllowances)} allowances` : ""}`;
      add(
        "LINE_AMOUNT_MISMATCH",
        "error",
        `${label}: ${line.quantity} × ${money(line.unitPriceMinor)}${adjusted} = ${money(expected)}, but the line amount is ${money(line.amountMinor)} (off by ${money(line.amountMinor - expected)}).`,
        `lines[${i}].amountMinor`,
      );
    }
  });

  const sum = po.lines.reduce((acc, l) => acc + l.amountMinor, 0);
  const charges = po.charges ?? [];
  const allowances = po.allowances ?? [];
  const chargeSum = charges.reduce((acc, c) => acc + c.amountMinor, 0);
  const allowanceSum = allowances.reduce((acc, c) => acc + c.amountMinor, 0);
  const taxMinor = po.tax?.amountMinor ?? 0;
  const stated = po.totals ?? {};
  const statedCheck = (
    code: keyof typeof FINDING,
    what: string,
    computed: number,
    value: number | undefined,
    path: string,
  ) => {
    if (value !== undefined && value !== computed) {
      add(
        code,
        "error",
        `${what} is stated as ${money(value)} but adds up to ${money(computed)} (off by ${money(value - computed)}).`,
        path,
      );
    }
  };
  [...charges.map((c) => ["charges", c] as const), ...allowances.map((c) => ["allowances", c] as const)].forEach(
    ([kind, c]) => {
      if (c.amountMinor < 0) {
        const i = (kind === "charges" ? charges : allowances).indexOf(c);
        add(
          "NEGATIVE_ADJUSTMENT",
          "error",
          `The ${kind === "charges" ? "charge" : "allowance"} "${c.reason}" is ${money(c.amountMinor)}; it must be positive (an allowance is subtracted, a charge added).`,
          `${kind}[${i}].amountMinor`,
        );
      }
    },
  );
  statedCheck("LINE_TOTAL_MISMATCH", "The line total", sum, stated.lineTotalMinor, "totals.lineTotalMinor");
  statedCheck(
    "CHARGE_TOTAL_MISMATCH",
    "The charge total",
    chargeSum,
    stated.chargeTotalMinor,
    "totals.chargeTotalMinor",
  );
  statedCheck(
    "ALLOWANCE_TOTAL_MISMATCH",
    "The allowance total",
    allowanceSum,
    stated.allowanceTotalMinor,
    "totals.allowanceTotalMinor",
  );
  const taxExclusive = sum + chargeSum - allowanceSum;
  statedCheck(
    "TAX_EXCLUSIVE_MISMATCH",
    "The amount before tax",
    taxExclusive,
    stated.taxExclusiveMinor,
    "totals.taxExclusiveMinor",
  );
  statedCheck("TAX_TOTAL_MISMATCH", "The tax total", taxMinor, stated.taxMinor, "totals.taxMinor");
  if (po.tax?.rate !== undefined) {
    const expectedTax = multiplyQuantity(percentAsFraction(po.tax.rate), taxExclusive);
    // Tax rounded per line may differ from tax on the sum by up to half a cent a line.
    if (Math.abs(expectedTax - po.tax.amountMinor) > Math.ceil(po.lines.length / 2)) {
      add(
        "TAX_RATE_MISMATCH",
        "warning",
        `Tax at ${po.tax.rate}% of ${money(taxExclusive)} is ${money(expectedTax)}, but the PO says ${money(po.tax.amountMinor)}.`,
        "tax.amountMinor",
      );
    }
  }
  statedCheck(
    "TAX_INCLUSIVE_MISMATCH",
    "The amount with tax",
    taxExclusive + taxMinor,
    stated.taxInclusiveMinor,
    "totals.taxInclusiveMinor",
  );
  const prepaid = stated.prepaidMinor ?? 0;
  const rounding = stated.roundingMinor ?? 0;
  const payable = taxExclusive + taxMinor - prepaid + rounding;
  if (payable !== po.totalMinor) {
    const parts = [`the ${po.lines.length} line amounts add up to ${money(sum)}`];
    if (charges.length) parts.push(`charges add ${money(chargeSum)}`);
    if (allowances.length) parts.push(`allowances take off ${money(allowanceSum)}`);
    if (po.tax) parts.push(`tax adds ${money(taxMinor)}`);
    if (prepaid) parts.push(`${money(prepaid)} is prepaid`);
    if (rounding) parts.push(`rounding ${rounding > 0 ? "adds" : "takes off"} ${money(Math.abs(rounding))}`);
    const lead =
      parts.length === 1
        ? `The ${po.lines.length} line amounts add up to ${money(sum)}`
        : `${capitalize(parts.join(", "))}: ${money(payable)} payable`;
    add(
      "TOTAL_MISMATCH",
      "error",
      `${lead}, but the PO total is ${money(po.totalMinor)} (off by ${money(po.totalMinor - payable)}).`,
      "totalMinor",
    );
  }
  if (po.totalMinor <= 0) {
    add(
      "NON_POSITIVE_TOTAL",
      "error",
      `The PO total is ${money(po.totalMinor)}; a purchase order must be for a positive amount.`,
      "totalMinor",
    );
  }

  po.lines.forEach((line, i) => {
    if (!line.description.trim()) {
      add(
        "MISSING_FIELD",
        "warning",
        `Line ${line.id} has no description: what is being ordered?`,
        `lines[${i}].description`,
      );
    }
  });
  const low = po.source.lowConfidence ?? [];
  if (low.length > 0) {
    const how = po.source.method === "model" ? "by a model" : "by heuristics, without an exact label or field";
    add(
      "LOW_CONFIDENCE_FIELDS",
      "warning",
      `Check ${low.join(", ")}: read ${how} from the ${po.source.format.toUpperCase()} document, so ${low.length === 1 ? "it" : "they"} may be wrong.`,
      "source.lowConfidence",
    );
  }

  const orderDate = toIsoDate(po.orderDate);
  if (orderDate !== po.orderDate) {
    add("INVALID_ORDER_DATE", "error", `The order date ${po.orderDate} is not a real calendar date.`, "orderDate");
  }

  if (po.currency !== customer.currency) {
    add(
      "CURRENCY_MISMATCH",
      "warning",
      `The PO is in ${po.currency} but ${customer.displayName} buys in ${customer.currency}; the approval limits cannot be applied without a human.`,
      "currency",
    );
  }

  const vendor = findVendor(customer, po.supplier);
  const supplierLabel = `${po.supplier.name}${po.supplier.id ? ` (id ${po.supplier.id})` : ""}`;
  if (!vendor) {
    const sameName = customer.vendors.find(
      (v) => normalizeVendorName(v.name) === normalizeVendorName(po.supplier.name),
    );
    // A known vendor's name with another id may be a look-alike: treat it as unknown, say why.
    const why = sameName ? ` It has the name of vendor ${sameName.name} but not its id (${sameName.id}).` : "";
    add(
      "UNKNOWN_SUPPLIER",
      "warning",
      `Supplier ${supplierLabel} is not on the vendor list of ${customer.displayName}.${why}`,
      "supplier",
    );
  }

  if (po.requestedDelivery === undefined) {
    add(
      "MISSING_DELIVERY_DATE",
      "info",
      `PO ${po.poNumber} does not say when delivery is wanted.`,
      "requestedDelivery",
    );
  } else {
    const delivery = toIsoDate(po.requestedDelivery);
    if (!delivery) {
      add(
        "UNREADABLE_DELIVERY_DATE",
        "warning",
        `The requested delivery date "${po.requestedDelivery}" is not a date we can read.`,
        "requestedDelivery",
      );
    } else if (orderDate && delivery < orderDate) {
      add(
        "DELIVERY_BEFORE_ORDER",
        "warning",
        `Delivery is requested for ${delivery}, before the order date ${orderDate}.`,
        "requestedDelivery",
      );
    }
  }
  return findings;
}

/** "8.25" (percent) → "0.0825", exact decimal text. */
function percentAsFraction(percent: string): string {
  const [whole = "0", fraction = ""] = percent.split(".");
  const scale = fraction.length + 2;
  const digits = `${whole}${fraction}`.replace(/^0+(?=\d)/, "").padStart(scale + 1, "0");
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * ANSI X12 850 (Purchase Order) → `NormalizedPo`. The separators are those the ISA segment
 * declares: the element separator is the 4th character, the component separator is ISA16 and the
 * segment terminator the character right after it (a newline after the terminator is allowed).
 *
 * Read: BEG (03 PO number, 05 date), CUR (02 currency; USD when absent, flagged), DTM*002
 * (delivery requested), N1 loops BY (buyer) and SE/VN (supplier; the id qualified 92 "assigned by
 * buyer" is the vendor id, others such as DUNS go to `supplier.ids`), PO1 (01 line id, 02 quantity,
 * 03 unit, 04 unit price) with PID*F (description), SAC (charge C / allowance A, SAC05 in cents:
 * X12 type N2), TXI (02 tax amount, 03 percent), CTT (line count, checked), AMT*TT (payable total;
 * computed and said so when absent) and MSG (notes).
 *
 * The envelope is checked: one 850 per interchange, SE01 segment count, IEA present. A file that
 * stops early says where it stops.
 */
import { DocumentError } from "../errors.js";
import { at, Fields, finish, nonEmpty, optional, type ParseOptions } from "./fields.js";
import type { Adjustment, NormalizedPo, PoLine } from "./model.js";
import { minorToDecimalText, toMinor } from "./money.js";

interface Segment {
  id: string;
  el: string[];
  /** 1-based position in the interchange, for messages. */
  n: number;
}

export interface X12Separators {
  element: string;
  component: string;
  segment: string;
}

/** Separators from the ISA header, or a DocumentError saying why the ISA cannot be read. */
export function x12Separators(text: string): X12Separators {
  if (!text.startsWith("ISA") || text.length < 4) throw new DocumentError("not an X12 interchange: no ISA segment");
  const element = text.charAt(3);
  if (/[A-Za-z0-9\s]/.test(element)) {
    throw new DocumentError(`the ISA segment's element separator is ${JSON.stringify(element)}; it must be a symbol`);
  }
  let pos = 3;
  for (let i = 0; i < 15; i++) {
    pos = text.indexOf(element, pos + 1);
    if (pos < 0) throw new DocumentError("the X12 ISA segment is truncated: it has fewer than 16 elements");
  }
  const component = text.charAt(pos + 1);
  const segment = text.charAt(pos + 2);
  if (!component || !segment) throw new DocumentError("the X12 ISA segment is truncated before its segment terminator");
  if (segment === element || /[A-Za-z0-9 ]/.test(segment)) {
    throw new DocumentError(
      `the X12 ISA segment has no valid segment terminator after ISA16 (found ${JSON.stringify(segment)})`,
    );
  }
  return { element, component, segment };
}

function segmentsOf(text: string, sep: X12Separators): Segment[] {
  return text
    .split(sep.segment)
    .map((s) => s.replace(/^[\r\n]+/, "").replace(/[\r\n]+$/, ""))
    .filter((s) => s.trim() !== "")
    .map((s, i) => {
      const el = s.split(sep.element);
      return { id: (el[0] ?? "").trim(), el, n: i + 1 };
    });
}

const e = (s: Segment, i: number): string | undefined => {
  const v = s.el[i]?.trim();
  return v === "" ? undefined : v;
};

/** X12 type N2: an implied two-decimal integer ("5000" = 50.00) → minor units of the currency. */
function n2ToMinor(value: string, currency: string, where: string): number {
  if (!/^-?\d+$/.test(value))
    throw new DocumentError(`${where}: expected an implied-decimal number (N2), got ${JSON.stringify(value)}`);
  const neg = value.startsWith("-");
  const digits = value.replace("-", "").padStart(3, "0");
  const text = `${neg ? "-" : ""}${digits.slice(0, -2)}.${digits.slice(-2)}`;
  try {
    return toMinor(text, currency);
  } catch (err) {
    throw new DocumentError(`${where}: ${(err as Error).message}`, { cause: err });
  }
}

export function parseX12(text: string, fileName: string, opts: ParseOptions): NormalizedPo {
  const sep = x12Separators(text);
  const all = segmentsOf(text, sep);
  const last = all[all.length - 1];
  if (!all.some((s) => s.id === "IEA")) {
    throw new DocumentError(
      `the X12 interchange is truncated: no IEA segment (the file ends at segment ${last?.n ?? 0}, ${JSON.stringify(last?.el.join(sep.element).slice(0, 40) ?? "")})`,
    );
  }
  const starts = all.filter((s) => s.id === "ST");
  if (starts.length === 0) throw new DocumentError("the X12 interchange holds no transaction set (no ST segment)");
  const kinds = starts.map((s) => e(s, 1) ?? "?");
  const pos = kinds.filter((k) => k === "850").length;
  if (pos === 0) {
    throw new DocumentError(`the X12 interchange holds transaction set ${kinds.join(", ")}, not an 850 purchase order`);
  }
  if (starts.length > 1) {
    throw new DocumentError(
      `the X12 interchange holds ${starts.length} transaction sets (${kinds.join(", ")}); send one 850 purchase order per file`,
    );
  }
  const st = starts[0] as Segment;
  const seIndex = all.findIndex((s) => s.id === "SE" && s.n > st.n);
  const se = all[seIndex];
  if (!se) throw new DocumentError(`the X12 850 starting at segment ${st.n} has no SE segment (truncated?)`);
  const tx = all.slice(st.n - 1, seIndex + 1);
  const declared = Number(e(se, 1));
  if (declared !== tx.length) {
    throw new DocumentError(
      `the X12 850's SE01 says ${e(se, 1) ?? "nothing"} segments but ST…SE holds ${tx.length} (segments lost or added in transit?)`,
    );
  }

  const f = new Fields();
  const fields: { field: string; from: string }[] = [];
  const lowConfidence: string[] = [];
  const note = (field: string, from: string) => fields.push({ field, from });

  const beg = tx.find((s) => s.id === "BEG");
  if (!beg) throw new DocumentError("the X12 850 has no BEG segment (PO number and date)");
  const cur = tx.find((s) => s.id === "CUR");
  let currency: string;
  if (cur) {
    currency = f.currency(e(cur, 2), at(`CUR02 (segment ${cur.n})`, "currency"));
    note("currency", "CUR02");
  } else {
    currency = "USD";
    note("currency", "no CUR segment: X12 defaults to USD");
    lowConfidence.push("currency");
  }

  let buyer: { name?: string; id?: string } = {};
  let supplier: { name?: string; id?: string; ids: { scheme: string; value: string }[] } = { ids: [] };
  const lines: PoLine[] = [];
  const charges: Adjustment[] = [];
  const allowances: Adjustment[] = [];
  const notes: string[] = [];
  let tax: NormalizedPo["tax"];
  let total: number | undefined;
  let ctt: Segment | undefined;
  let delivery: string | undefined;
  let currentLine: PoLine | undefined;

  for (const s of tx) {
    const where = (i: number, what?: string) => at(`${s.id}${String(i).padStart(2, "0")} (segment ${s.n})`, what);
    switch (s.id) {
      case "N1": {
        const role = e(s, 1);
        const qualifier = e(s, 3);
        const id = e(s, 4);
        if (role === "BY") buyer = { name: e(s, 2), ...optional("id", id) };
        if (role === "SE" || role === "VN") {
          supplier = {
            name: e(s, 2),
            ...optional("id", qualifier === "92" ? id : undefined),
            ids:
              id && qualifier !== "92"
                ? [{ scheme: qualifier === "1" || qualifier === "9" ? "DUNS" : `X12 ${qualifier ?? "?"}`, value: id }]
                : [],
          };
          note("supplier.name", `N1*${role} N102`);
          if (qualifier === "92") note("supplier.id", `N1*${role} N104 (qualifier 92: assigned by buyer)`);
        }
        break;
      }
      case "DTM":
        if (e(s, 1) === "002" && !delivery) {
          delivery = f.optionalDate(e(s, 2), where(2, "date"), opts);
          note("requestedDelivery", "DTM*002 DTM02");
        }
        break;
      case "PO1": {
        const i = lines.length;
        currentLine = f.line(
          { id: e(s, 1), description: "", quantity: e(s, 2), unit: e(s, 3), unitPrice: e(s, 4), amount: undefined },
          (k) => where({ id: 1, quantity: 2, unit: 3, unitPrice: 4, description: 0, amount: 0 }[k], k),
          i,
          currency,
        );
        // Product ids come in qualifier/value pairs from PO106 on: a description when PID gives none.
        const ids: string[] = [];
        for (let k = 6; k + 1 < s.el.length; k += 2) {
          const q = e(s, k);
          const v = e(s, k + 1);
          if (q && v) ids.push(`${q} ${v}`);
        }
        currentLine.description = ids.join(", ");
        lines.push(currentLine);
        break;
      }
      case "PID":
        if (currentLine && e(s, 1) === "F" && e(s, 5)) {
          currentLine.description = e(s, 5) ?? "";
        }
        break;
      case "SAC": {
        const kind = e(s, 1);
        if (kind !== "A" && kind !== "C") break;
        const raw = e(s, 5);
        if (raw === undefined)
          throw new DocumentError(`SAC05 (segment ${s.n}): a charge or allowance without an amount`);
        const amountMinor = Math.abs(n2ToMinor(raw, currency, `SAC05 (segment ${s.n})`));
        const reason = `${currentLine ? `line ${currentLine.id}: ` : ""}${e(s, 15) ?? SAC_CODES[e(s, 2) ?? ""] ?? e(s, 2) ?? ""}`;
        (kind === "C" ? charges : allowances).push({ reason, ...optional("code", e(s, 2)), amountMinor });
        break;
      }
      case "TXI": {
        const amountMinor = f.amount(e(s, 2), where(2, "tax amount"), currency);
        const rate = f.optionalRate(e(s, 3), where(3));
        tax = {
          amountMinor: (tax?.amountMinor ?? 0) + amountMinor,
          ...optional("rate", rate),
          ...optional("description", e(s, 1) === "ST" ? "state sales tax" : e(s, 1)),
        };
        note("tax", "TXI02");
        break;
      }
      case "MSG":
        if (e(s, 1)) notes.push(e(s, 1) ?? "");
        break;
      case "CTT":
        ctt = s;
        currentLine = undefined;
        break;
      case "AMT":
        if (e(s, 1) === "TT") {
          total = f.amount(e(s, 2), where(2, "total"), currency);
          note("totalMinor", "AMT*TT AMT02");
        }
        break;
      default:
        break;
    }
  }
  if (lines.length === 0) throw new DocumentError("the X12 850 has no PO1 segment (order lines)");
  if (ctt && e(ctt, 1) !== undefined && Number(e(ctt, 1)) !== lines.length) {
    throw new DocumentError(`CTT01 says ${e(ctt, 1)} line items but the 850 has ${lines.length} PO1 segments`);
  }
  const lineSum = lines.reduce((a, l) => a + l.amountMinor, 0);
  const chargeSum = charges.reduce((a, c) => a + c.amountMinor, 0);
  const allowanceSum = allowances.reduce((a, c) => a + c.amountMinor, 0);
  if (total === undefined) {
    total = lineSum + chargeSum - allowanceSum + (tax?.amountMinor ?? 0);
    note(
      "totalMinor",
      `computed: lines + charges − allowances + tax = ${minorToDecimalText(total, currency)} (no AMT*TT)`,
    );
  }
  note("poNumber", "BEG03");
  note("orderDate", "BEG05");
  note("buyer.name", "N1*BY N102");
  note("lines[].id", "PO101");
  note("lines[].quantity", "PO102");
  note("lines[].unit", "PO103");
  note("lines[].unitPriceMinor", "PO104");
  note("lines[].amountMinor", "computed: quantity × unit price (an 850 line has no amount)");
  note("lines[].description", "PID*F PID05 (else the PO107 product ids)");
  if (charges.length || allowances.length) note("charges[], allowances[]", "SAC (SAC05 in cents)");
  if (e(beg, 1) === "01") notes.unshift("BEG01 01: this 850 cancels an earlier order.");
  if (e(beg, 1) === "05") notes.unshift("BEG01 05: this 850 replaces an earlier order.");

  return finish(
    {
      poNumber: f.text(e(beg, 3), at(`BEG03 (segment ${beg.n})`, "PO number")),
      orderDate: f.date(e(beg, 5), at(`BEG05 (segment ${beg.n})`, "PO date"), opts),
      buyer: { name: f.text(buyer.name, at("N1*BY N102", "buyer name")), ...optional("id", buyer.id) },
      supplier: {
        name: f.text(supplier.name, at("N1*SE or N1*VN N102", "supplier name")),
        ...optional("id", supplier.id),
        ...nonEmpty("ids", supplier.ids),
      },
      currency,
      lines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional("tax", tax),
      ...optional("totals", tax ? { taxMinor: tax.amountMinor } : undefined),
      totalMinor: total,
      ...optional("requestedDelivery", delivery),
      ...optional("notes", notes.length ? notes.join("\n") : undefined),
      source: {
        format: "x12",
        document: fileName,
        method: "structured",
        fields,
        ...nonEmpty("lowConfidence", lowConfidence),
      },
    },
    "x12",
  );
}

/** A few common SAC02 service/charge codes, so a reason reads as words when SAC15 gives none. */
const SAC_CODES: Record<string, string> = {
  D240: "Freight",
  D500: "Handling",
  C310: "Discount",
  F050: "Other (see description)",
  H090: "Special handling",
  I530: "Insurance",
};

/**
 * ANSI X12 850 (Purchase Order) → one `NormalizedPo` per 850 of the interchange. The separators
 * are those the ISA segment declares: the element separator is the 4th character, the component
 * separator is ISA16 and the segment terminator the character right after it (a newline after the
 * terminator is allowed).
 *
 * Read: BEG (03 PO number, 05 date), CUR (02 currency; USD when absent, flagged), DTM*002
 * (delivery requested), N1 loops (BY buyer; SE/VN/SU seller, SF ship-from as a flagged stand-in;
 * BT/ST as a flagged buyer name; an id qualified 92 "assigned by buyer" is the vendor id, others
 * such as DUNS go to `supplier.ids`), PO1 (01 line id, 02 quantity, 03 unit, 04 unit price) with
 * PID*F (description) and AMT*1 (the line's stated amount), SAC (charge C / allowance A, SAC05 in
 * cents: X12 type N2; in a PO1 loop the line's own, part of its net amount), TXI (02 tax amount, 03 percent), CTT (line count, checked), AMT*TT
 * (payable total; computed and said so when absent), AMT*1 after CTT (stated line-item total) and
 * MSG (notes). Parties the 850 does not name come from the envelope and the receiving customer,
 * flagged low-confidence (see `impliedParties`).
 *
 * The envelope is checked: SE01 segment count per 850, GE01 set count per group, IEA present.
 * Other transaction sets beside the 850s are refused, not dropped. A file that stops early says
 * where it stops.
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

/** The interchange's parties as the envelope names them: ISA06/ISA08 (qualified by ISA05/07), GS02/GS03. */
interface Envelope {
  sender: { qualifier?: string; id?: string; app?: string };
  receiver: { qualifier?: string; id?: string; app?: string };
}

/**
 * Every 850 of an interchange, in order. Each ST…SE is checked (SE01 count, CTT01) and read on
 * its own; GE01 must count the sets of its group. Other transaction sets beside the 850s are
 * refused rather than dropped.
 */
export function parseX12All(text: string, fileName: string, opts: ParseOptions): NormalizedPo[] {
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
  if (pos < starts.length) {
    const others = [...new Set(kinds.filter((k) => k !== "850"))].join(", ");
    throw new DocumentError(
      `the X12 interchange holds ${pos} 850 purchase order${pos > 1 ? "s" : ""} and transaction set ${others}; only 850s are read, send the others separately`,
    );
  }
  const isa = all[0] as Segment;
  const envelope = (gs: Segment | undefined): Envelope => ({
    sender: { ...optional("qualifier", e(isa, 5)), ...optional("id", e(isa, 6)), ...optional("app", gs && e(gs, 2)) },
    receiver: { ...optional("qualifier", e(isa, 7)), ...optional("id", e(isa, 8)), ...optional("app", gs && e(gs, 3)) },
  });
  for (const ge of all.filter((s) => s.id === "GE")) {
    const gs = [...all].reverse().find((s) => s.id === "GS" && s.n < ge.n);
    const sets = all.filter((s) => s.id === "ST" && s.n > (gs?.n ?? 0) && s.n < ge.n).length;
    if (e(ge, 1) !== undefined && Number(e(ge, 1)) !== sets) {
      throw new DocumentError(
        `the X12 GE01 (segment ${ge.n}) says ${e(ge, 1)} transaction sets but its group holds ${sets} (sets lost or added in transit?)`,
      );
    }
  }
  return starts.map((st, i) => {
    const seIndex = all.findIndex((s) => s.id === "SE" && s.n > st.n);
    const se = all[seIndex];
    const next = starts[i + 1];
    if (!se || (next && se.n > next.n)) {
      throw new DocumentError(`the X12 850 starting at segment ${st.n} has no SE segment (truncated?)`);
    }
    const tx = all.slice(st.n - 1, seIndex + 1);
    const declared = Number(e(se, 1));
    const control = e(st, 2) ?? "?";
    if (declared !== tx.length) {
      throw new DocumentError(
        `the X12 850${starts.length > 1 ? ` #${control}` : ""}'s SE01 says ${e(se, 1) ?? "nothing"} segments but ST…SE holds ${tx.length} (segments lost or added in transit?)`,
      );
    }
    const gs = [...all].reverse().find((s) => s.id === "GS" && s.n < st.n);
    const po = parseTransaction(tx, envelope(gs), fileName, opts);
    return starts.length > 1
      ? {
          ...po,
          source: {
            ...po.source,
            position: { index: i + 1, of: starts.length, label: `850 #${control} (PO ${po.poNumber})` },
          },
        }
      : po;
  });
}

/** One interchange holding one 850 → its PO (the single-PO reading, kept for callers that want one). */
export function parseX12(text: string, fileName: string, opts: ParseOptions): NormalizedPo {
  const pos = parseX12All(text, fileName, opts);
  if (pos.length !== 1) {
    throw new DocumentError(`the X12 interchange holds ${pos.length} 850 purchase orders; read it with parseX12All`);
  }
  return pos[0] as NormalizedPo;
}

function parseTransaction(tx: Segment[], env: Envelope, fileName: string, opts: ParseOptions): NormalizedPo {
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

  const parties = new Map<string, { name?: string; qualifier?: string; id?: string; n: number }>();
  const lines: PoLine[] = [];
  const charges: Adjustment[] = [];
  const allowances: Adjustment[] = [];
  const notes: string[] = [];
  let tax: NormalizedPo["tax"];
  let total: number | undefined;
  let lineTotal: number | undefined;
  let ctt: Segment | undefined;
  let delivery: string | undefined;
  let currentLine: PoLine | undefined;
  /** Lines whose amount AMT*1 states: kept as stated, their SACs not applied on top. */
  const statedLines = new Set<PoLine>();

  for (const s of tx) {
    const where = (i: number, what?: string) => at(`${s.id}${String(i).padStart(2, "0")} (segment ${s.n})`, what);
    switch (s.id) {
      case "N1": {
        const role = e(s, 1);
        if (role && !parties.has(role)) {
          parties.set(role, {
            ...optional("name", e(s, 2)),
            ...optional("qualifier", e(s, 3)),
            ...optional("id", e(s, 4)),
            n: s.n,
          });
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
        const reason = e(s, 15) ?? SAC_CODES[e(s, 2) ?? ""] ?? e(s, 2) ?? "";
        const adj: Adjustment = { reason, ...optional("code", e(s, 2)), amountMinor };
        if (currentLine) {
          // A SAC in a PO1 loop belongs to that line: part of its net amount, unless AMT*1 states it.
          const key = kind === "C" ? "charges" : "allowances";
          currentLine[key] = [...(currentLine[key] ?? []), adj];
          if (!statedLines.has(currentLine)) currentLine.amountMinor += kind === "C" ? amountMinor : -amountMinor;
          note(`lines[${lines.length - 1}].${key}`, "SAC in the PO1 loop (SAC05 in cents)");
        } else (kind === "C" ? charges : allowances).push(adj);
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
      case "AMT": {
        const q = e(s, 1);
        if (q === "TT") {
          total = f.amount(e(s, 2), where(2, "total"), currency);
          note("totalMinor", "AMT*TT AMT02");
        } else if (q === "1" && currentLine) {
          // AMT*1 in a PO1 loop states that line's amount: kept as stated, the validator checks it.
          currentLine.amountMinor = f.amount(e(s, 2), where(2, "line amount"), currency);
          statedLines.add(currentLine);
          note(`lines[${lines.length - 1}].amountMinor`, "AMT*1 AMT02 in the PO1 loop (stated)");
        } else if (q === "1") {
          lineTotal = f.amount(e(s, 2), where(2, "line item total"), currency);
          note("totals.lineTotalMinor", "AMT*1 AMT02 (stated line item total)");
        }
        break;
      }
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
  const { buyer, supplier } = impliedParties(parties, env, opts, note, lowConfidence);
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
      poNumber: f.required(e(beg, 3), at(`BEG03 (segment ${beg.n})`, "PO number")),
      orderDate: f.requiredDate(e(beg, 5), at(`BEG05 (segment ${beg.n})`, "PO date"), opts),
      buyer,
      supplier,
      currency,
      lines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional("tax", tax),
      ...optional(
        "totals",
        tax || lineTotal !== undefined
          ? { ...optional("taxMinor", tax?.amountMinor), ...optional("lineTotalMinor", lineTotal) }
          : undefined,
      ),
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
    f.missing,
  );
}

type Party = { name?: string; qualifier?: string; id?: string; n: number };
type Note = (field: string, from: string) => void;

const SELLER_ROLES = ["SE", "VN", "SU", "SF"] as const;
const ROLE_NAMES: Record<string, string> = {
  BY: "buying party",
  BT: "bill-to party",
  ST: "ship-to party",
  SE: "selling party",
  VN: "vendor",
  SU: "supplier",
  SF: "ship-from party",
};

/** An id qualifier as a scheme name: DUNS for 1/9, the code otherwise. */
const scheme = (qualifier: string | undefined, where: string): string =>
  qualifier === "1" || qualifier === "9" ? "DUNS" : `X12 ${where} ${qualifier ?? "?"}`;

/**
 * Buyer and supplier as the 850 names them, else as its envelope and receiver imply them. Real
 * 850s often carry only a ship-to loop, ids without names, or no seller at all: the buyer is then
 * the customer receiving the file (or the interchange sender), the supplier the interchange
 * receiver or a vendor the customer's list knows by the given id. Everything implied is noted in
 * `source.fields` and listed low-confidence, so the policy or a human confirms it.
 */
function impliedParties(
  parties: Map<string, Party>,
  env: Envelope,
  opts: ParseOptions,
  note: Note,
  low: string[],
): { buyer: NormalizedPo["buyer"]; supplier: NormalizedPo["supplier"] } {
  const vendorById = (...ids: (string | undefined)[]) =>
    opts.receiver?.vendors?.find((v) => ids.some((id) => id && v.id.trim().toLowerCase() === id.trim().toLowerCase()));

  // Buyer: N1*BY by name; else the receiving customer; else a bill-to or ship-to name; else the sender's id.
  let buyer: NormalizedPo["buyer"];
  const by = parties.get("BY");
  const senderId = env.sender.id ?? env.sender.app;
  if (by?.name) {
    buyer = { name: by.name, ...optional("id", by.id) };
    note("buyer.name", "N1*BY N102");
  } else {
    const named = parties.get("BT")?.name ? "BT" : parties.get("ST")?.name ? "ST" : undefined;
    const id = by?.id ?? senderId;
    if (opts.receiver) {
      buyer = { name: opts.receiver.name, ...optional("id", id) };
      note("buyer.name", `the receiving customer (the 850 has no N1*BY name${id ? `; sender ${id}` : ""})`);
    } else if (named) {
      buyer = { name: parties.get(named)?.name ?? "", ...optional("id", id) };
      note("buyer.name", `N1*${named} N102, the ${ROLE_NAMES[named]} (the 850 has no N1*BY)`);
    } else {
      buyer = { name: id ?? "", ...optional("id", id) };
      note("buyer.name", by?.id ? "N1*BY N104 (an id, no name)" : "ISA06, the interchange sender's id (no N1*BY)");
    }
    low.push("buyer.name");
  }

  // Supplier: a seller loop by name; else by id through the vendor list; else the interchange receiver.
  const role = SELLER_ROLES.find((r) => parties.has(r));
  const seller = role ? parties.get(role) : undefined;
  const ids: { scheme: string; value: string }[] = [];
  if (seller?.id && seller.qualifier !== "92") ids.push({ scheme: scheme(seller.qualifier, "N103"), value: seller.id });
  const vendorId = seller?.qualifier === "92" ? seller.id : undefined;
  if (role && seller?.name) {
    note("supplier.name", `N1*${role} N102${role === "SF" ? ", the ship-from party (no N1*SE/VN)" : ""}`);
    if (vendorId) note("supplier.id", `N1*${role} N104 (qualifier 92: assigned by buyer)`);
    if (role === "SF") low.push("supplier.name");
    return {
      buyer,
      supplier: { name: seller.name, ...optional("id", vendorId), ...nonEmpty("ids", ids) },
    };
  }
  const candidates = seller
    ? [seller.id]
    : [env.receiver.id, env.receiver.app].filter((x): x is string => x !== undefined);
  const known = vendorById(...candidates);
  if (!seller && env.receiver.id)
    ids.push({ scheme: `X12 ISA08 ${env.receiver.qualifier ?? "?"}`, value: env.receiver.id });
  const whence = seller ? `N1*${role} N104 (an id, no name)` : "ISA08, the interchange receiver (no seller N1 loop)";
  low.push("supplier.name");
  if (known) {
    note("supplier.name", `the vendor list's ${known.id} for ${whence}`);
    note("supplier.id", whence);
    return { buyer, supplier: { name: known.name, id: known.id, ...nonEmpty("ids", ids) } };
  }
  const name = candidates[0] ?? "";
  note("supplier.name", whence);
  return { buyer, supplier: { name, ...optional("id", vendorId), ...nonEmpty("ids", ids) } };
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

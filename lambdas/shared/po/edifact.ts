/**
 * UN/EDIFACT ORDERS (D96A, D01B and the directories between: the segments read are the same)
 * → one `NormalizedPo` per ORDERS message of the interchange.
 *
 * Syntax (ISO 9735): the service characters are those `UNA` declares (component, element,
 * decimal mark, release character, reserved, segment terminator), else the defaults `:+.? '`.
 * The release character escapes the next character; line breaks between segments are ignored.
 * Numbers may use a decimal comma or point whatever UNA says (ISO 9735 allows both).
 *
 * Read: UNB (sender/receiver, for parties the message does not name), UNH (message type must be
 * ORDERS), BGM (document number, function), DTM 137/4 (order date) and 2/64/63 (delivery), FTX
 * (notes), NAD BY/SU/SE (names and ids: agency 9 = GLN, 92 = the buyer's number for the
 * supplier), CUX (currency), ALC + MOA 8/23/204 (charges and allowances, per line inside a LIN
 * group), LIN/PIA/IMD/QTY 21/PRI AAA or AAB/MOA 203 (lines), UNS, MOA 79 (line total), 124
 * (tax), 125 (taxable), 86/128/77/9 (payable total; computed and said so when absent), TAX
 * (rate), CNT 2 (line count, checked), UNT (segment count and reference, checked), UNZ (message
 * count, checked).
 *
 * Hand-written rather than the npm `edifact` (untyped, validation-heavy streaming parser) or
 * `ts-edifact` (0.0.x, no license, pulls an old axios): the tokenizer is small and the segments
 * above are all a PO needs.
 */
import { DocumentError } from "../errors.js";
import { at, Fields, finish, nonEmpty, optional, type ParseOptions } from "./fields.js";
import type { Adjustment, NormalizedPo, PoLine } from "./model.js";
import { minorToDecimalText } from "./money.js";

export interface EdifactSyntax {
  component: string;
  element: string;
  decimal: string;
  release: string;
  segment: string;
}

const DEFAULT_SYNTAX: EdifactSyntax = { component: ":", element: "+", decimal: ".", release: "?", segment: "'" };

interface Segment {
  tag: string;
  /** Elements after the tag, each a list of components. */
  el: string[][];
  /** 1-based position in the interchange, for messages. */
  n: number;
}

/** The service characters: UNA's six, else the defaults. */
export function edifactSyntax(text: string): EdifactSyntax {
  if (!text.startsWith("UNA")) return DEFAULT_SYNTAX;
  const chars = text.slice(3, 9);
  if (chars.length < 6)
    throw new DocumentError("the EDIFACT UNA segment is truncated: it needs six service characters");
  const [component, element, decimal, release, , segment] = [...chars] as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (new Set([component, element, segment]).size < 3) {
    throw new DocumentError(
      `the EDIFACT UNA segment declares the same character twice among component (${component}), element (${element}) and segment terminator (${segment})`,
    );
  }
  if (/[A-Za-z0-9]/.test(component + element + segment)) {
    throw new DocumentError(
      `the EDIFACT UNA segment declares a letter or digit as a separator (${JSON.stringify(chars)})`,
    );
  }
  return { component, element, decimal, release: release === " " ? "" : release, segment };
}

/** Splits the interchange into segments, honouring the release character. */
export function edifactSegments(text: string, syntax: EdifactSyntax): Segment[] {
  const body = text.startsWith("UNA") ? text.slice(9) : text;
  const segments: Segment[] = [];
  let elements: string[][] = [];
  let components: string[] = [];
  let cur = "";
  const endComponent = () => {
    components.push(cur);
    cur = "";
  };
  const endElement = () => {
    endComponent();
    elements.push(components);
    components = [];
  };
  for (let i = 0; i < body.length; i++) {
    const ch = body.charAt(i);
    if (syntax.release && ch === syntax.release) {
      if (i + 1 >= body.length) throw new DocumentError("the EDIFACT interchange ends with a release character");
      cur += body.charAt(++i);
    } else if (ch === syntax.component) endComponent();
    else if (ch === syntax.element) endElement();
    else if (ch === syntax.segment) {
      endElement();
      const [tagEl, ...rest] = elements;
      const tag = (tagEl?.[0] ?? "").trim();
      if (tag) segments.push({ tag, el: rest, n: segments.length + 1 });
      elements = [];
    } else if ((ch === "\n" || ch === "\r") && cur === "" && components.length === 0 && elements.length === 0) {
      // a line break between segments
    } else cur += ch;
  }
  if ((cur + components.join("") + elements.flat().join("")).trim() !== "") {
    throw new DocumentError(
      `the EDIFACT interchange is truncated: the last segment (${JSON.stringify((elements[0]?.[0] ?? cur).slice(0, 20))}) has no terminator "${syntax.segment}"`,
    );
  }
  return segments;
}

/** Element `i` (1-based after the tag), component `j` (0-based), trimmed; undefined when empty. */
const c = (s: Segment | undefined, i: number, j = 0): string | undefined => {
  const v = s?.el[i - 1]?.[j]?.trim();
  return v === "" ? undefined : v;
};

/** Every ORDERS message of an interchange, in order. */
export function parseEdifactAll(text: string, fileName: string, opts: ParseOptions): NormalizedPo[] {
  const syntax = edifactSyntax(text);
  const all = edifactSegments(text, syntax);
  const unb = all.find((s) => s.tag === "UNB");
  const unz = all.find((s) => s.tag === "UNZ");
  if (unb && !unz) {
    const last = all[all.length - 1];
    throw new DocumentError(
      `the EDIFACT interchange is truncated: no UNZ segment (the file ends at segment ${last?.n ?? 0}, ${last?.tag ?? ""})`,
    );
  }
  const heads = all.filter((s) => s.tag === "UNH");
  if (heads.length === 0) throw new DocumentError("the EDIFACT interchange holds no message (no UNH segment)");
  const types = heads.map((h) => c(h, 2) ?? "?");
  const others = [...new Set(types.filter((t) => t !== "ORDERS"))];
  if (others.length === heads.length) {
    throw new DocumentError(`the EDIFACT interchange holds ${others.join(", ")}, not an ORDERS purchase order`);
  }
  if (others.length > 0) {
    throw new DocumentError(
      `the EDIFACT interchange holds ORDERS and ${others.join(", ")}; only ORDERS messages are read, send the others separately`,
    );
  }
  if (unz && !all.some((s) => s.tag === "UNG") && c(unz, 1) !== undefined && Number(c(unz, 1)) !== heads.length) {
    throw new DocumentError(
      `the EDIFACT UNZ says ${c(unz, 1)} messages but the interchange holds ${heads.length} (messages lost or added in transit?)`,
    );
  }
  return heads.map((unh, i) => {
    const start = all.indexOf(unh);
    const end = all.findIndex((s, k) => k > start && s.tag === "UNT");
    const next = heads[i + 1];
    const unt = all[end];
    if (!unt || (next && unt.n > next.n)) {
      throw new DocumentError(
        `the EDIFACT message ${c(unh, 1) ?? ""} (segment ${unh.n}) has no UNT segment (truncated?)`,
      );
    }
    const msg = all.slice(start, end + 1);
    const ref = c(unh, 1) ?? "?";
    if (Number(c(unt, 1)) !== msg.length) {
      throw new DocumentError(
        `the EDIFACT message ${ref}'s UNT says ${c(unt, 1) ?? "nothing"} segments but UNH…UNT holds ${msg.length} (segments lost or added in transit?)`,
      );
    }
    if (c(unt, 2) !== undefined && c(unt, 2) !== ref) {
      throw new DocumentError(`the EDIFACT UNT (segment ${unt.n}) closes message ${c(unt, 2)}, but UNH opened ${ref}`);
    }
    const po = readOrders(msg, unb, fileName, opts);
    return heads.length > 1
      ? {
          ...po,
          source: {
            ...po.source,
            position: { index: i + 1, of: heads.length, label: `ORDERS ${ref} (PO ${po.poNumber})` },
          },
        }
      : po;
  });
}

const DATE_QUALIFIERS = { order: ["137", "4"], delivery: ["2", "64", "63", "69"] } as const;

/** A DTM value in its format code (102 CCYYMMDD, 203/204 with time, 101 YYMMDD, 718 a range) → ISO date text. */
function dtmDate(value: string | undefined, format: string | undefined, where: string): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  const iso = (d: string) => `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
  switch (format ?? "102") {
    case "102":
    case "203":
    case "204":
    case "205":
      if (/^\d{8}/.test(v)) return iso(v);
      break;
    case "101":
      if (/^\d{6}$/.test(v)) return iso(`20${v}`);
      break;
    case "718":
      if (/^\d{8}-\d{8}$/.test(v)) return iso(v);
      break;
    default:
      throw new DocumentError(`${where}: date format code ${format} is not one we read (102, 203, 204, 101, 718)`);
  }
  throw new DocumentError(`${where}: ${JSON.stringify(v)} is not a date in format ${format ?? "102"}`);
}

const SCHEMES: Record<string, string> = {
  "9": "GLN",
  "16": "DUNS",
  "91": "assigned by seller",
  "92": "assigned by buyer",
};

interface Nad {
  name?: string;
  id?: string;
  agency?: string;
  n: number;
}

function readOrders(msg: Segment[], unb: Segment | undefined, fileName: string, opts: ParseOptions): NormalizedPo {
  const f = new Fields();
  const fields: { field: string; from: string }[] = [];
  const lowConfidence: string[] = [];
  const note = (field: string, from: string) => fields.push({ field, from });
  const num = (v: string | undefined) => v?.replace(",", ".");

  const bgm = msg.find((s) => s.tag === "BGM");
  if (!bgm) throw new DocumentError("the EDIFACT ORDERS has no BGM segment (document number)");
  const cux = msg.find((s) => s.tag === "CUX");
  const moaCurrency = msg.map((s) => (s.tag === "MOA" ? c(s, 1, 2) : undefined)).find(Boolean);
  const currencyText = c(cux, 1, 1) ?? moaCurrency;
  const currency = f.currency(currencyText, at("CUX C504.6345", "currency (CUX)"));
  note("currency", c(cux, 1, 1) ? "CUX C504 6345" : "MOA 6345 (no CUX segment)");

  const parties = new Map<string, Nad>();
  const lines: PoLine[] = [];
  const charges: Adjustment[] = [];
  const allowances: Adjustment[] = [];
  const notes: string[] = [];
  let orderDate: string | undefined;
  let delivery: { value: string; rank: number } | undefined;
  let current: PoLine | undefined;
  let inSummary = false;
  let pending: { kind: "A" | "C"; reason: string; code?: string; line?: PoLine } | undefined;
  let lineTotal: number | undefined;
  let payable: { minor: number; code: string } | undefined;
  let taxMinor: number | undefined;
  let taxable: number | undefined;
  let rate: string | undefined;
  let cnt: Segment | undefined;
  /** A LIN group as read so far; it becomes a line when its first ALC, the next LIN or UNS comes. */
  interface RawLin {
    seg: Segment;
    id?: string;
    qty?: string;
    unit?: string;
    price?: string;
    priceBasis?: string;
    amount?: string;
    /** The LIN item number, until an IMD gives words. */
    itemNumber?: string;
    desc?: string;
    /** Already turned into a line (at its first ALC, the next LIN or UNS). */
    done?: boolean;
  }
  const lineRaw: RawLin[] = [];

  const finishLine = () => {
    const raw = lineRaw[lineRaw.length - 1];
    if (!raw || raw.done) return;
    raw.done = true;
    const i = lines.length;
    const w = (k: string) => at(`LIN ${raw.id ?? i + 1} (segment ${raw.seg.n}) ${k}`, k);
    let unitPrice = raw.price;
    if (raw.price && raw.priceBasis && !/^1(\.0+)?$/.test(raw.priceBasis)) {
      const perBase = f.amount(raw.price, w("PRI 5118"), currency);
      const baseQty = f.decimal(raw.priceBasis, w("PRI 5284"));
      const [whole = "0", frac = ""] = baseQty.split(".");
      const n = BigInt(perBase) * 10n ** BigInt(frac.length);
      const d = BigInt(whole + frac);
      if (d === 0n || n % d !== 0n) {
        throw new DocumentError(
          `${w("PRI").label}: a price of ${raw.price} per ${baseQty} is not a whole number of minor units per unit`,
        );
      }
      unitPrice = minorToDecimalText(Number(n / d), currency);
    }
    current = f.line(
      {
        id: raw.id,
        description: raw.desc ?? raw.itemNumber ?? "",
        quantity: raw.qty,
        unit: raw.unit ?? "C62",
        unitPrice,
        amount: raw.amount,
      },
      (k) =>
        w(
          {
            id: "LIN 1082",
            description: "IMD 7008",
            quantity: "QTY 21",
            unit: "QTY 6411",
            unitPrice: "PRI",
            amount: "MOA 203",
          }[k],
        ),
      i,
      currency,
    );
    lines.push(current);
  };
  /** A LIN group is read when the next group or the summary starts, so its later segments count. */
  const closeLine = () => {
    finishLine();
    current = undefined;
  };

  for (const s of msg) {
    const where = (el: string) => at(`${s.tag} ${el} (segment ${s.n})`);
    switch (s.tag) {
      case "DTM": {
        const q = c(s, 1, 0);
        const d = dtmDate(c(s, 1, 1), c(s, 1, 2), `DTM+${q ?? ""} (segment ${s.n})`);
        if (!d || !q) break;
        if ((DATE_QUALIFIERS.order as readonly string[]).includes(q) && !orderDate && lineRaw.length === 0) {
          orderDate = d;
          note("orderDate", `DTM+${q}`);
        }
        const rank = (DATE_QUALIFIERS.delivery as readonly string[]).indexOf(q);
        if (rank >= 0 && (!delivery || rank < delivery.rank)) {
          delivery = { value: d, rank };
        }
        break;
      }
      case "FTX": {
        const t = (s.el[3] ?? []).filter(Boolean).join(" ").trim();
        if (t) notes.push(t);
        break;
      }
      case "NAD": {
        const q = c(s, 1);
        if (!q || parties.has(q)) break;
        const name =
          (s.el[3] ?? [])
            .map((x) => x.trim())
            .filter(Boolean)
            .join(" ") ||
          (s.el[2] ?? [])
            .map((x) => x.trim())
            .filter(Boolean)
            .join(" ");
        parties.set(q, {
          ...optional("name", name || undefined),
          ...optional("id", c(s, 2, 0)),
          ...optional("agency", c(s, 2, 2)),
          n: s.n,
        });
        break;
      }
      case "LIN":
        closeLine();
        lineRaw.push({
          seg: s,
          ...optional("id", c(s, 1)),
          ...optional("itemNumber", c(s, 3) ? `${c(s, 3, 1) ?? "item"} ${c(s, 3)}` : undefined),
        });
        break;
      case "IMD": {
        const raw = lineRaw[lineRaw.length - 1];
        const t = [c(s, 3, 3), c(s, 3, 4)].filter(Boolean).join(" ");
        if (raw && !raw.done && t) raw.desc = raw.desc ? `${raw.desc} ${t}` : t;
        break;
      }
      case "QTY": {
        const raw = lineRaw[lineRaw.length - 1];
        if (raw && !raw.done && c(s, 1, 0) === "21") {
          raw.qty = num(c(s, 1, 1));
          raw.unit = c(s, 1, 2) ?? raw.unit;
        }
        break;
      }
      case "PRI": {
        const raw = lineRaw[lineRaw.length - 1];
        const q = c(s, 1, 0);
        if (raw && !raw.done && (q === "AAA" || (q === "AAB" && raw.price === undefined))) {
          raw.price = num(c(s, 1, 1));
          // C509: 5125 qualifier, 5118 price, 5375 type, 5387 type qualifier, 5284 basis, 6411 unit.
          raw.priceBasis = num(c(s, 1, 4));
          if (!raw.unit && c(s, 1, 5)) raw.unit = c(s, 1, 5);
        }
        break;
      }
      case "ALC": {
        const kind = c(s, 1);
        if (kind !== "A" && kind !== "C") break;
        if (lineRaw.length > 0 && !inSummary) finishLine();
        pending = {
          kind,
          reason: (c(s, 5, 3) ?? c(s, 5, 0) ?? c(s, 2)) || (kind === "A" ? "Allowance" : "Charge"),
          ...optional("code", c(s, 5, 0)),
          ...(current ? { line: current } : {}),
        };
        break;
      }
      case "MOA": {
        const q = c(s, 1, 0);
        const value = num(c(s, 1, 1));
        if (pending && (q === "8" || q === "23" || q === "204" || q === "25")) {
          const amountMinor = Math.abs(f.amount(value, where("C516.5004"), currency));
          const adj: Adjustment = { reason: pending.reason, ...optional("code", pending.code), amountMinor };
          if (pending.line) {
            const key = pending.kind === "C" ? "charges" : "allowances";
            pending.line[key] = [...(pending.line[key] ?? []), adj];
            // A line without a stated amount gets its allowances and charges applied.
            const raw = lineRaw[lineRaw.length - 1];
            if (raw?.amount === undefined) {
              pending.line.amountMinor += pending.kind === "C" ? amountMinor : -amountMinor;
            }
          } else (pending.kind === "C" ? charges : allowances).push(adj);
          pending = undefined;
          break;
        }
        if (!inSummary) {
          const raw = lineRaw[lineRaw.length - 1];
          if (raw && !raw.done && q === "203") raw.amount = value;
          break;
        }
        if (q === "79") lineTotal = f.amount(value, where("79"), currency);
        else if (q === "124" || q === "176") taxMinor = (taxMinor ?? 0) + f.amount(value, where(q), currency);
        else if (q === "125") taxable = f.amount(value, where("125"), currency);
        else if ((q === "86" || q === "128" || q === "77" || q === "9") && !payable)
          payable = { minor: f.amount(value, where(q), currency), code: q };
        break;
      }
      case "TAX": {
        const r = num(c(s, 5, 3));
        if (r) rate = f.optionalRate(r, where("C243.5278"));
        break;
      }
      case "UNS":
        closeLine();
        inSummary = true;
        break;
      case "CNT":
        if (c(s, 1, 0) === "2") cnt = s;
        break;
      default:
        break;
    }
  }
  closeLine();
  if (lines.length === 0) throw new DocumentError("the EDIFACT ORDERS has no LIN segment (order lines)");
  if (cnt && Number(c(cnt, 1, 1)) !== lines.length) {
    throw new DocumentError(
      `CNT+2 says ${c(cnt, 1, 1) ?? "nothing"} line items but the ORDERS has ${lines.length} LIN groups`,
    );
  }
  note("lines[].id", "LIN 1082");
  note("lines[].quantity", "QTY+21");
  note("lines[].unit", "QTY+21 6411 (C62 'one' when absent)");
  note("lines[].unitPriceMinor", "PRI+AAA (net), else PRI+AAB");
  note("lines[].amountMinor", "MOA+203 (quantity × price ± ALC when absent)");
  note("lines[].description", "IMD 7008 (else the LIN item number)");

  const lineSum = lines.reduce((a, l) => a + l.amountMinor, 0);
  const chargeSum = charges.reduce((a, x) => a + x.amountMinor, 0);
  const allowanceSum = allowances.reduce((a, x) => a + x.amountMinor, 0);
  let totalMinor: number;
  if (payable) {
    totalMinor = payable.minor;
    note("totalMinor", `MOA+${payable.code} after UNS`);
  } else {
    totalMinor = lineSum + chargeSum - allowanceSum + (taxMinor ?? 0);
    note(
      "totalMinor",
      `computed: lines + charges − allowances + tax = ${minorToDecimalText(totalMinor, currency)} (no MOA+86/128/77/9)`,
    );
  }
  if (lineTotal !== undefined) note("totals.lineTotalMinor", "MOA+79");

  const { buyer, supplier } = edifactParties(parties, unb, opts, note, lowConfidence);
  const fn = c(bgm, 3);
  if (fn === "1") notes.unshift("BGM 1225 = 1: this ORDERS cancels an earlier order.");
  if (fn === "5") notes.unshift("BGM 1225 = 5: this ORDERS replaces an earlier order.");
  note("poNumber", "BGM C106 1004");
  if (delivery) note("requestedDelivery", "DTM+2 (else 64, 63, 69)");

  return finish(
    {
      poNumber: f.required(c(bgm, 2), at(`BGM 1004 (segment ${bgm.n})`, "PO number")),
      orderDate: f.requiredDate(orderDate, at("DTM+137", "order date"), opts),
      buyer,
      supplier,
      currency,
      lines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional("tax", taxMinor === undefined ? undefined : { amountMinor: taxMinor, ...optional("rate", rate) }),
      ...optional(
        "totals",
        lineTotal !== undefined || taxMinor !== undefined || taxable !== undefined
          ? {
              ...optional("lineTotalMinor", lineTotal),
              ...optional("taxMinor", taxMinor),
              ...optional("taxExclusiveMinor", taxable),
            }
          : undefined,
      ),
      totalMinor,
      ...optional("requestedDelivery", delivery?.value),
      ...optional("notes", notes.length ? notes.join("\n") : undefined),
      source: {
        format: "edifact",
        document: fileName,
        method: "structured",
        fields,
        ...nonEmpty("lowConfidence", lowConfidence),
      },
    },
    "edifact",
    f.missing,
  );
}

/** Buyer and supplier from NAD, else implied by UNB and the receiving customer (low-confidence). */
function edifactParties(
  parties: Map<string, Nad>,
  unb: Segment | undefined,
  opts: ParseOptions,
  note: (field: string, from: string) => void,
  low: string[],
): { buyer: NormalizedPo["buyer"]; supplier: NormalizedPo["supplier"] } {
  const sender = c(unb, 2, 0);
  const receiver = c(unb, 3, 0);
  let buyer: NormalizedPo["buyer"];
  const by = parties.get("BY");
  if (by?.name) {
    buyer = { name: by.name, ...optional("id", by.id) };
    note("buyer.name", "NAD+BY C080");
  } else {
    const id = by?.id ?? sender;
    buyer = { name: opts.receiver?.name ?? id ?? "", ...optional("id", id) };
    note(
      "buyer.name",
      opts.receiver
        ? "the receiving customer (no NAD+BY name)"
        : by?.id
          ? "NAD+BY C082 (an id, no name)"
          : "UNB S002, the interchange sender",
    );
    low.push("buyer.name");
  }
  const role = ["SU", "SE"].find((r) => parties.has(r));
  const seller = role ? parties.get(role) : undefined;
  const ids: { scheme: string; value: string }[] = [];
  if (seller?.id && seller.agency !== "92")
    ids.push({ scheme: SCHEMES[seller.agency ?? ""] ?? `agency ${seller.agency ?? "?"}`, value: seller.id });
  const vendorId = seller?.agency === "92" ? seller.id : undefined;
  if (seller?.name) {
    note("supplier.name", `NAD+${role} C080`);
    if (vendorId) note("supplier.id", `NAD+${role} C082 (agency 92: assigned by buyer)`);
    return { buyer, supplier: { name: seller.name, ...optional("id", vendorId), ...nonEmpty("ids", ids) } };
  }
  const candidates = seller ? [seller.id] : [receiver];
  const known = opts.receiver?.vendors?.find((v) =>
    candidates.some((id) => id && v.id.trim().toLowerCase() === id.trim().toLowerCase()),
  );
  if (!seller && receiver) ids.push({ scheme: "UNB S003", value: receiver });
  const whence = seller ? `NAD+${role} C082 (an id, no name)` : "UNB S003, the interchange receiver (no NAD+SU)";
  low.push("supplier.name");
  if (known) {
    note("supplier.name", `the vendor list's ${known.id} for ${whence}`);
    return { buyer, supplier: { name: known.name, id: known.id, ...nonEmpty("ids", ids) } };
  }
  note("supplier.name", whence);
  return { buyer, supplier: { name: candidates[0] ?? "", ...optional("id", vendorId), ...nonEmpty("ids", ids) } };
}

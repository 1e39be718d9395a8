import { dateInZone } from "../policy/evaluate.js";
import type { NormalizedPo, PoLine } from "./model.js";

/**
 * Common unit spellings → UN/ECE Recommendation 20 codes. "each" (EA) and "piece" (H87) are
 * distinct codes in Rec 20 and stay distinct here; packaging units use their Rec 20 codes.
 */
const UNIT_ALIASES: Record<string, string> = {
  // count
  ea: "EA",
  each: "EA",
  pc: "H87",
  pcs: "H87",
  piece: "H87",
  pieces: "H87",
  unit: "C62",
  units: "C62",
  one: "C62",
  pair: "PR",
  pairs: "PR",
  pr: "PR",
  dozen: "DZN",
  dz: "DZN",
  doz: "DZN",
  set: "SET",
  sets: "SET",
  // packaging
  box: "BX",
  boxes: "BX",
  bx: "BX",
  pack: "PK",
  packs: "PK",
  pk: "PK",
  pkg: "PK",
  carton: "CT",
  cartons: "CT",
  ctn: "CT",
  roll: "RO",
  rolls: "RO",
  bag: "BG",
  bags: "BG",
  case: "CS",
  cases: "CS",
  cs: "CS",
  // X12 (ANSI 355) unit codes that differ from Rec 20
  ca: "CS",
  ga: "GLL",
  rl: "RO",
  un: "C62",
  // mass
  kg: "KGM",
  kgs: "KGM",
  kilo: "KGM",
  kilogram: "KGM",
  kilograms: "KGM",
  g: "GRM",
  gram: "GRM",
  grams: "GRM",
  t: "TNE",
  tonne: "TNE",
  tonnes: "TNE",
  lb: "LBR",
  lbs: "LBR",
  pound: "LBR",
  pounds: "LBR",
  oz: "ONZ",
  ounce: "ONZ",
  ounces: "ONZ",
  // volume
  l: "LTR",
  litre: "LTR",
  litres: "LTR",
  liter: "LTR",
  liters: "LTR",
  ml: "MLT",
  millilitre: "MLT",
  milliliter: "MLT",
  gal: "GLL",
  gallon: "GLL",
  gallons: "GLL",
  m3: "MTQ",
  // length and area
  m: "MTR",
  metre: "MTR",
  metres: "MTR",
  meter: "MTR",
  meters: "MTR",
  cm: "CMT",
  mm: "MMT",
  km: "KMT",
  ft: "FOT",
  foot: "FOT",
  feet: "FOT",
  in: "INH",
  inch: "INH",
  inches: "INH",
  m2: "MTK",
  sqm: "MTK",
  // time
  h: "HUR",
  hr: "HUR",
  hrs: "HUR",
  hour: "HUR",
  hours: "HUR",
  min: "MIN",
  minute: "MIN",
  minutes: "MIN",
  day: "DAY",
  days: "DAY",
  week: "WEE",
  weeks: "WEE",
  month: "MON",
  months: "MON",
  year: "ANN",
  years: "ANN",
};

const REC20_CODES = new Set(Object.values(UNIT_ALIASES));

/**
 * A unit as a Rec 20 code when we know it ("pcs" → "H87", "kg" → "KGM"); a code already in Rec 20
 * form is kept; anything else is kept as written (trimmed) rather than guessed.
 */
export function normalizeUnit(unit: string): string {
  const trimmed = unit.trim();
  const key = trimmed.toLowerCase().replace(/\.$/, "").replace(/[²]/g, "2").replace(/[³]/g, "3").replace(/\s+/g, " ");
  const alias = UNIT_ALIASES[key];
  if (alias) return alias;
  if (REC20_CODES.has(trimmed.toUpperCase())) return trimmed.toUpperCase();
  return trimmed;
}

const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december",
];

/**
 * A date as written in a PO → ISO 8601 `YYYY-MM-DD`, or undefined when it is not a date we can
 * read without guessing. Accepted: 2026-11-26, 2026/11/26, 20261126, "26 Nov 2026",
 * "Nov 26, 2026", and timestamps. A timestamp with an offset or `Z` names an instant: with a
 * `timeZone` it becomes the date in that zone (the customer's office), without one the date as
 * written; a midnight stamp (`T00:00:00Z`, `T00:00:00-08:00`) is a calendar date and keeps it. Numeric day/month orders such as 03/04/2026 are refused: the same text means 3 April
 * in Europe and 4 March in the US.
 */
export function toIsoDate(text: string, timeZone?: string): string | undefined {
  const s = text.trim();
  let m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(s) ?? /^(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (m) return ymd(Number(m[1]), Number(m[2]), Number(m[3]));

  m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (m) {
    const date = ymd(Number(m[1]), Number(m[2]), Number(m[3]));
    // Midnight stands for "this day" (a date an ERP wrote as a timestamp): the written date is kept,
    // else 2026-12-10T00:00:00Z would become 9 December in Chicago.
    const midnight = m[4] === "00" && m[5] === "00" && (m[6] ?? "00") === "00";
    if (!date || !m[7] || !timeZone || midnight) return date;
    const instant = new Date(s.replace(" ", "T"));
    return Number.isNaN(instant.getTime()) ? undefined : dateInZone(instant, timeZone);
  }

  m = /^(\d{1,2})[ -]([A-Za-z]{3,9})\.?[\s,-]+(\d{4})$/.exec(s);
  if (m) return ymd(Number(m[3]), monthIndex(m[2] ?? ""), Number(m[1]));
  m = /^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})$/.exec(s);
  if (m) return ymd(Number(m[3]), monthIndex(m[1] ?? ""), Number(m[2]));
  return undefined;
}

/** 1-12 for a month name or an abbreviation of at least three letters ("Nov", "Sept"); 0 otherwise. */
function monthIndex(name: string): number {
  const lower = name.toLowerCase();
  return lower.length >= 3 ? MONTHS.findIndex((mo) => mo.startsWith(lower)) + 1 : 0;
}

function ymd(y: number, mo: number, d: number): string | undefined {
  if (mo < 1 || mo > 12 || d < 1) return undefined;
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return undefined;
  return `${String(y).padStart(4, "0")}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

/**
 * The PO in canonical form: trimmed text, Rec 20 unit codes, uppercase currency, ISO dates.
 * Amounts are already exact integer minor units of the (ISO 4217) currency and stay untouched;
 * the source block, charges, allowances, tax and totals are carried over. Idempotent: transforming twice gives the same PO.
 */
export function transformPo(po: NormalizedPo): NormalizedPo {
  const lines: PoLine[] = po.lines.map((l) => ({
    ...l,
    id: l.id.trim(),
    description: collapse(l.description),
    unit: normalizeUnit(l.unit),
  }));
  const out: NormalizedPo = {
    ...po,
    poNumber: po.poNumber.trim(),
    orderDate: toIsoDate(po.orderDate) ?? po.orderDate,
    buyer: { name: collapse(po.buyer.name), ...(po.buyer.id?.trim() ? { id: po.buyer.id.trim() } : {}) },
    supplier: {
      name: collapse(po.supplier.name),
      ...(po.supplier.id?.trim() ? { id: po.supplier.id.trim() } : {}),
      ...(po.supplier.ids?.length
        ? { ids: po.supplier.ids.map((i) => ({ scheme: i.scheme.trim(), value: i.value.trim() })) }
        : {}),
    },
    currency: po.currency.trim().toUpperCase(),
    lines,
  };
  for (const key of ["charges", "allowances"] as const) {
    const list = po[key];
    if (list) out[key] = list.map((a) => ({ ...a, reason: collapse(a.reason) }));
  }
  const delivery = po.requestedDelivery?.trim();
  if (delivery) out.requestedDelivery = toIsoDate(delivery) ?? delivery;
  else delete out.requestedDelivery;
  const notes = po.notes?.trim();
  if (notes) out.notes = notes;
  else delete out.notes;
  return out;
}

function collapse(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

import type { CurrentFact, FactKind, FactStatement, MessageInfo, Passage, ThreadMessage } from "./types.js";

/**
 * Rule-based reading of the facts a PO run hinges on, from plain English email text. Each
 * statement keeps the passage it came from; per fact, the statement latest in the thread wins.
 * Quoted copies and signatures are never read (a quote repeats an old value in a new message).
 * A sentence counts for this PO when it names this PO number, or names none and its passage,
 * attachment or message subject names this PO and no other.
 */

const PO_RE = /\b(?:P\.?\s?O\.?|purchase\s+order)\s*(?:#|no\.?|number|nr\.?)?\s*[:#-]?\s*([A-Z]{0,3}-?\d{5,10})\b/gi;

/** The digits of a PO reference: `PO-4471802`, `PO#4471802` and `purchase order 4471802` are one PO. */
export function poKey(reference: string): string {
  return reference.replace(/\D/g, "");
}

/** PO numbers a text mentions, as `poKey`s, with the first spelling seen for each. */
export function poMentions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(PO_RE)) {
    const ref = m[1];
    if (!ref) continue;
    const key = poKey(ref);
    if (key.length >= 5 && !out.has(key)) out.set(key, m[0].trim());
  }
  return out;
}

/**
 * The PO a thread is about: the number on the first attachment that reads like a purchase
 * order, else the number most subjects mention.
 */
export function findThreadPo(messages: readonly ThreadMessage[]): { key: string; display: string } | undefined {
  for (const m of messages) {
    for (const att of m.attachments ?? []) {
      if (!/purchase\s+order|\bP\.?O\.?\b/i.test(att.text)) continue;
      const first = [...poMentions(att.text)][0];
      if (first) return { key: first[0], display: displayPo(first[1]) };
    }
  }
  const counts = new Map<string, { n: number; display: string }>();
  for (const m of messages) {
    for (const [key, spelled] of poMentions(m.subject ?? "")) {
      const c = counts.get(key) ?? { n: 0, display: displayPo(spelled) };
      c.n++;
      counts.set(key, c);
    }
  }
  const best = [...counts].sort((a, b) => b[1].n - a[1].n)[0];
  return best ? { key: best[0], display: best[1].display } : undefined;
}

function displayPo(spelled: string): string {
  const m = /([A-Z]{0,3}-?\d{5,10})$/i.exec(spelled);
  const id = m?.[1] ?? spelled;
  return /^\d/.test(id) ? `PO-${id}` : id.toUpperCase();
}

// --- values -----------------------------------------------------------------------------------

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MONTH =
  "(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
const DATE_RE = new RegExp(
  [
    "\\b(\\d{4})-(\\d{2})-(\\d{2})\\b",
    `\\b(\\d{1,2})\\.?\\s+${MONTH}\\.?,?\\s+(\\d{4})\\b`,
    `\\b${MONTH}\\.?\\s+(\\d{1,2}),?\\s+(\\d{4})\\b`,
    "\\b(\\d{1,2})\\.(\\d{1,2})\\.(\\d{4})\\b",
  ].join("|"),
  "gi",
);

interface Found {
  value: string;
  index: number;
  end: number;
}

function iso(y: string | undefined, m: number, d: string | undefined): string | undefined {
  const year = Number(y);
  const day = Number(d);
  if (!year || !day || m < 1 || m > 12 || day > 31) return undefined;
  return `${year}-${String(m).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

const monthNumber = (name: string | undefined) => MONTHS.indexOf((name ?? "").slice(0, 3).toLowerCase()) + 1;

/** Dates in ISO, `17 April 2026`, `April 17, 2026` or `17.04.2026` (day first), as ISO strings. */
export function findDates(text: string): Found[] {
  const out: Found[] = [];
  for (const m of text.matchAll(DATE_RE)) {
    const value = m[1]
      ? iso(m[1], Number(m[2]), m[3])
      : m[4]
        ? iso(m[6], monthNumber(m[5]), m[4])
        : m[7]
          ? iso(m[9], monthNumber(m[7]), m[8])
          : iso(m[12], Number(m[11]), m[10]);
    if (value) out.push({ value, index: m.index, end: m.index + m[0].length });
  }
  return out;
}

const CURRENCY: Record<string, string> = { "€": "EUR", $: "USD", "£": "GBP" };
const MONEY_RE =
  /(?:\b(EUR|USD|GBP|CHF)\s?|([€$£])\s?)(\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)|(\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)\s?(EUR|USD|GBP|CHF|€)/g;

/** Parses `48,250.00` and `48.250,00`: the last separator followed by one or two digits is the decimal. */
function parseAmount(raw: string): number | undefined {
  const m = /^(.*?)(?:[.,](\d{1,2}))?$/.exec(raw.replace(/\s/g, ""));
  if (!m) return undefined;
  const whole = (m[1] ?? "").replace(/[.,]/g, "");
  const n = Number(`${whole}.${m[2] ?? "0"}`);
  return Number.isFinite(n) ? n : undefined;
}

/** Money amounts as `EUR 52310.00`. */
export function findMoney(text: string): Found[] {
  const out: Found[] = [];
  for (const m of text.matchAll(MONEY_RE)) {
    const currency = m[1] ?? CURRENCY[m[2] ?? ""] ?? m[5] ?? "";
    const amount = parseAmount(m[3] ?? m[4] ?? "");
    if (amount === undefined) continue;
    out.push({
      value: `${CURRENCY[currency] ?? currency} ${amount.toFixed(2)}`,
      index: m.index,
      end: m.index + m[0].length,
    });
  }
  return out;
}

/** A value right after these words is the old one (`from 400 to 520`, `was EUR…`, `instead of 480`, `not 480`). */
const OLD_MARKER = /(?:\bfrom|\bwas|\binstead of|\bnot|\bpreviously|\bformerly|\bold|\brather than)\s*:?\s*$/i;

function latestOf(text: string, found: Found[]): Found | undefined {
  return found.find((f) => !OLD_MARKER.test(text.slice(Math.max(0, f.index - 20), f.index)));
}

// --- items ------------------------------------------------------------------------------------

export interface PoItem {
  line: number;
  sku: string;
  description: string;
  quantity: number;
  /** Line of the attachment that states it (for provenance). */
  sourceLine: number;
}

/**
 * Line items from a PO attachment written as a table with a header row (`Line | SKU |
 * Description | Qty …`, pipes, tabs or runs of spaces). Other layouts yield no items; the
 * facts then come only from the messages.
 */
export function parseItems(text: string): PoItem[] {
  const rows = text.split(/\r?\n/).map((l) => l.split(/\s*\|\s*|\t|\s{2,}/).map((c) => c.trim()));
  const headerAt = rows.findIndex(
    (r) => r.some((c) => /^(sku|item|article|part)/i.test(c)) && r.some((c) => /^(qty|quantity)/i.test(c)),
  );
  const header = rows[headerAt];
  if (!header) return [];
  const col = (re: RegExp) => header.findIndex((c) => re.test(c));
  const [lineCol, skuCol, descCol, qtyCol] = [
    col(/^(line|pos)/i),
    col(/^(sku|item|article|part)/i),
    col(/^desc/i),
    col(/^(qty|quantity)/i),
  ];
  const items: PoItem[] = [];
  for (let i = headerAt + 1; i < rows.length; i++) {
    const r = rows[i] ?? [];
    const sku = r[skuCol] ?? "";
    const quantity = Number((r[qtyCol] ?? "").replace(/,/g, ""));
    if (!sku || !Number.isFinite(quantity) || r.length < header.length - 1) continue;
    items.push({
      line: Number(r[lineCol]) || items.length + 1,
      sku,
      description: r[descCol] ?? "",
      quantity,
      sourceLine: i + 1,
    });
  }
  return items;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The items a sentence refers to (by SKU, `line N` or description) and the sentence with those references blanked. */
function itemRefs(sentence: string, items: readonly PoItem[]): { items: PoItem[]; rest: string } {
  let rest = sentence;
  const hit = new Set<PoItem>();
  for (const item of items) {
    const patterns = [escapeRe(item.sku), `\\bline\\s+${item.line}\\b`];
    if (item.description.length >= 6) patterns.push(escapeRe(item.description));
    for (const p of patterns) {
      const re = new RegExp(p, "gi");
      if (re.test(rest)) {
        hit.add(item);
        rest = rest.replace(re, " ");
      }
    }
  }
  return { items: [...hit], rest };
}

// --- sentences --------------------------------------------------------------------------------

const QTY_CUE = /\b(quantit\w*|qty|units?|pcs|pieces|increase|reduce|decrease|change|need|order)\b/i;
const DELIVERY_CUE = /\b(deliver\w*|ETA|arriv\w*|ship(?:ping|ment)? date|receive)\b/i;
const TOTAL_CUE = /\b(total|order value|amount|sum|comes to)\b/i;
const APPROVAL_CUE = /\b(approv\w*|sign[- ]?off|authori[sz]\w*|release)\b/i;
const DIRECTIVE_CUE =
  /\b(hold|do not|don't|must|only|provided|on condition|until|require\w*|approved for|I approve|no partial|not be)\b/i;
const CANCEL_CUE = /\bcancel(?:s|led|ling|lation|ed|ing)?\b/i;
const NEGATED_CANCEL = /\b(not|don't|no need to|withdraw\w*|too late to)\b[^.]*\bcancel/i;

function sentences(text: string): { text: string; lineOffset: number }[] {
  const out: { text: string; lineOffset: number }[] = [];
  text.split("\n").forEach((line, i) => {
    for (const s of line.split(/(?<=[.!?])\s+(?=[A-Z(])/)) {
      if (s.trim().length > 0) out.push({ text: s.trim(), lineOffset: i });
    }
  });
  return out;
}

interface Scope {
  target: string;
  passages: readonly Passage[];
  messages: readonly ThreadMessage[];
}

type Verdict = "ours" | "other" | "none";

function verdict(text: string, target: string): Verdict {
  const keys = [...poMentions(text).keys()];
  if (keys.includes(target)) return "ours";
  return keys.length > 0 ? "other" : "none";
}

/** Sentence, then passage, then attachment, then subject: the nearest PO mention decides. */
function sentenceIsOurs(sentence: string, passage: Passage, message: ThreadMessage | undefined, target: string) {
  const levels = [sentence, passage.text];
  if (passage.attachment) levels.push(message?.attachments?.find((a) => a.name === passage.attachment)?.text ?? "");
  levels.push(message?.subject ?? "");
  for (const text of levels) {
    const v = verdict(text, target);
    if (v !== "none") return v === "ours";
  }
  return false;
}

/** Every fact statement about the target PO, in thread order. */
export function extractStatements(scope: Scope, items: readonly PoItem[]): FactStatement[] {
  const out: FactStatement[] = [];
  const messageIndex = (alias: string) => Number(alias.slice(1)) - 1;
  for (const passage of scope.passages) {
    if (passage.kind === "quoted" || passage.kind === "signature") continue;
    const index = messageIndex(passage.message);
    const message = scope.messages[index];
    for (const { text, lineOffset } of sentences(passage.text)) {
      if (!sentenceIsOurs(text, passage, message, scope.target)) continue;
      const add = (kind: FactKind, key: string, value: string) =>
        out.push({
          kind,
          key,
          value,
          evidence: text,
          passageId: passage.id,
          messageIndex: index,
          line: passage.lineStart + lineOffset,
        });
      const refs = itemRefs(text, items);

      if (CANCEL_CUE.test(text) && !NEGATED_CANCEL.test(text) && !/^(is|are|can|should|shall)\b/i.test(text)) {
        if (refs.items.length > 0)
          for (const item of refs.items) add("cancellation", `cancellation:${item.sku}`, "cancelled");
        else if (/\b(order|PO|purchase order)\b/i.test(text)) add("cancellation", "cancellation:order", "cancelled");
        continue;
      }
      if (APPROVAL_CUE.test(text) && DIRECTIVE_CUE.test(text)) {
        add("approval", "approval", text.replace(/\s+/g, " "));
        continue;
      }
      const money = findMoney(text);
      if (TOTAL_CUE.test(text) && money.length > 0) {
        const v = latestOf(text, money);
        if (v) add("totalAmount", "total", v.value);
      }
      const dates = findDates(text);
      const cue = DELIVERY_CUE.exec(text);
      if (cue && dates.length > 0) {
        const after = dates.filter(
          (d) => d.index > cue.index && !/\b(until|before|by)\s*$/i.test(text.slice(0, d.index)),
        );
        const v = latestOf(text, after);
        if (v) add("deliveryDate", "deliveryDate", v.value);
      }
      if (refs.items.length === 1 && QTY_CUE.test(refs.rest)) {
        const item = refs.items[0];
        // Blank the other numbers a sentence carries (money, dates, PO numbers) before reading a quantity.
        let rest = refs.rest;
        for (const f of [...findMoney(rest), ...findDates(rest)].sort((a, b) => b.index - a.index)) {
          rest = `${rest.slice(0, f.index)} ${rest.slice(f.end)}`;
        }
        rest = rest.replace(PO_RE, " ");
        const numbers: Found[] = [...rest.matchAll(/\b\d[\d,]*\b/g)].map((m) => ({
          value: m[0].replace(/,/g, ""),
          index: m.index,
          end: m.index + m[0].length,
        }));
        const v = latestOf(rest, numbers);
        if (item && v) add("quantity", `quantity:${item.sku}`, String(Number(v.value)));
      }
    }
  }
  return out;
}

/** Groups statements by fact; the latest (thread order, then line) is current, earlier different values are superseded. */
export function resolveFacts(statements: readonly FactStatement[]): CurrentFact[] {
  const byKey = new Map<string, FactStatement[]>();
  for (const s of statements) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
  const facts: CurrentFact[] = [];
  for (const [key, list] of byKey) {
    const ordered = [...list].sort((a, b) => a.messageIndex - b.messageIndex || a.line - b.line);
    const current = ordered.at(-1);
    if (!current) continue;
    const superseded: FactStatement[] = [];
    for (const s of ordered.slice(0, -1)) {
      if (s.value === current.value) continue;
      // A value restated later is one step of the history, not two.
      const last = superseded.at(-1);
      if (last && last.value === s.value) continue;
      superseded.push(s);
    }
    facts.push({ key, kind: current.kind, current, superseded });
  }
  const order: FactKind[] = ["poNumber", "totalAmount", "quantity", "deliveryDate", "cancellation", "approval"];
  return facts.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.key.localeCompare(b.key));
}

/**
 * All facts of the thread: the PO number, what its attachment states (items, total, delivery
 * date) and every later statement, resolved latest-wins.
 */
export function extractFacts(
  messages: readonly ThreadMessage[],
  passages: readonly Passage[],
  _infos: readonly MessageInfo[],
  poNumber?: string,
): { po: { key: string; display: string } | undefined; items: PoItem[]; facts: CurrentFact[] } {
  const po = poNumber ? { key: poKey(poNumber), display: poNumber } : findThreadPo(messages);
  if (!po) return { po, items: [], facts: [] };
  let items: PoItem[] = [];
  let itemsAt = { prefix: "", messageIndex: 0 };
  let poStatement: FactStatement | undefined;
  messages.forEach((m, index) => {
    (m.attachments ?? []).forEach((att, a) => {
      if (items.length > 0 || !poMentions(att.text).has(po.key)) return;
      items = parseItems(att.text);
      itemsAt = { prefix: `m${index + 1}/a${a + 1}`, messageIndex: index };
      const passageOfLine = (line: number) =>
        passages.find((p) => p.id.startsWith(`m${index + 1}/a${a + 1}:`) && p.lineStart <= line && p.lineEnd >= line)
          ?.id ?? `m${index + 1}/a${a + 1}`;
      poStatement = {
        kind: "poNumber",
        key: "poNumber",
        value: po.display,
        evidence: att.text.split(/\r?\n/).find((l) => poMentions(l).has(po.key)) ?? po.display,
        passageId: passageOfLine(1),
        messageIndex: index,
        line: 1,
      };
    });
  });
  const statements = extractStatements({ target: po.key, passages, messages }, items);
  // Quantities from the table are the first statement of each line item's quantity.
  for (const item of items) {
    const passageId =
      passages.find(
        (p) => p.id.startsWith(`${itemsAt.prefix}:`) && p.lineStart <= item.sourceLine && p.lineEnd >= item.sourceLine,
      )?.id ?? itemsAt.prefix;
    statements.push({
      kind: "quantity",
      key: `quantity:${item.sku}`,
      value: String(item.quantity),
      evidence: `line ${item.line} ${item.sku} ${item.description}: ${item.quantity}`,
      passageId,
      messageIndex: itemsAt.messageIndex,
      line: item.sourceLine,
    });
  }
  if (!poStatement) {
    const first = passages.find((p) => poMentions(p.text).has(po.key));
    if (first) {
      poStatement = {
        kind: "poNumber",
        key: "poNumber",
        value: po.display,
        evidence: first.text.split("\n").find((l) => poMentions(l).has(po.key)) ?? po.display,
        passageId: first.id,
        messageIndex: Number(first.message.slice(1)) - 1,
        line: first.lineStart,
      };
    }
  }
  if (poStatement) statements.push(poStatement);
  return { po, items, facts: resolveFacts(statements) };
}

import { DEFAULTS } from "../constants.js";
import { estimateTokens } from "../model/tokens.js";
import { Bm25Index, terms } from "./bm25.js";
import { extractFacts, poMentions } from "./facts.js";
import { messageInfos, renderThread, splitThread } from "./passages.js";
import {
  type CurrentFact,
  type FactStatement,
  type MessageInfo,
  type Passage,
  PREPARED_CONTEXT_VERSION,
  type PreparedContext,
  type ThreadMessage,
} from "./types.js";

/**
 * Tokens the prepared context may take when the customer config names no budget. A default of
 * this module until the lead moves it to `constants.ts` (DEFAULTS.contextTokens).
 */
export const DEFAULT_CONTEXT_TOKENS = DEFAULTS.contextTokens;

/** What the run is about, for ranking: every PO task cares about these words. */
const FACT_VOCABULARY =
  "purchase order quantity qty units total amount order value price delivery date ship cancel cancellation approve approval sign-off hold release revised change update confirm";

export interface PrepareContextOptions {
  /** The task in words (ranking query). @default - a generic PO-processing task */
  task?: string;
  /** @default DEFAULT_CONTEXT_TOKENS */
  budgetTokens?: number;
  /** The PO number when the caller already knows it. @default - read from the thread */
  poNumber?: string;
}

const NEWSLETTER = /\bunsubscribe\b|\bnewsletter\b|view (?:this|in) (?:e-?mail|browser)/i;

/**
 * Builds the context for one run within a token budget: current facts with provenance, what they
 * superseded, the most relevant passages verbatim, and a summary citing the ids of everything
 * left out (fetch_context returns any of them in full).
 */
export function prepareContext(
  messages: readonly ThreadMessage[],
  options: PrepareContextOptions = {},
): PreparedContext {
  const budget = options.budgetTokens ?? DEFAULT_CONTEXT_TOKENS;
  const passages = splitThread(messages);
  const infos = messageInfos(messages);
  const threadTokens = estimateTokens(renderThread(messages));
  const { po, items, facts } = extractFacts(messages, passages, infos, options.poNumber);

  // Rank: BM25 against the task, the PO number and the items, then weighed by what a passage is.
  const query = terms(
    [
      options.task ?? "Process this purchase order: current quantities, amounts, delivery date, approvals",
      FACT_VOCABULARY,
      po?.display ?? "",
      ...items.map((i) => `${i.sku} ${i.description}`),
    ].join(" "),
  );
  const index = new Bm25Index(passages.map((p) => terms(p.text)));
  const bm25 = index.scores(query);
  const category = passages.map((p) => categorize(p, messages[msgIndex(p)], po?.key));
  const weight: Record<Category, number> = {
    thisPo: 1,
    quoted: 0.15,
    signature: 0.02,
    otherPo: 0.25,
    newsletter: 0.1,
    other: 0.3,
  };
  const score = passages.map((p, i) => {
    // Later passages win ties: in a revision thread the latest word is the one that counts.
    const recency = 1 + (0.5 * msgIndex(p)) / Math.max(1, messages.length);
    return (bm25[i] ?? 0) * weight[category[i] ?? "other"] * recency;
  });

  // Passages that state a current fact go in first; then by score.
  const mandatory = new Set(facts.map((f) => f.current.passageId));
  const order = passages
    .map((p, i) => ({ p, i, s: mandatory.has(p.id) ? Number.POSITIVE_INFINITY : (score[i] ?? 0) }))
    .sort((a, b) => b.s - a.s || b.i - a.i);

  // Greedy fill with an incremental estimate (re-rendering per candidate would be quadratic),
  // then one exact check: drop the lowest-ranked passages while the real text is over budget.
  const chosen = new Set<string>();
  const render = () => renderContext({ po: po?.display, messages, infos, passages, category, facts, chosen, budget });
  let used = estimateTokens(render());
  const headed = new Set<string>();
  for (const { p } of order) {
    const header = headed.has(p.message) ? 0 : messageHeaderTokens(infos[msgIndex(p)]);
    const cost = p.tokens + PASSAGE_OVERHEAD_TOKENS + header;
    if (used + cost > budget) continue;
    chosen.add(p.id);
    headed.add(p.message);
    used += cost;
  }
  let text = render();
  const dropOrder = order.filter(({ p }) => chosen.has(p.id)).reverse();
  while (estimateTokens(text) > budget && dropOrder.length > 0) {
    const next = dropOrder.shift();
    if (next) chosen.delete(next.p.id);
    text = render();
  }
  // Even the facts and summary alone may exceed a tiny budget; report it rather than hide it.
  const sentTokens = estimateTokens(text);
  const verbatimIds = passages.filter((p) => chosen.has(p.id)).map((p) => p.id);
  return {
    version: PREPARED_CONTEXT_VERSION,
    ...(po ? { poNumber: po.display } : {}),
    budgetTokens: budget,
    sentTokens,
    threadTokens,
    tokensEstimated: true,
    text,
    messages: infos,
    passages,
    verbatimIds,
    summarizedIds: passages.filter((p) => !chosen.has(p.id)).map((p) => p.id),
    facts,
  };
}

/** `[m14:L3-7] ` before each verbatim passage, roughly. */
const PASSAGE_OVERHEAD_TOKENS = 10;

function messageHeaderTokens(info: MessageInfo | undefined): number {
  return estimateTokens(`### m000 · ${info?.from ?? "?"} · ${info?.date ?? "?"} · ${info?.subject ?? ""}`) + 1;
}

const msgIndex = (p: Passage) => Number(p.message.slice(1)) - 1;

type Category = "thisPo" | "quoted" | "signature" | "otherPo" | "newsletter" | "other";

function categorize(p: Passage, message: ThreadMessage | undefined, target: string | undefined): Category {
  if (p.kind === "quoted") return "quoted";
  if (p.kind === "signature") return "signature";
  if (message && NEWSLETTER.test(message.body)) return "newsletter";
  const own = [...poMentions(p.text).keys()];
  const subject = [...poMentions(message?.subject ?? "").keys()];
  const mentions = own.length > 0 ? own : subject;
  if (target && mentions.includes(target)) return "thisPo";
  if (mentions.length > 0) return "otherPo";
  return "other";
}

/** `m3, m5–m9, m12`: message aliases as ranges; past `maxRanges`, gaps are bridged and marked "within". */
export function citeMessages(aliases: Iterable<string>, maxRanges = 12): string {
  const nums = [...new Set([...aliases].map((a) => Number(a.slice(1))))].sort((a, b) => a - b);
  let gap = 1;
  let ranges: [number, number][] = [];
  for (;;) {
    ranges = [];
    for (const n of nums) {
      const last = ranges.at(-1);
      if (last && n - last[1] <= gap) last[1] = n;
      else ranges.push([n, n]);
    }
    if (ranges.length <= maxRanges) break;
    gap *= 2;
  }
  const text = ranges.map(([a, b]) => (a === b ? `m${a}` : `m${a}–m${b}`)).join(", ");
  return gap > 1 ? `within ${text}` : text;
}

interface RenderInput {
  po: string | undefined;
  messages: readonly ThreadMessage[];
  infos: readonly MessageInfo[];
  passages: readonly Passage[];
  category: readonly Category[];
  facts: readonly CurrentFact[];
  chosen: ReadonlySet<string>;
  budget: number;
}

function label(fact: CurrentFact): string {
  const [kind, sku] = fact.key.split(":");
  if (kind === "quantity") return `quantity ${sku}`;
  if (kind === "cancellation") return sku === "order" ? "cancellation of the whole order" : `cancellation ${sku}`;
  if (kind === "total") return "total";
  if (kind === "deliveryDate") return "delivery date";
  if (kind === "poNumber") return "PO number";
  return "approver instruction";
}

const cite = (s: FactStatement) => `${s.passageId}`;

function renderContext(input: RenderInput): string {
  const { po, messages, infos, passages, category, facts, chosen } = input;
  const out: string[] = [];
  out.push(
    `# Prepared context (${po ?? "PO number not found"}; ${messages.length} messages m1–m${messages.length}; token figures are estimates)`,
    "Ids: mN:La-b = lines a–b of message N's body; mN/aK:La-b = of its K-th attachment; mN = the whole message.",
    "Call fetch_context with any id to read it in full. Later statements supersede earlier ones.",
    "",
    "## Current facts (latest statement wins)",
  );
  const cancelled = new Map(
    facts.filter((f) => f.kind === "cancellation").map((f) => [f.key.split(":")[1] ?? "", f.current] as const),
  );
  for (const f of facts) {
    const value = f.kind === "approval" ? `"${f.current.value}"` : f.current.value;
    let line = `- ${label(f)}: ${value} [${cite(f.current)}]`;
    const cancel = f.kind === "quantity" ? cancelled.get(f.key.split(":")[1] ?? "") : undefined;
    if (cancel && cancel.messageIndex >= f.current.messageIndex) line += ` — line cancelled later [${cite(cancel)}]`;
    out.push(line);
  }
  if (facts.length === 0) out.push("- none found by the rules; read the passages");
  const superseded = facts.filter((f) => f.superseded.length > 0);
  if (superseded.length > 0) {
    out.push("", "## Superseded (older values, no longer valid)");
    for (const f of superseded) {
      const chain = [...f.superseded, f.current].map((s) =>
        f.kind === "approval" ? `"${truncate(s.value, 90)}" [${cite(s)}]` : `${s.value} [${cite(s)}]`,
      );
      out.push(`- ${label(f)}: ${chain.join(" → ")}`);
    }
  }

  const shown = passages.filter((p) => input.chosen.has(p.id));
  if (shown.length > 0) {
    out.push("", "## Passages (verbatim, thread order)");
    let lastMessage = "";
    for (const p of shown) {
      if (p.message !== lastMessage) {
        const info = infos[msgIndex(p)];
        out.push(`### ${p.message} · ${info?.from ?? "?"} · ${info?.date ?? "?"} · ${info?.subject ?? ""}`);
        lastMessage = p.message;
      }
      out.push(`[${p.id}] ${p.text}`);
    }
  }

  const left = passages.map((p, i) => ({ p, c: category[i] ?? "other" })).filter(({ p }) => !chosen.has(p.id));
  if (left.length > 0) {
    out.push("", `## Not shown (${left.length} passages; summary by kind, fetch_context any id)`);
    const byCat = (c: Category) => left.filter((e) => e.c === c).map((e) => e.p);
    const line = (title: string, ps: Passage[]) => {
      if (ps.length > 0) out.push(`- ${title} (${ps.length}): ${citeMessages(ps.map((p) => p.message))}`);
    };
    const ownLeft = byCat("thisPo");
    if (ownLeft.length > 0) {
      // Grouped by subject topic, so the model can tell "quantities" threads from "follow-up" chatter.
      const topics = new Map<string, Passage[]>();
      for (const p of ownLeft) {
        const topic = topicOf(messages[msgIndex(p)]?.subject);
        topics.set(topic, [...(topics.get(topic) ?? []), p]);
      }
      out.push(`- Other passages about ${po ?? "this PO"} (${ownLeft.length}), by subject:`);
      for (const [topic, ps] of [...topics].sort((a, b) => b[1].length - a[1].length).slice(0, 8)) {
        out.push(
          `  - "${topic}" (${ps.length}): ${citeMessages(
            ps.map((p) => p.message),
            6,
          )}`,
        );
      }
    }
    const otherPo = byCat("otherPo");
    if (otherPo.length > 0) {
      const pos = new Map<string, Passage[]>();
      for (const p of otherPo) {
        const mentioned = poMentions(p.text);
        const refs = mentioned.size > 0 ? mentioned : poMentions(messages[msgIndex(p)]?.subject ?? "");
        for (const key of refs.keys()) pos.set(key, [...(pos.get(key) ?? []), p]);
      }
      out.push(`- Other purchase orders (${otherPo.length}; their own quantities, totals and dates):`);
      for (const [name, ps] of [...pos].sort((a, b) => b[1].length - a[1].length).slice(0, 8)) {
        out.push(
          `  - PO ${name}: ${citeMessages(
            ps.map((p) => p.message),
            6,
          )}`,
        );
      }
    }
    line("Newsletters and marketing", byCat("newsletter"));
    line("Other mail (notices, internal)", byCat("other"));
    line("Quoted copies of earlier messages", byCat("quoted"));
    line("Signatures and disclaimers", byCat("signature"));
  }
  return out.join("\n");
}

/** A subject without reply prefixes and PO numbers: `Re: PO-4471802 quantities` → `quantities`. */
function topicOf(subject: string | undefined): string {
  const bare = (subject ?? "")
    .replace(/^(?:\s*(?:re|aw|fw|fwd|wg)\s*:\s*)+/i, "")
    .replace(/\b(?:P\.?\s?O\.?|purchase\s+order)\s*(?:#|no\.?|number|nr\.?)?\s*[:#-]?\s*[A-Z]{0,3}-?\d{5,10}\b/gi, "")
    .replace(/^[\s–—:-]+|[\s–—:-]+$/g, "");
  return bare || "(no subject)";
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** The text of one id: a passage, a whole message (`m14`) or a whole attachment (`m14/a1`). */
export function lookupContext(
  context: PreparedContext,
  id: string,
): { id: string; message: MessageInfo | undefined; passages: Passage[] } | undefined {
  const wanted = id.trim();
  const exact = context.passages.find((p) => p.id === wanted);
  const parts = exact
    ? [exact]
    : context.passages.filter((p) => p.id.startsWith(`${wanted}:`) || p.id.startsWith(`${wanted}/`));
  if (parts.length === 0) return undefined;
  const first = parts[0];
  const message = first ? context.messages.find((m) => m.alias === first.message) : undefined;
  return { id: wanted, message, passages: parts };
}

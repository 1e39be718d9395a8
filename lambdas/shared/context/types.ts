import { z } from "zod/v3";

/**
 * One message of the email thread a PO arrived with, in thread order (oldest first). Our own
 * input type on purpose: the .eml parser maps onto it, so this module does not depend on it.
 */
export interface ThreadMessage {
  /** The message's own id (for example the Message-ID header). */
  id: string;
  from?: string;
  date?: string;
  subject?: string;
  body: string;
  attachments?: { name: string; text: string }[];
}

/** What a passage is, as far as plain-text heuristics can tell; quoted copies and signatures rank last. */
export type PassageKind = "body" | "attachment" | "quoted" | "signature";

/**
 * A contiguous run of lines of one message body or attachment. The id names where it lives:
 * `m14:L3-7` is lines 3–7 of the 14th message's body, `m2/a1:L1-12` lines 1–12 of its first
 * attachment. `m14` is the 14th message in thread order, mapped to its real id in `messages`.
 */
export const Passage = z.object({
  id: z.string(),
  message: z.string(),
  attachment: z.string().optional(),
  lineStart: z.number().int().positive(),
  lineEnd: z.number().int().positive(),
  kind: z.enum(["body", "attachment", "quoted", "signature"]),
  text: z.string(),
  tokens: z.number().int().nonnegative(),
});
export type Passage = z.infer<typeof Passage>;

export const MessageInfo = z.object({
  alias: z.string(),
  id: z.string(),
  index: z.number().int().nonnegative(),
  from: z.string().optional(),
  date: z.string().optional(),
  subject: z.string().optional(),
});
export type MessageInfo = z.infer<typeof MessageInfo>;

export const FactKind = z.enum(["poNumber", "totalAmount", "quantity", "deliveryDate", "cancellation", "approval"]);
export type FactKind = z.infer<typeof FactKind>;

/** One statement of a fact about the PO, with the passage it came from. */
export const FactStatement = z.object({
  kind: FactKind,
  /** What the fact is about: `total`, `quantity:PK-10231`, `cancellation:PK-10231`, `approval`… */
  key: z.string(),
  /** Normalized value (`EUR 52310.00`, `650`, `2026-04-17`, `cancelled`, the instruction sentence). */
  value: z.string(),
  /** The sentence the value was read from, verbatim. */
  evidence: z.string(),
  passageId: z.string(),
  /** Thread order of the message: later statements supersede earlier ones. */
  messageIndex: z.number().int().nonnegative(),
  line: z.number().int().positive(),
});
export type FactStatement = z.infer<typeof FactStatement>;

/** The latest statement of one fact, and the earlier different values it replaced. */
export const CurrentFact = z.object({
  key: z.string(),
  kind: FactKind,
  current: FactStatement,
  superseded: z.array(FactStatement),
});
export type CurrentFact = z.infer<typeof CurrentFact>;

export const PREPARED_CONTEXT_VERSION = 1;

/**
 * The context handed to the model for one run: `text` is what is sent; `passages` keeps every
 * passage so `fetch_context` can return any of them in full by id. Persisted with the run, so it
 * is plain data with a version.
 */
export const PreparedContext = z.object({
  version: z.literal(PREPARED_CONTEXT_VERSION),
  poNumber: z.string().optional(),
  budgetTokens: z.number().int().positive(),
  /** Estimated tokens of `text` (offline tokenizer, see model/tokens.ts). */
  sentTokens: z.number().int().nonnegative(),
  /** Estimated tokens of the whole thread rendered plainly, for the reduction figure. */
  threadTokens: z.number().int().nonnegative(),
  tokensEstimated: z.literal(true),
  text: z.string(),
  messages: z.array(MessageInfo),
  passages: z.array(Passage),
  verbatimIds: z.array(z.string()),
  summarizedIds: z.array(z.string()),
  facts: z.array(CurrentFact),
});
export type PreparedContext = z.infer<typeof PreparedContext>;

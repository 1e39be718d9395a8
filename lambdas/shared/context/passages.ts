import { estimateTokens } from "../model/tokens.js";
import type { MessageInfo, Passage, PassageKind, ThreadMessage } from "./types.js";

/** A passage longer than this many lines is cut, so one fetch or one verbatim slot stays small. */
const MAX_PASSAGE_LINES = 12;

/** `m14`: the 14th message in thread order (1-based). Short, so summaries can cite ranges. */
export function messageAlias(index: number): string {
  return `m${index + 1}`;
}

/** The plain rendering of one message: what "send the whole thread" sends. */
export function renderMessage(message: ThreadMessage, position: number): string {
  const header = [`=== m${position}`, message.from && `From: ${message.from}`, message.date && `Date: ${message.date}`]
    .filter(Boolean)
    .join(" | ");
  const parts = [header];
  if (message.subject) parts.push(`Subject: ${message.subject}`);
  parts.push(message.body);
  for (const att of message.attachments ?? []) parts.push(`--- attachment: ${att.name}`, att.text);
  return parts.join("\n");
}

/** The whole thread as one text, the baseline the reduction is measured against. */
export function renderThread(messages: readonly ThreadMessage[]): string {
  return messages.map((m, i) => renderMessage(m, i + 1)).join("\n\n");
}

export function messageInfos(messages: readonly ThreadMessage[]): MessageInfo[] {
  return messages.map((m, index) => ({
    alias: messageAlias(index),
    id: m.id,
    index,
    ...(m.from === undefined ? {} : { from: m.from }),
    ...(m.date === undefined ? {} : { date: m.date }),
    ...(m.subject === undefined ? {} : { subject: m.subject }),
  }));
}

const QUOTE_HEADER = /^(?:On .{4,200} wrote:|-{2,}\s*Original Message\s*-{2,}|From: .+ Sent: .+)$/i;
const SIGNATURE_DELIMITER = /^--\s?$/;

interface Line {
  n: number;
  text: string;
  kind: PassageKind;
}

/** Classifies body lines: a quote header or `>` starts quoted text; `-- ` starts a signature (RFC 3676). */
function classifyBody(text: string): Line[] {
  const out: Line[] = [];
  let inSignature = false;
  let inQuote = false;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trimEnd();
    if (QUOTE_HEADER.test(line.trim()) || line.startsWith(">")) {
      inQuote = true;
      inSignature = false;
    } else if (SIGNATURE_DELIMITER.test(line) && !inQuote) {
      inSignature = true;
    }
    out.push({ n: i + 1, text: line, kind: inQuote ? "quoted" : inSignature ? "signature" : "body" });
  });
  return out;
}

function toBlocks(lines: Line[]): Line[][] {
  const blocks: Line[][] = [];
  let current: Line[] = [];
  const flush = () => {
    if (current.length > 0) blocks.push(current);
    current = [];
  };
  for (const line of lines) {
    const blank = line.text.replace(/^>+/, "").trim() === "";
    if (blank) {
      flush();
      continue;
    }
    const last = current.at(-1);
    if ((last && last.kind !== line.kind) || current.length >= MAX_PASSAGE_LINES) flush();
    current.push(line);
  }
  flush();
  return blocks;
}

/**
 * Splits a thread into passages with stable ids: the same thread always yields the same ids,
 * and an id says where its text lives (message, attachment, lines).
 */
export function splitThread(messages: readonly ThreadMessage[]): Passage[] {
  const passages: Passage[] = [];
  messages.forEach((message, index) => {
    const alias = messageAlias(index);
    for (const block of toBlocks(classifyBody(message.body))) {
      passages.push(passage(alias, undefined, block));
    }
    (message.attachments ?? []).forEach((att, a) => {
      const lines = att.text.split(/\r?\n/).map((text, i): Line => ({ n: i + 1, text, kind: "attachment" }));
      for (const block of toBlocks(lines)) passages.push(passage(alias, `${alias}/a${a + 1}`, block, att.name));
    });
  });
  return passages;
}

function passage(alias: string, attachmentAlias: string | undefined, block: Line[], attachmentName?: string): Passage {
  const first = block[0];
  const last = block.at(-1);
  if (!first || !last) throw new Error("empty passage block");
  const text = block.map((l) => l.text).join("\n");
  return {
    id: `${attachmentAlias ?? alias}:L${first.n}-${last.n}`,
    message: alias,
    ...(attachmentName === undefined ? {} : { attachment: attachmentName }),
    lineStart: first.n,
    lineEnd: last.n,
    kind: first.kind,
    text,
    tokens: estimateTokens(text),
  };
}

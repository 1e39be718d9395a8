/**
 * Email (`.eml`, MIME) → the PO inside it, plus the thread it belongs to. Parsed with postal-mime.
 *
 * The POs are the attachments that read as purchase orders (any format, PDF included) of the
 * newest message that has one; failing that, the body text read by the same labelled-text
 * heuristic as a PDF (all of it flagged low-confidence). Forwarded messages (`message/rfc822`
 * parts) are parsed as earlier messages of the thread. The thread is kept in date order, each
 * message with its Message-ID, In-Reply-To and References, for the context work that follows.
 */
import PostalMime, { type Address, type Email } from "postal-mime";
import { DEFAULTS } from "../constants.js";
import { DocumentError } from "../errors.js";
import { messageOf, type ParseOptions } from "./fields.js";
import type { NormalizedPo } from "./model.js";
import { parsePoText } from "./pdf.js";

export interface EmailMessage {
  messageId?: string;
  inReplyTo?: string;
  references: string[];
  from?: string;
  to: string[];
  date?: string;
  subject?: string;
  /** Plain-text body, cut at 20,000 characters. */
  text: string;
  attachments: { filename: string; mimeType: string; bytes: number }[];
}

export interface EmailThread {
  /** Oldest first. */
  messages: EmailMessage[];
}

/** How deep forwarded messages and emails attached to emails are followed. */
export const MAX_EMAIL_DEPTH = 3;

type Reader = (
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions,
  depth: number,
) => Promise<{ po: NormalizedPo; format: string }[]>;

interface Part {
  filename: string;
  mimeType: string;
  content: Uint8Array;
  messageId?: string;
}

/**
 * Every PO the email carries: all PO attachments of the newest message that has one (an earlier
 * message's attachments are earlier versions, not more orders), else the body text.
 */
export async function readEmailAll(
  bytes: Uint8Array,
  fileName: string,
  opts: ParseOptions,
  depth: number,
  read: Reader,
): Promise<{ pos: NormalizedPo[]; thread: EmailThread }> {
  if (depth > MAX_EMAIL_DEPTH)
    throw new DocumentError(`emails nested more than ${MAX_EMAIL_DEPTH} deep are not followed`);
  const messages: EmailMessage[] = [];
  const parts: Part[] = [];
  const bodies: { text: string; messageId?: string }[] = [];
  await collect(bytes, 0, messages, parts, bodies);

  const reasons: string[] = [];
  const found: NormalizedPo[] = [];
  let from: Part | undefined;
  for (const part of parts) {
    if (from && part.messageId !== from.messageId) break;
    if (part.content.byteLength > DEFAULTS.maxDocumentBytes) {
      reasons.push(`${part.filename}: ${part.content.byteLength} bytes, over the size limit`);
      continue;
    }
    try {
      const readPos = await read(part.content, part.filename, opts, depth + 1);
      const container = {
        format: "email" as const,
        document: fileName,
        part: part.filename,
        ...(part.messageId ? { messageId: part.messageId } : {}),
      };
      found.push(...readPos.map(({ po }) => ({ ...po, source: { ...po.source, container } })));
      from ??= part;
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      reasons.push(`${part.filename} (${part.mimeType}): ${err.message}`);
    }
  }
  if (found.length > 0) return { pos: found, thread: threadOf(messages) };
  for (const body of bodies) {
    if (!body.text.trim()) continue;
    try {
      const po = parsePoText(body.text.split(/\r?\n/), fileName, opts, "email");
      const fields = (po.source.fields ?? []).map((x) => x.field);
      const low = [...new Set([...(po.source.lowConfidence ?? []), ...fields])];
      return {
        pos: [
          {
            ...po,
            source: {
              ...po.source,
              lowConfidence: low,
              container: {
                format: "email",
                document: fileName,
                part: "body",
                ...(body.messageId ? { messageId: body.messageId } : {}),
              },
            },
          },
        ],
        thread: threadOf(messages),
      };
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      reasons.push(`the body text: ${err.message}`);
      break;
    }
  }
  const attached = parts.length === 0 ? "no attachment" : `${parts.length} attachment${parts.length > 1 ? "s" : ""}`;
  throw new DocumentError(
    `the email has ${attached} and no purchase order could be read from it: ${reasons.join("; ") || "the body is empty"}`,
  );
}

async function collect(
  bytes: Uint8Array,
  level: number,
  messages: EmailMessage[],
  parts: Part[],
  bodies: { text: string; messageId?: string }[],
): Promise<void> {
  let email: Email;
  try {
    email = await PostalMime.parse(bytes, {
      forceRfc822Attachments: true,
      attachmentEncoding: "arraybuffer",
      maxNestingDepth: 32,
      maxHeadersSize: 512 * 1024,
    });
  } catch (err) {
    throw new DocumentError(`the email cannot be parsed: ${messageOf(err)}`, { cause: err });
  }
  const messageId = email.messageId?.trim() || undefined;
  const own: Part[] = [];
  const forwarded: Uint8Array[] = [];
  email.attachments.forEach((a, i) => {
    const content = typeof a.content === "string" ? new TextEncoder().encode(a.content) : new Uint8Array(a.content);
    if (a.mimeType === "message/rfc822") forwarded.push(content);
    else
      own.push({
        filename: a.filename ?? `attachment-${i + 1}`,
        mimeType: a.mimeType,
        content,
        ...(messageId ? { messageId } : {}),
      });
  });
  messages.push({
    ...(messageId ? { messageId } : {}),
    ...(email.inReplyTo ? { inReplyTo: email.inReplyTo.trim() } : {}),
    references: (email.references ?? "").split(/\s+/).filter(Boolean),
    ...(email.from ? { from: addressText(email.from) } : {}),
    to: (email.to ?? []).map(addressText),
    ...(email.date ? { date: email.date } : {}),
    ...(email.subject ? { subject: email.subject } : {}),
    text: (email.text ?? "").slice(0, 20_000),
    attachments: own.map((p) => ({ filename: p.filename, mimeType: p.mimeType, bytes: p.content.byteLength })),
  });
  parts.push(...own);
  bodies.push({ text: email.text ?? "", ...(messageId ? { messageId } : {}) });
  if (level + 1 > MAX_EMAIL_DEPTH) return;
  for (const f of forwarded) await collect(f, level + 1, messages, parts, bodies);
}

function addressText(a: Address): string {
  if (a.group) return `${a.name}: ${a.group.map((m) => m.address).join(", ")}`;
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

/** Messages oldest first; those without a readable date keep their place after the dated ones. */
function threadOf(messages: EmailMessage[]): EmailThread {
  const time = (m: EmailMessage) => {
    const t = m.date ? Date.parse(m.date) : Number.NaN;
    return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
  };
  return { messages: [...messages].sort((a, b) => time(a) - time(b)) };
}

import { detect } from "../po/detect.js";
import { NO_TEXT_LAYER } from "../po/fields.js";

/**
 * The raw text of a document for `read_document` (tools/document/read_document.ts), and whether a
 * document has any: never parsed as a PO. The MIME and PDF readers load for their kind only.
 */

/** Characters per page of raw text: bounded so one call never floods the conversation. */
export const PAGE_CHARS = 6_000;
/** Parts an email is split into at most (body, attachments, forwarded messages). */
const MAX_PARTS = 20;

/** One readable part of the run's document with a stable id: `document`, `body`, `a1`, `a2`... */
interface RawPart {
  id: string;
  label: string;
  text: string;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/** The document's raw text, split into parts (an email's body and each attachment), never parsed as a PO. */
export async function rawParts(bytes: Uint8Array, name: string): Promise<RawPart[]> {
  let kind: string | undefined;
  try {
    kind = detect(bytes).kind;
  } catch {
    kind = undefined;
  }
  if (kind === "email") {
    const { default: PostalMime } = await import("postal-mime");
    const email = await PostalMime.parse(bytes);
    const parts: RawPart[] = [
      {
        id: "body",
        label: `email body (from ${email.from?.address ?? "unknown"}, subject ${JSON.stringify(email.subject ?? "")})`,
        text: email.text ?? "",
      },
    ];
    for (const [i, a] of email.attachments.slice(0, MAX_PARTS - 1).entries()) {
      const content = typeof a.content === "string" ? new TextEncoder().encode(a.content) : new Uint8Array(a.content);
      const inner = await textOf(content, a.mimeType);
      parts.push({ id: `a${i + 1}`, label: `attachment ${a.filename ?? `#${i + 1}`} (${a.mimeType})`, text: inner });
    }
    return parts;
  }
  return [{ id: "document", label: `${name} (${kind ?? "unknown format"})`, text: await textOf(bytes, kind) }];
}

async function textOf(bytes: Uint8Array, kind: string | undefined): Promise<string> {
  if (kind === "pdf" || kind === "application/pdf") {
    const { pdfTextLines } = await import("../po/pdf.js");
    try {
      return (await pdfTextLines(bytes)).join("\n");
    } catch {
      return `(a PDF of ${bytes.byteLength} bytes without a readable text layer)`;
    }
  }
  if (kind === "image" || kind?.startsWith("image/") || kind === "zip") {
    return `(binary ${kind}, ${bytes.byteLength} bytes: no text)`;
  }
  const text = decoder.decode(bytes);
  return isText(text) ? text : `(binary data, ${bytes.byteLength} bytes: no text)`;
}

/**
 * Whether bytes read as text: control characters other than tab, newline and carriage return (or
 * undecodable bytes) in more than 1 in 20 characters say they do not.
 */
export function isText(text: string): boolean {
  let odd = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 0xfffd) odd++;
  }
  return odd <= text.length / 20;
}

/**
 * Whether read_document has text to show for these bytes, given why the parser refused them (so a
 * failed parse points the model to read_document only when it can help).
 */
export function hasReadableText(bytes: Uint8Array, kind: string | undefined, refusal: string): boolean {
  if (kind === "pdf" || kind === "application/pdf") return !refusal.startsWith(NO_TEXT_LAYER);
  if (kind === "image" || kind?.startsWith("image/") || kind === "zip") return false;
  return isText(decoder.decode(bytes.subarray(0, 64 * 1024)));
}

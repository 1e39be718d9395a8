/**
 * Format detection by content, never by file name. Cheap checks first (size, magic numbers,
 * encodings), so a 50 MB file or a ZIP named `.pdf` is refused before any parser sees it. Text
 * formats are told apart by the registry (formats.ts).
 */
import { DEFAULTS } from "../constants.js";
import { DocumentError } from "../errors.js";
import { readerFor, type TextFormat } from "./formats.js";
import type { DocumentFormat } from "./model.js";

export type Detected =
  | { kind: "text"; format: TextFormat; text: string }
  | { kind: "email" }
  | { kind: "pdf" }
  | { kind: "image"; mediaType: ImageMediaType };

export type ImageMediaType = "image/png" | "image/jpeg" | "image/gif" | "image/webp";

/** Largest document per format. One limit today (DEFAULTS.maxDocumentBytes); kept per format so it can differ. */
export const MAX_BYTES: Record<DocumentFormat, number> = {
  json: DEFAULTS.maxDocumentBytes,
  csv: DEFAULTS.maxDocumentBytes,
  cxml: DEFAULTS.maxDocumentBytes,
  ubl: DEFAULTS.maxDocumentBytes,
  x12: DEFAULTS.maxDocumentBytes,
  edifact: DEFAULTS.maxDocumentBytes,
  pdf: DEFAULTS.maxDocumentBytes,
  email: DEFAULTS.maxDocumentBytes,
};

/** The size refusal, shared with callers that check a file's size before reading it. */
export function checkSize(size: number, limit: number = DEFAULTS.maxDocumentBytes): void {
  if (size > limit) {
    throw new DocumentError(
      `the document is ${size} bytes, larger than the ${limit / (1024 * 1024)} MiB (${limit} bytes) limit`,
    );
  }
}

const EMAIL_HEADER =
  /^(received|return-path|from|to|cc|subject|date|message-id|mime-version|delivered-to|reply-to|sender|in-reply-to|references|content-type|dkim-signature|x-[\w-]+|arc-[\w-]+|authentication-results)[ \t]*:/i;

/** An RFC 5322 header block: the first line is a header, and From plus Date/Subject/Message-ID/MIME-Version appear. */
function looksLikeEmail(bytes: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 64 * 1024)).replace(/^\uFEFF/, "");
  const block = head.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const lines = block.split(/\r?\n/);
  if (!EMAIL_HEADER.test(lines[0] ?? "")) return false;
  const names = new Set(lines.map((l) => /^([\w-]+)[ \t]*:/.exec(l)?.[1]?.toLowerCase()).filter(Boolean));
  return names.has("from") && ["date", "subject", "message-id", "mime-version"].some((n) => names.has(n));
}

export function detect(bytes: Uint8Array): Detected {
  checkSize(bytes.length);
  if (bytes.length === 0) throw new DocumentError("the document is empty (0 bytes)");
  const head = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  // A PDF header may follow a little junk (allowed in the first 1024 bytes by the spec).
  const pdfAt = indexOfAscii(bytes.subarray(0, 1024), "%PDF-");
  if (pdfAt >= 0) return { kind: "pdf" };
  if (head(0x50, 0x4b, 0x03, 0x04) || head(0x50, 0x4b, 0x05, 0x06)) {
    throw new DocumentError(
      "the document is a ZIP archive (or an Office file such as .xlsx), whatever its name says; export the PO as CSV, JSON, XML, X12, EDIFACT or PDF",
    );
  }
  if (head(0x89, 0x50, 0x4e, 0x47)) return { kind: "image", mediaType: "image/png" };
  if (head(0xff, 0xd8, 0xff)) return { kind: "image", mediaType: "image/jpeg" };
  if (head(0x47, 0x49, 0x46, 0x38)) return { kind: "image", mediaType: "image/gif" };
  if (head(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45)
    return { kind: "image", mediaType: "image/webp" };
  if (head(0x1f, 0x8b)) throw new DocumentError("the document is gzip-compressed; send it uncompressed");
  if (head(0xff, 0xfe) || head(0xfe, 0xff)) {
    throw new DocumentError("the document is UTF-16 text; save it as UTF-8");
  }
  // Emails may carry 8-bit bodies in other charsets: the MIME parser decodes them, not us.
  if (looksLikeEmail(bytes)) return { kind: "email" };
  const text = decodeText(bytes);
  const start = text.replace(/^\uFEFF/, "").trimStart();
  const { format } = readerFor(start);
  return { kind: "text", format, text: format === "json" || format === "csv" ? text : start };
}

/** Bytes → text, refusing what is not UTF-8 text, with the reason a person can act on. */
function decodeText(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new DocumentError(`the document is binary, not text (a zero byte at offset ${nul})`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new DocumentError(
      `the document is not UTF-8 text (invalid byte sequence near offset ${firstInvalidUtf8(bytes)}); save it as UTF-8`,
      { cause: err },
    );
  }
  if (text.trim() === "") throw new DocumentError("the document is empty (only whitespace)");
  return text;
}

/** Byte offset of the first invalid UTF-8 sequence: where the lenient decoder put U+FFFD. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const lenient = new TextDecoder("utf-8").decode(bytes);
  const at = lenient.indexOf("\uFFFD");
  return at < 0 ? 0 : new TextEncoder().encode(lenient.slice(0, at)).length;
}

function indexOfAscii(bytes: Uint8Array, needle: string): number {
  const first = needle.charCodeAt(0);
  for (let i = bytes.indexOf(first); i >= 0 && i <= bytes.length - needle.length; i = bytes.indexOf(first, i + 1)) {
    let ok = true;
    for (let j = 1; j < needle.length; j++) {
      if (bytes[i + j] !== needle.charCodeAt(j)) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return -1;
}

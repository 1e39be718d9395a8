/**
 * What may reach a log line, a trace or a metric: ids, counts, names of things. Never document
 * content, e-mail addresses, bank details or secrets. Used by the log formatter and by telemetry,
 * so every output path redacts the same way.
 */

/** Keys (lower-cased, punctuation dropped) whose values are secrets or personal data: replaced whole. */
const SECRET_KEY_ENDINGS = [
  "password",
  "passwd",
  "secret",
  "token",
  "apikey",
  "authorization",
  "cookie",
  "signature",
  "signingkey",
  "credential",
  "credentials",
  "iban",
  "swift",
  "bic",
  "routingnumber",
  "accountnumber",
  "bankaccount",
  "bankdetails",
  "cardnumber",
  "email",
  "emails",
  "emailedto",
];

function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[^a-z0-9]/g, "");
  return SECRET_KEY_ENDINGS.some((end) => k.endsWith(end));
}

/** Keys that hold document or conversation content: replaced by their size. */
const CONTENT_KEY = /^(content|body|text|document|bytes|raw|html|input|output|messages|system|rules|po|lines)$/i;

const PATTERNS: readonly [RegExp, string][] = [
  // Anthropic / generic API keys and bearer tokens first: they contain digits the rules below would split.
  [/\bsk-ant-[A-Za-z0-9_-]{8,}/g, "[secret]"],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi, "Bearer [secret]"],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, "[aws-key]"],
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, "[email]"],
  // IBAN: country code, check digits, 11-30 alphanumerics, optionally grouped by spaces.
  [/\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b/g, "[iban]"],
  // Card and bank account numbers: 8 to 19 digits in a row, or groups of four (card style).
  // PO numbers, amounts and dates stay: they are shorter or punctuated differently.
  [/\b\d{4}(?:[ -]\d{4}){2,4}\b/g, "[account]"],
  [/\b\d{8,19}\b/g, "[account]"],
];

/** Replaces e-mail addresses, IBANs, long account/card numbers and API keys inside free text. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * A copy of `value` safe to log: secret-looking keys are replaced, content-looking keys become
 * their size, strings are scrubbed with `redactText`. Cycles and depth are bounded.
 */
export function redact(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[circular]";
  if (depth > 8) return "[too deep]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  if (value instanceof Error) {
    return { name: value.name, message: redactText(value.message), stack: value.stack && redactText(value.stack) };
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (isSecretKey(key)) out[key] = "[redacted]";
    else if (CONTENT_KEY.test(key) && v !== undefined && v !== null) out[key] = sizeOf(v);
    else out[key] = redact(v, depth + 1, seen);
  }
  return out;
}

function sizeOf(value: unknown): string {
  if (typeof value === "string") return `[${value.length} chars]`;
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return `[${value.length} items]`;
  if (typeof value === "object") return `[object, ${JSON.stringify(value)?.length ?? 0} chars]`;
  return "[redacted]";
}

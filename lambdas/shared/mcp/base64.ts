/**
 * Strict base64 (RFC 4648 standard alphabet, padded or not, whitespace ignored): text that is not
 * base64 is refused instead of being decoded leniently into garbage bytes that would start a run.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  const bytes = Buffer.from(compact, "base64");
  return bytes.toString("base64").replace(/=+$/, "") === compact.replace(/=+$/, "") ? bytes : undefined;
}

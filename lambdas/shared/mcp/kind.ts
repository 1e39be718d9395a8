/**
 * What a JSON value is, for a one-line message: "a string", "an array", "an object", "null"; `absent`
 * for undefined (the server's refusals say "nothing", the client's reading of an answer "missing").
 */
export function kindOf(value: unknown, absent = "nothing"): string {
  if (value === null) return "null";
  if (value === undefined) return absent;
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

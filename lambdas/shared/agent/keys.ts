import { sha256 } from "../ledger/ledger.js";

/**
 * Ids that end up in S3 object keys (and local file paths, with s3rver) or DynamoDB keys come from
 * documents and models: a PO number `../../x`, `x/../ACM-PO-1` or 2,000 characters long must neither
 * escape its prefix nor crash a write. Plain ids keep their readable form; anything else is hashed.
 */
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function keyPart(id: string): string {
  if (PLAIN.test(id) && !id.includes("..")) return id;
  return `_sha256-${sha256(id).slice(0, 40)}`;
}

/** Where a saved PO is written: `processed/<poNumber>.json`, the PO number made safe as a key. */
export function orderObjectKey(poNumber: string): string {
  return `processed/${keyPart(poNumber)}.json`;
}

/** Where a large tool result lives; the tool_use id comes from the model. */
export function resultObjectKey(runId: string, toolUseId: string): string {
  return `results/${keyPart(runId)}/${keyPart(toolUseId)}.json`;
}

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod/v3";
import { ApprovalError } from "../errors.js";

/**
 * Signed approval links.
 *
 * A token is `base64url(JSON payload) "." base64url(HMAC-SHA256(key, domain + payload))`. The
 * signature proves the link was minted by us for this approval, this approver and this action,
 * and the expiry is inside the signed payload. What a token cannot prove on its own is enforced
 * by the caller against the ledger: that the approval record still exists, is still pending and
 * is bound to the same approver (binding), and that this nonce was not used before (single use,
 * recorded with a conditional write when the decision is taken).
 *
 * Only POST decides: a GET on the link renders a confirmation page, so mail scanners and link
 * previewers that follow GETs decide nothing.
 */

/** HMAC-SHA256 keys shorter than the hash output weaken the signature; refuse them. */
export const MIN_KEY_BYTES = 32;

/** Separates these signatures from any other HMAC made with the same key. */
const DOMAIN = "po-agent/approval-link/v1.";

export type ApprovalAction = "approve" | "reject";

export interface ApprovalLinkClaims {
  approvalId: string;
  approverId: string;
  action: ApprovalAction;
  /** Epoch seconds. */
  expiresAt: number;
  nonce: string;
}

const WirePayload = z
  .object({
    v: z.literal(1),
    a: z.string().min(1),
    p: z.string().min(1),
    d: z.enum(["approve", "reject"]),
    e: z.number().int().nonnegative(),
    n: z.string().min(1),
  })
  .strict();

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function keyBytes(key: Uint8Array | string): Buffer {
  const bytes = typeof key === "string" ? Buffer.from(key, "utf8") : Buffer.from(key);
  if (bytes.length < MIN_KEY_BYTES) {
    throw new ApprovalError(`approval signing key is ${bytes.length} bytes; at least ${MIN_KEY_BYTES} are required`);
  }
  return bytes;
}

function sign(key: Buffer, payloadB64: string): Buffer {
  return createHmac("sha256", key).update(DOMAIN).update(payloadB64).digest();
}

/** A fresh random nonce for one link (128 bits). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** Mints a compact, URL-safe token for one approver's approve or reject link. */
export function signApprovalLink(opts: ApprovalLinkClaims & { key: Uint8Array | string }): string {
  const claims = WirePayload.safeParse({
    v: 1,
    a: opts.approvalId,
    p: opts.approverId,
    d: opts.action,
    e: opts.expiresAt,
    n: opts.nonce,
  });
  if (!claims.success) {
    throw new ApprovalError(
      `cannot sign approval link: ${claims.error.issues.map((i) => i.path.join(".")).join(", ")}`,
    );
  }
  const payloadB64 = Buffer.from(JSON.stringify(claims.data), "utf8").toString("base64url");
  return `${payloadB64}.${sign(keyBytes(opts.key), payloadB64).toString("base64url")}`;
}

/**
 * Checks structure, then signature (constant time), then expiry, and returns the claims.
 * Throws ApprovalError with a distinct message for malformed, forged and expired tokens.
 * `now` is epoch seconds; a token is expired from `expiresAt` on.
 */
export function verifyApprovalLink(key: Uint8Array | string, token: string, now: number): ApprovalLinkClaims {
  const parts = token.split(".");
  const [payloadB64, signatureB64] = parts;
  if (
    parts.length !== 2 ||
    payloadB64 === undefined ||
    signatureB64 === undefined ||
    !BASE64URL.test(payloadB64) ||
    !BASE64URL.test(signatureB64)
  ) {
    throw new ApprovalError("approval link is malformed");
  }
  const expected = sign(keyBytes(key), payloadB64);
  const given = Buffer.from(signatureB64, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ApprovalError("approval link signature is invalid");
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payloadB64, "base64url").toString("utf8"));
  } catch {
    throw new ApprovalError("approval link is malformed");
  }
  const payload = WirePayload.safeParse(json);
  if (!payload.success) throw new ApprovalError("approval link is malformed");
  const claims: ApprovalLinkClaims = {
    approvalId: payload.data.a,
    approverId: payload.data.p,
    action: payload.data.d,
    expiresAt: payload.data.e,
    nonce: payload.data.n,
  };
  if (now >= claims.expiresAt) {
    throw new ApprovalError(`approval link expired at ${new Date(claims.expiresAt * 1000).toISOString()}`);
  }
  return claims;
}

/** The link put in the email. GET shows a confirmation page; only the POST it contains decides. */
export function approvalUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/approvals/${encodeURIComponent(token)}`;
}

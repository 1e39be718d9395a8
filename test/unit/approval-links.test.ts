import { describe, expect, it } from "vitest";
import {
  type ApprovalLinkClaims,
  approvalUrl,
  newNonce,
  signApprovalLink,
  verifyApprovalLink,
} from "../../lambdas/shared/approval/links.js";
import { ApprovalError } from "../../lambdas/shared/errors.js";

const key = "k".repeat(32);
const now = 1_800_000_000;
const claims: ApprovalLinkClaims = {
  approvalId: "appr-123",
  approverId: "cfo@example.com",
  action: "approve",
  expiresAt: now + 3600,
  nonce: "n0nce",
};

function failure(fn: () => unknown): ApprovalError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApprovalError) return error;
    throw error;
  }
  throw new Error("expected an ApprovalError");
}

/** Flips one character of a base64url string to another valid one. */
function tamper(part: string, index = 0): string {
  const ch = part[index] === "A" ? "B" : "A";
  return part.slice(0, index) + ch + part.slice(index + 1);
}

describe("signApprovalLink / verifyApprovalLink", () => {
  it("round-trips the claims through a compact URL-safe token", () => {
    // Act
    const token = signApprovalLink({ key, ...claims });
    const verified = verifyApprovalLink(key, token, now);

    // Assess
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(verified).toEqual(claims);
  });

  it("accepts a binary key", () => {
    // Prepare
    const binary = new Uint8Array(32).fill(7);

    // Act
    const token = signApprovalLink({ key: binary, ...claims, action: "reject" });

    // Assess
    expect(verifyApprovalLink(binary, token, now).action).toBe("reject");
  });

  it("rejects a token signed with another key", () => {
    // Prepare
    const token = signApprovalLink({ key: "x".repeat(32), ...claims });

    // Act
    const error = failure(() => verifyApprovalLink(key, token, now));

    // Assess
    expect(error.message).toBe("approval link signature is invalid");
  });

  it("rejects a payload edited to change the action, even with the original signature", () => {
    // Prepare: re-encode the payload with action "reject", keep the approve signature.
    const [payload, signature] = signApprovalLink({ key, ...claims }).split(".");
    const edited = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
    edited.d = "reject";
    const forged = `${Buffer.from(JSON.stringify(edited)).toString("base64url")}.${signature}`;

    // Act
    const error = failure(() => verifyApprovalLink(key, forged, now));

    // Assess
    expect(error.message).toBe("approval link signature is invalid");
  });

  it("rejects a tampered or truncated signature", () => {
    // Prepare
    const [payload, signature = ""] = signApprovalLink({ key, ...claims }).split(".");

    // Act
    const flipped = failure(() => verifyApprovalLink(key, `${payload}.${tamper(signature)}`, now));
    const truncated = failure(() => verifyApprovalLink(key, `${payload}.${signature.slice(0, 10)}`, now));

    // Assess
    expect(flipped.message).toBe("approval link signature is invalid");
    expect(truncated.message).toBe("approval link signature is invalid");
  });

  it.each([
    ["empty", ""],
    ["no dot", "abcdef"],
    ["three parts", "a.b.c"],
    ["not base64url", "ab+c.de/f"],
    ["empty signature", "abc."],
  ])("rejects a malformed token (%s)", (_label, token) => {
    // Act
    const error = failure(() => verifyApprovalLink(key, token, now));

    // Assess
    expect(error.message).toBe("approval link is malformed");
  });

  it("rejects an expired token, from the expiry second on", () => {
    // Prepare
    const token = signApprovalLink({ key, ...claims });

    // Act
    const atExpiry = failure(() => verifyApprovalLink(key, token, claims.expiresAt));
    const justBefore = verifyApprovalLink(key, token, claims.expiresAt - 1);

    // Assess
    expect(atExpiry.message).toMatch(/^approval link expired at /);
    expect(justBefore.approvalId).toBe("appr-123");
  });

  it("refuses short keys and empty claims when signing", () => {
    // Act + Assess
    expect(() => signApprovalLink({ key: "short", ...claims })).toThrow(/at least 32/);
    expect(() => signApprovalLink({ key, ...claims, approverId: "" })).toThrow(ApprovalError);
    expect(() => signApprovalLink({ key, ...claims, expiresAt: 1.5 })).toThrow(ApprovalError);
  });

  it("makes fresh nonces", () => {
    // Assess
    expect(newNonce()).not.toBe(newNonce());
    expect(newNonce()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe("approvalUrl", () => {
  it("puts the token under /approvals/ without doubling slashes", () => {
    // Prepare
    const token = signApprovalLink({ key, ...claims });

    // Act
    const url = approvalUrl("https://approve.example.com/", token);

    // Assess
    expect(url).toBe(`https://approve.example.com/approvals/${token}`);
    expect(verifyApprovalLink(key, decodeURIComponent(url.split("/approvals/")[1] ?? ""), now)).toEqual(claims);
  });
});

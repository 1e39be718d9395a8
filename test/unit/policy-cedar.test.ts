import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CustomerConfig, Weekday } from "../../lambdas/shared/config/schema.js";
import {
  authorize,
  type CedarCall,
  cedarPolicyText,
  policyRevisionOf,
  validatePolicyText,
} from "../../lambdas/shared/policy/cedar.js";
import { dateInZone, evaluatePolicy } from "../../lambdas/shared/policy/evaluate.js";
import { CUSTOMERS_DIR, realCustomer, realCustomers } from "../support/stack.js";

const c37 = realCustomer("customer37");
const policyFile = (c: CustomerConfig) => readFileSync(join(CUSTOMERS_DIR, `${c.name}.cedar`), "utf8");

// 2026-11-23 is a Monday.
const DATES: Record<Weekday, string> = {
  mon: "2026-11-23",
  tue: "2026-11-24",
  wed: "2026-11-25",
  thu: "2026-11-26",
  fri: "2026-11-27",
  sat: "2026-11-28",
  sun: "2026-11-29",
};
const PREFERRED = { supplierName: "Great Lakes Steel & Wire", supplierId: "PSV-0101" };
const NON_PREFERRED = { supplierName: "Lakeshore Office Supply", supplierId: "PSV-0205" };

/** Customer 37's rule as the customer wrote it, read independently of the generator. */
function c37Oracle(cents: number, day: Weekday, preferred: boolean): "allow" | "require_approval" {
  if (day === "thu") return cents <= 750_000 ? "allow" : "require_approval";
  return cents <= 1_000_000 || preferred ? "allow" : "require_approval";
}

describe("customers/<name>.cedar", () => {
  it.each(realCustomers().map((c) => [c.name, c] as const))(
    "%s: the checked-in file is what its YAML generates",
    (_, c) => {
      // Act
      const generated = cedarPolicyText(c);

      // Assess: regenerate with `npx tsx lambdas/shared/policy/write-files.ts` when this fails.
      expect(policyFile(c)).toBe(generated);
    },
  );

  it.each(realCustomers().map((c) => [c.name, c] as const))("%s: the file validates against the schema", (_, c) => {
    // Act / Assess
    expect(validatePolicyText(policyFile(c))).toEqual([]);
  });

  it("reports a policy that does not type-check against the schema", () => {
    // Act
    const problems = validatePolicyText('permit (principal, action, resource) when { context.amountMinor == "lots" };');

    // Assess
    expect(problems.length).toBeGreaterThan(0);
  });
});

describe("customer 37: every weekday, at, just under and just over each threshold, both kinds of vendor", () => {
  const amounts = [749_999, 750_000, 750_001, 999_999, 1_000_000, 1_000_001, 5_000_000];
  const days = Object.keys(DATES) as Weekday[];
  const cases = days.flatMap((day) =>
    amounts.flatMap((cents) => [true, false].map((preferred) => [day, cents, preferred] as const)),
  );

  it.each(cases)("%s, %i cents, preferred=%s", (day, cents, preferred) => {
    // Prepare
    const supplier = preferred ? PREFERRED : NON_PREFERRED;
    const expected = c37Oracle(cents, day, preferred);

    // Act: the guard's path (evaluatePolicy → Cedar) and the checked-in file evaluated directly.
    const decision = evaluatePolicy(c37, { totalMinor: cents, currency: "USD", orderDate: DATES[day], ...supplier });
    const call: CedarCall = {
      agent: "orchestrator",
      tool: "save",
      effect: "write",
      documentId: "PO-1",
      documentType: "purchase_order/json",
      amountMinor: cents,
      currency: "USD",
      weekday: day,
      vendorKnown: true,
      vendorId: supplier.supplierId,
      vendorPreferred: preferred,
    };
    const fromFile = authorize(c37, call, policyFile(c37));

    // Assess
    expect(decision.decision).toBe(expected);
    expect(fromFile.decision).toBe(expected === "allow" ? "allow" : "deny");
    expect(decision.tier).toBe(day === "thu" ? "thursday-bob" : "default");
    expect(decision.policyRevision).toBe(policyRevisionOf(c37));
  });

  it("names the approvers in order when a human is needed (routing stays in TypeScript)", () => {
    // Act
    const thu = evaluatePolicy(c37, { totalMinor: 930_000, currency: "USD", orderDate: DATES.thu, ...PREFERRED });
    const mon = evaluatePolicy(c37, { totalMinor: 3_000_000, currency: "USD", orderDate: DATES.mon, ...NON_PREFERRED });

    // Assess: Bob ($7,500 limit) is never asked above it; Carol ($25,000) not for $30,000.
    expect(thu).toMatchObject({ decision: "require_approval", approvers: ["dana", "erin"] });
    expect(mon).toMatchObject({ decision: "require_approval", approvers: ["alice", "dana", "erin"] });
  });

  it("takes the weekday in the customer's time zone: Thursday evening in Chicago is Friday in UTC", () => {
    // Prepare: a document stamped 2026-11-27T03:30Z.
    const instant = new Date("2026-11-27T03:30:00Z");

    // Act
    const local = evaluatePolicy(c37, {
      totalMinor: 900_000,
      currency: "USD",
      orderDate: dateInZone(instant, c37.timeZone),
      ...NON_PREFERRED,
    });
    const utc = evaluatePolicy(c37, {
      totalMinor: 900_000,
      currency: "USD",
      orderDate: dateInZone(instant, "UTC"),
      ...NON_PREFERRED,
    });

    // Assess
    expect(local).toMatchObject({ decision: "require_approval", weekday: "thu" });
    expect(utc).toMatchObject({ decision: "allow", weekday: "fri" });
  });
});

describe("what the policy never allows on its own", () => {
  const small = { totalMinor: 100, currency: "USD", orderDate: DATES.mon, ...PREFERRED };

  it("a dangerous operation, whatever the amount (forbid wins over permit)", () => {
    // Act
    const d = evaluatePolicy(c37, { ...small, tool: "bulk_change", effect: "dangerous" });

    // Assess
    expect(d.decision).toBe("require_approval");
    expect(d.policies).toEqual(["dangerous-needs-human"]);
  });

  it("a write requested by any agent other than the orchestrator", () => {
    // Act
    const d = evaluatePolicy(c37, { ...small, agent: "sub-agent" });

    // Assess
    expect(d.decision).toBe("require_approval");
    expect(d.reason).toContain('"sub-agent"');
  });

  it("an amount in another currency than the limits", () => {
    // Act
    const d = evaluatePolicy(c37, { ...small, currency: "EUR" });

    // Assess
    expect(d.decision).toBe("require_approval");
    expect(d.reason).toContain("EUR");
  });
});

describe("policy revision", () => {
  it("is stable for the same config and changes with any threshold", () => {
    // Prepare
    const tiers = c37.approvalPolicy.tiers.map((t) =>
      t.name === "thursday-bob" ? { ...t, autoApproveUpTo: 7600 } : t,
    ) as CustomerConfig["approvalPolicy"]["tiers"];
    const changed: CustomerConfig = { ...c37, approvalPolicy: { ...c37.approvalPolicy, tiers } };

    // Act
    const a = policyRevisionOf(c37);
    const b = policyRevisionOf(realCustomer("customer37"));
    const c = policyRevisionOf(changed);

    // Assess
    expect(a).toMatch(/^cedar-[0-9a-f]{16}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(
      evaluatePolicy(changed, { totalMinor: 755_000, currency: "USD", orderDate: DATES.thu, ...NON_PREFERRED }),
    ).toMatchObject({ decision: "allow", policyRevision: c });
  });
});

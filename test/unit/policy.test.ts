import { describe, expect, it } from "vitest";
import { loadCustomer } from "../../lambdas/shared/config/load.js";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import {
  dateInZone,
  evaluatePolicy,
  findVendor,
  isPreferredVendor,
  vendorStanding,
  weekdayOf,
} from "../../lambdas/shared/policy/evaluate.js";
import type { PolicyInput } from "../../lambdas/shared/policy/types.js";

const c37 = loadCustomer("customers", "customer37");
const acme = loadCustomer("customers", "acme");

// The week of 2026-11-23 (Monday) to 2026-11-29 (Sunday).
const MON = "2026-11-23";
const WED = "2026-11-25";
const THU = "2026-11-26";
const NON_PREFERRED = { supplierName: "Cornbelt Hydraulics LLC", supplierId: "PSV-0311" };
const PREFERRED = { supplierName: "Midwest Fasteners, Inc.", supplierId: "PSV-0102" };

function input(
  totalMinor: number,
  orderDate: string,
  supplier: { supplierName: string; supplierId?: string } = NON_PREFERRED,
): PolicyInput {
  return { totalMinor, currency: "USD", orderDate, ...supplier };
}

describe("weekdays and dates", () => {
  it.each([
    ["2026-11-23", "mon"],
    ["2026-11-26", "thu"],
    ["2026-11-29", "sun"],
    ["1970-01-01", "thu"],
    ["2000-02-29", "tue"],
    ["2024-12-31", "tue"],
  ] as const)("%s is a %s", (date, weekday) => {
    // Act / Assess
    expect(weekdayOf(date)).toBe(weekday);
  });

  it("refuses dates that do not exist or are not YYYY-MM-DD", () => {
    // Act / Assess
    expect(() => weekdayOf("2026-02-29")).toThrow(/not a real calendar date/);
    expect(() => weekdayOf("26/11/2026")).toThrow(/not a YYYY-MM-DD date/);
  });

  it("turns an instant into the customer's local date", () => {
    // Prepare: 03:30 UTC on Friday is still Thursday evening in Chicago
    const instant = new Date("2026-11-27T03:30:00Z");
    // Act / Assess
    expect(dateInZone(instant, "America/Chicago")).toBe("2026-11-26");
    expect(dateInZone(instant, "UTC")).toBe("2026-11-27");
    expect(dateInZone(instant, "Asia/Tokyo")).toBe("2026-11-27");
  });
});

describe("customer 37 on Thursday: Bob's authority up to $7,500", () => {
  it.each([
    [749_999, "allow"],
    [750_000, "allow"],
    [750_001, "require_approval"],
    [1_000_000, "require_approval"],
  ] as const)("%i cents from a non-preferred vendor → %s", (total, decision) => {
    // Act
    const d = evaluatePolicy(c37, input(total, THU));
    // Assess
    expect(d).toMatchObject({ decision, tier: "thursday-bob", weekday: "thu" });
  });

  it("preferred vendors are not exempt on Thursday", () => {
    // Act
    const d = evaluatePolicy(c37, input(930_000, THU, PREFERRED));
    // Assess
    expect(d.decision).toBe("require_approval");
    expect(d.reason).toContain("Preferred vendors are not exempt");
  });

  it("above $7,500 asks Dana first, then her delegate; Bob is never asked above his limit", () => {
    // Act
    const d = evaluatePolicy(c37, input(930_000, THU));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(["dana", "erin"]);
  });

  it("the reason names the rule, the amount and the vendor", () => {
    // Act
    const d = evaluatePolicy(
      c37,
      input(680_000, THU, { supplierName: "Tri-County Electrical Wholesale", supplierId: "PSV-0412" }),
    );
    // Assess
    expect(d.reason).toBe(
      'Under rule "thursday-bob" (Thursday 2026-11-26), $6,800.00 from Tri-County Electrical Wholesale is within the $7,500.00 auto-approval limit.',
    );
  });
});

describe("customer 37 on other days: $10,000, preferred vendors exempt", () => {
  it.each([
    [999_999, "allow"],
    [1_000_000, "allow"],
    [1_000_001, "require_approval"],
  ] as const)("%i cents from a non-preferred vendor on Monday → %s", (total, decision) => {
    // Act
    const d = evaluatePolicy(c37, input(total, MON));
    // Assess
    expect(d).toMatchObject({ decision, tier: "default", weekday: "mon" });
  });

  it.each([1_000_001, 2_500_000, 1_000_000_000])("%i cents from a preferred vendor → allow", (total) => {
    // Act
    const d = evaluatePolicy(c37, input(total, WED, PREFERRED));
    // Assess
    expect(d.decision).toBe("allow");
    expect(d.reason).toContain("preferred vendors are exempt");
  });

  it("$7,500.01 is fine on Wednesday but not on Thursday", () => {
    // Act
    const wed = evaluatePolicy(c37, input(750_001, WED));
    const thu = evaluatePolicy(c37, input(750_001, THU));
    // Assess
    expect([wed.decision, thu.decision]).toEqual(["allow", "require_approval"]);
  });

  it.each([
    ["2026-11-23", "mon", "default", "allow"],
    ["2026-11-24", "tue", "default", "allow"],
    ["2026-11-25", "wed", "default", "allow"],
    ["2026-11-26", "thu", "thursday-bob", "require_approval"],
    ["2026-11-27", "fri", "default", "allow"],
    ["2026-11-28", "sat", "default", "allow"],
    ["2026-11-29", "sun", "default", "allow"],
  ] as const)("$9,000 on %s (%s) → tier %s, %s", (date, weekday, tier, decision) => {
    // Act
    const d = evaluatePolicy(c37, input(900_000, date));
    // Assess
    expect(d).toMatchObject({ weekday, tier, decision });
  });

  it.each([
    [1_540_000, ["alice", "dana", "carol", "erin"]],
    [3_000_000, ["alice", "dana", "erin"]],
    [6_000_000, ["dana", "erin"]],
  ] as const)("%i cents: approvers in tier order, then delegates, each able to approve it", (total, approvers) => {
    // Act
    const d = evaluatePolicy(c37, input(total, WED));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(approvers);
  });
});

describe("acme", () => {
  it.each([
    [500_000, NON_PREFERRED, "allow"],
    [500_001, { supplierName: "Brightline Electrical Co.", supplierId: "V-1004" }, "require_approval"],
    [2_000_000, { supplierName: "Northeast Industrial Supply", supplierId: "V-1001" }, "allow"],
    // Preferred status comes from the vendor master by id: a name alone is no exemption.
    [2_000_000, { supplierName: "Northeast Industrial Supply" }, "require_approval"],
    // A preferred vendor's id next to another name is a question for a human, never an exemption.
    [3_000_000, { supplierName: "Totally Different Supplies", supplierId: "V-1001" }, "require_approval"],
    [100, { supplierName: "Totally Different Supplies", supplierId: "V-1001" }, "require_approval"],
  ] as const)("%i cents → %s", (total, supplier, decision) => {
    // Act
    const d = evaluatePolicy(acme, input(total, THU, supplier));
    // Assess
    expect(d).toMatchObject({ decision, tier: "default" });
  });

  it("asks priya, then her delegate marcus", () => {
    // Act
    const d = evaluatePolicy(acme, input(875_000, MON));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(["priya", "marcus"]);
  });
});

describe("approver fallbacks and exact config amounts", () => {
  const config = (autoApproveUpTo: number, approvers: object[]) =>
    CustomerConfig.parse({
      name: "demo",
      displayName: "Demo",
      timeZone: "UTC",
      currency: "USD",
      rules: "r",
      approvers,
      approvalPolicy: {
        tiers: [
          { name: "default", description: "d", autoApproveUpTo, preferredVendorsExempt: false, approvers: ["a"] },
        ],
      },
    });
  const a = { id: "a", name: "A", email: "a@example.com", limit: 100, delegates: ["b", "c"] };
  const b = { id: "b", name: "B", email: "b@example.com", limit: 200 };
  const c = { id: "c", name: "C", email: "c@example.com" };

  it("a delegate who can approve is asked even when the tier's approver cannot", () => {
    // Act
    const d = evaluatePolicy(config(10, [a, b, c]), input(50_000, MON));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(["c"]);
  });

  it("when nobody is eligible, asks those without a limit whatever the day", () => {
    // Act
    const d = evaluatePolicy(config(10, [a, b, { ...c, weekdays: ["thu"] }]), input(50_000, MON));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(["c"]);
    expect(d.reason).toContain("asking those without a limit");
  });

  it("when everyone has a limit, still asks someone", () => {
    // Act
    const d = evaluatePolicy(config(10, [a, b, { ...c, limit: 300 }]), input(50_000, MON));
    // Assess
    expect(d.decision === "require_approval" && d.approvers).toEqual(["a", "b", "c"]);
  });

  it("an approver restricted to some weekdays is skipped on the others", () => {
    // Prepare
    const cfg = config(10, [{ ...a, limit: undefined, weekdays: ["thu"] }, b, c]);
    // Act
    const thu = evaluatePolicy(cfg, input(50_000, THU));
    const mon = evaluatePolicy(cfg, input(50_000, MON));
    // Assess
    expect(thu.decision === "require_approval" && thu.approvers).toEqual(["a", "c"]);
    expect(mon.decision === "require_approval" && mon.approvers).toEqual(["c"]);
  });

  it("compares a fractional config amount exactly (10000.5 is 1,000,050 cents)", () => {
    // Prepare
    const cfg = config(10000.5, [{ ...c, id: "a" }]);
    // Act / Assess
    expect(evaluatePolicy(cfg, input(1_000_050, MON)).decision).toBe("allow");
    expect(evaluatePolicy(cfg, input(1_000_051, MON)).decision).toBe("require_approval");
  });

  it("a PO in another currency always needs a human", () => {
    // Act
    const d = evaluatePolicy(c37, { ...input(100, MON, PREFERRED), currency: "EUR" });
    // Assess
    expect(d.decision).toBe("require_approval");
    expect(d.reason).toContain("is in EUR (€1.00) but the policy's limits are in USD");
  });

  it("is deterministic", () => {
    // Act / Assess
    expect(evaluatePolicy(c37, input(930_000, THU))).toEqual(evaluatePolicy(c37, input(930_000, THU)));
  });
});

describe("vendors", () => {
  it("matches by id when the name agrees with the vendor master (legal form aside)", () => {
    // Act / Assess
    expect(findVendor(c37, { name: "Midwest Fasteners", id: "psv-0102" })?.name).toBe("Midwest Fasteners, Inc.");
    expect(isPreferredVendor(c37, { name: "MIDWEST FASTENERS INC.", id: "PSV-0102" })).toBe(true);
  });

  it("an id next to another vendor's name is a mismatch for a human, not that vendor", () => {
    // Act
    const standing = vendorStanding(c37, { name: "MFI", id: "psv-0102" });
    // Assess
    expect(standing.vendor).toBeUndefined();
    expect(standing.preferred).toBe(false);
    expect(standing.mismatch).toMatch(/PSV-0102 belongs to Midwest Fasteners, Inc\./);
  });

  it("matches by normalized name when there is no id", () => {
    // Act / Assess
    expect(findVendor(c37, { name: "  MIDWEST FASTENERS INC " })?.id).toBe("PSV-0102");
    expect(findVendor(c37, { name: "Great Lakes Steel and Wire" })?.id).toBe("PSV-0101");
  });

  it("a known name with a contradicting id is not that vendor", () => {
    // Act / Assess
    expect(findVendor(c37, { name: "Midwest Fasteners, Inc.", id: "X-999" })).toBeUndefined();
    expect(isPreferredVendor(c37, { name: "Midwest Fasteners, Inc.", id: "X-999" })).toBe(false);
  });

  it("unknown and non-preferred vendors are not preferred", () => {
    // Act / Assess
    expect(findVendor(c37, { name: "Riverbend Tooling Co." })).toBeUndefined();
    expect(isPreferredVendor(c37, { name: "Lakeshore Office Supply" })).toBe(false);
    // Named without an id: a known vendor, but preferred status needs the vendor master's id.
    expect(findVendor(c37, { name: "Great Lakes Steel & Wire" })?.id).toBe("PSV-0101");
    expect(isPreferredVendor(c37, { name: "Great Lakes Steel & Wire" })).toBe(false);
    expect(isPreferredVendor(c37, { name: "Great Lakes Steel & Wire", id: "PSV-0101" })).toBe(true);
  });
});

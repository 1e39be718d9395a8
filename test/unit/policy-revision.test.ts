import { describe, expect, it } from "vitest";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { policyRevisionOf } from "../../lambdas/shared/policy/cedar.js";
import { POLICY_DATA_KEYS, POLICY_TEXT_KEYS } from "../../lambdas/shared/policy/types.js";
import { realCustomer } from "../support/stack.js";

const c37 = realCustomer("customer37");
const clone = (c: CustomerConfig): CustomerConfig => structuredClone(c);

describe("the policy revision covers exactly the policy's inputs", () => {
  it("changes when any input the evaluator may read changes", () => {
    const base = policyRevisionOf(c37);
    const changed: Record<string, (c: CustomerConfig) => void> = {
      timeZone: (c) => {
        c.timeZone = c.timeZone === "UTC" ? "Europe/Berlin" : "UTC";
      },
      currency: (c) => {
        c.currency = c.currency === "EUR" ? "USD" : "EUR";
      },
      approvalPolicy: (c) => {
        const tier = c.approvalPolicy.tiers[0];
        if (tier) tier.autoApproveUpTo += 1;
      },
      approvers: (c) => {
        const first = c.approvers[0];
        first.email = `other-${first.email}`;
      },
      vendors: (c) => {
        c.vendors.push({ id: "V-NEW", name: "A New Vendor", preferred: true });
      },
      name: (c) => {
        c.name = `${c.name}-renamed`;
      },
      displayName: (c) => {
        c.displayName = `${c.displayName} (renamed)`;
      },
    };
    // Every key the evaluator is typed to read has a case here, so a key added to the list is tested.
    expect(Object.keys(changed).sort()).toEqual([...POLICY_DATA_KEYS, ...POLICY_TEXT_KEYS].sort());
    for (const [key, change] of Object.entries(changed)) {
      const c = clone(c37);
      change(c);
      expect(policyRevisionOf(c), key).not.toBe(base);
    }
  });

  it("stays the same when only settings outside the policy change (model, budgets)", () => {
    const c = clone(c37);
    c.model = { ...c.model, id: "another-model" };
    c.budgets = { ...c.budgets, maxTurns: (c.budgets.maxTurns ?? 10) + 5 };
    expect(policyRevisionOf(c)).toBe(policyRevisionOf(c37));
  });
});

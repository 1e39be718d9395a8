import type { Weekday } from "../config/schema.js";

/** What the guard and the offline model need to know about a write to decide on it. */
export interface PolicyInput {
  totalMinor: number;
  currency: string;
  supplierName: string;
  supplierId?: string;
  /** YYYY-MM-DD; the weekday is derived from it in the customer's time zone. */
  orderDate: string;
}

export type PolicyDecision =
  | { decision: "allow"; tier: string; weekday: Weekday; reason: string }
  | {
      decision: "require_approval";
      tier: string;
      weekday: Weekday;
      reason: string;
      /** Approver ids in the order they are asked: first is emailed, the rest are the escalation chain. */
      approvers: string[];
    };

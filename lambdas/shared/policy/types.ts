import type { Weekday } from "../config/schema.js";

/** What the guard and the offline model need to know about a write to decide on it. */
export interface PolicyInput {
  totalMinor: number;
  currency: string;
  supplierName: string;
  supplierId?: string;
  /** YYYY-MM-DD; the weekday is derived from it in the customer's time zone. */
  orderDate: string;
  /** The tool asking to write. @default "save" */
  tool?: string;
  /** The tool's declared effect. @default "write" */
  effect?: "write" | "dangerous";
  /** Who requests the call (the Cedar principal). @default "orchestrator" */
  agent?: string;
  /** What kind of document the call writes, e.g. the PO's source format. @default "purchase_order" */
  documentType?: string;
  /** The document id (PO number), the Cedar resource. @default "(unknown)" */
  documentId?: string;
}

interface DecisionBase {
  tier: string;
  weekday: Weekday;
  reason: string;
  /** Which policy text and config decided (sha256-based); recorded with the run and the approval. */
  policyRevision: string;
  /** Ids of the Cedar policies that decided: permits on allow, forbids on an explicit deny. */
  policies: string[];
}

export type PolicyDecision =
  | ({ decision: "allow" } & DecisionBase)
  | ({
      decision: "require_approval";
      /** Approver ids in the order they are asked: first is emailed, the rest are the escalation chain. */
      approvers: string[];
    } & DecisionBase);

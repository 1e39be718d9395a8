import type { CustomerConfig, Weekday } from "../config/schema.js";

/**
 * The parts of a customer's config a policy decision may read. The evaluator (evaluate.ts, cedar.ts)
 * is typed on `PolicyConfig`, so reading any other field is a compile error, and the policy revision
 * hashes the Cedar text (which names the customer) and exactly the data keys: the revision covers
 * the policy inputs by construction, not by a list kept by hand next to the code that reads them.
 */
export const POLICY_DATA_KEYS = ["timeZone", "currency", "approvalPolicy", "approvers", "vendors"] as const;
/** Keys that appear only in the Cedar text's header (so are in the hashed text). */
export const POLICY_TEXT_KEYS = ["name", "displayName"] as const;
export type PolicyConfig = Pick<CustomerConfig, (typeof POLICY_DATA_KEYS)[number] | (typeof POLICY_TEXT_KEYS)[number]>;

/** The policy data of a config, hashed into the revision beside the Cedar text. */
export function policyDataOf(customer: PolicyConfig): Pick<CustomerConfig, (typeof POLICY_DATA_KEYS)[number]> {
  return Object.fromEntries(POLICY_DATA_KEYS.map((k) => [k, customer[k]])) as unknown as Pick<
    CustomerConfig,
    (typeof POLICY_DATA_KEYS)[number]
  >;
}

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

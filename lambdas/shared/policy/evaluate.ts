import { approverChain } from "../approval/route.js";
import type { PolicyTier, Vendor, Weekday } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import type { NormalizedPo } from "../po/model.js";
import { formatMinor, toMinor } from "../po/money.js";
import { authorize, ORCHESTRATOR } from "./cedar.js";
import type { PolicyConfig, PolicyDecision, PolicyInput } from "./types.js";

const WEEKDAYS: readonly Weekday[] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
export const DAY_NAMES: Record<Weekday, string> = {
  mon: "Monday",
  tue: "Tuesday",
  wed: "Wednesday",
  thu: "Thursday",
  fri: "Friday",
  sat: "Saturday",
  sun: "Sunday",
};

/**
 * Weekday of a calendar date (YYYY-MM-DD). A date names a day, not an instant, so no time zone
 * enters here: 2026-11-26 is a Thursday everywhere. The customer's `timeZone` matters one step
 * earlier, when a document carries a timestamp instead of a date: `dateInZone` turns that instant
 * into the date the customer's office saw. Deciding from the order date (not "now") keeps a
 * replayed run deciding exactly as the first one did.
 */
export function weekdayOf(date: string): Weekday {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new RangeError(`"${date}" is not a YYYY-MM-DD date`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) {
    throw new RangeError(`"${date}" is not a real calendar date`);
  }
  return WEEKDAYS[t.getUTCDay()] as Weekday;
}

/** The calendar date (YYYY-MM-DD) an instant falls on in an IANA time zone. */
export function dateInZone(instant: Date, timeZone: string): string {
  if (Number.isNaN(instant.getTime())) throw new RangeError("invalid instant");
  // en-CA formats as YYYY-MM-DD; formatToParts keeps us independent of that detail anyway.
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Lowercase, accents folded, `&` as "and", punctuation dropped, spaces collapsed. */
export function normalizeVendorName(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** A vendor name without the legal form (Inc., LLC, Co., GmbH...), for comparing a document's name with the master. */
function coreVendorName(name: string): string {
  return normalizeVendorName(name)
    .replace(/\b(incorporated|inc|llc|l l c|ltd|limited|co|company|corp|corporation|gmbh|ag|sa|plc|lp)\b/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** Whether a document's supplier name is the vendor master's name for that id (legal form aside). */
export function vendorNameConsistent(vendor: Vendor, name: string): boolean {
  const a = coreVendorName(vendor.name);
  return a.length > 0 && a === coreVendorName(name);
}

/**
 * Who the supplier is according to the vendor master. Preferred status comes only from a match by
 * id whose name agrees with the master; an id that names another vendor is a `mismatch` (a question
 * for a human, never an exemption); a name-only match is a known vendor without preferred status.
 */
export function vendorStanding(
  customer: PolicyConfig,
  supplier: { name: string; id?: string },
): { vendor?: Vendor; preferred: boolean; mismatch?: string } {
  const id = supplier.id?.trim().toLowerCase();
  const name = normalizeVendorName(supplier.name);
  if (id) {
    const byId = customer.vendors.find((v) => v.id.trim().toLowerCase() === id);
    if (byId) {
      if (vendorNameConsistent(byId, supplier.name)) return { vendor: byId, preferred: byId.preferred === true };
      return {
        preferred: false,
        mismatch: `the supplier id ${byId.id} belongs to ${byId.name} in the vendor master, but the document names "${supplier.name}"`,
      };
    }
  }
  if (!name) return { preferred: false };
  const byName = customer.vendors.find((v) => normalizeVendorName(v.name) === name);
  if (byName && id && byName.id.trim().toLowerCase() !== id) {
    return {
      preferred: false,
      mismatch: `the document names vendor ${byName.name} but gives the id "${supplier.id}" instead of ${byName.id}`,
    };
  }
  return byName ? { vendor: byName, preferred: false } : { preferred: false };
}

/**
 * The configured vendor a supplier is, or undefined: by id with a consistent name, else by name
 * when no contradicting id is given (a look-alike must not inherit a vendor's standing).
 */
export function findVendor(customer: PolicyConfig, supplier: { name: string; id?: string }): Vendor | undefined {
  return vendorStanding(customer, supplier).vendor;
}

/** Preferred only by id with the name consistent with the vendor master. */
export function isPreferredVendor(customer: PolicyConfig, supplier: { name: string; id?: string }): boolean {
  return vendorStanding(customer, supplier).preferred;
}

/** Config amounts are major units; converted through decimal text so 10000.5 becomes exactly 1000050. */
export function configAmountToMinor(amount: number, currency: string): number {
  return toMinor(amount, currency);
}

/** The tier that decides on a weekday: the first whose `when` matches. */
export function tierFor(customer: PolicyConfig, weekday: Weekday): PolicyTier {
  const tier = customer.approvalPolicy.tiers.find((t) => !t.when.weekdays || t.when.weekdays.includes(weekday));
  if (!tier) {
    throw new ConfigError(`approvalPolicy: no approval tier applies on ${DAY_NAMES[weekday]}`);
  }
  return tier;
}

/**
 * The customer's approval policy applied to one call. Cedar decides allow or require_approval
 * (see `cedar.ts`); this function builds Cedar's context and explains the decision in words; a
 * required approval is routed to people by `approval/route.ts`. Pure and deterministic: the same config and input always give the
 * same decision, so replays and the guard agree.
 */
export function evaluatePolicy(customer: PolicyConfig, input: PolicyInput): PolicyDecision {
  const weekday = weekdayOf(input.orderDate);
  const tier = tierFor(customer, weekday);
  const standing = vendorStanding(customer, { name: input.supplierName, id: input.supplierId });
  const vendor = standing.vendor;
  const preferred = standing.preferred;
  const effect = input.effect ?? "write";
  const tool = input.tool ?? "save";
  const cedarDecision = authorize(customer, {
    agent: input.agent ?? ORCHESTRATOR,
    tool,
    effect,
    documentId: input.documentId ?? "(unknown)",
    documentType: input.documentType ?? "purchase_order",
    amountMinor: input.totalMinor,
    currency: input.currency,
    weekday,
    vendorKnown: vendor !== undefined,
    vendorId: vendor?.id ?? "",
    vendorPreferred: preferred,
  });
  const rule = `rule "${tier.name}" (${DAY_NAMES[weekday]} ${input.orderDate})`;
  const who = `${preferred ? "preferred vendor " : ""}${input.supplierName}`;
  const base = { tier: tier.name, weekday, policyRevision: cedarDecision.revision, policies: cedarDecision.policies };
  const amount = formatMinor(input.totalMinor, input.currency);
  const autoMinor = configAmountToMinor(tier.autoApproveUpTo, customer.currency);
  const autoLimit = formatMinor(autoMinor, customer.currency);

  if (cedarDecision.decision === "allow" && standing.mismatch === undefined) {
    const byLimit = cedarDecision.policies.includes(`${tier.name}/auto-approve`);
    return {
      ...base,
      decision: "allow",
      reason: byLimit
        ? `Under ${rule}, ${amount} from ${who} is within the ${autoLimit} auto-approval limit.`
        : `Under ${rule}, ${amount} from ${who} is over the ${autoLimit} auto-approval limit, but preferred vendors are exempt.`,
    };
  }

  const approvers = approverChain(customer, tier, weekday, input);
  const note = approvers.fallback
    ? ` No approver in this tier is eligible for that amount on ${DAY_NAMES[weekday]}; asking those without a limit.`
    : "";
  let why: string;
  if (standing.mismatch !== undefined) {
    why = `the vendor's identity is in doubt: ${standing.mismatch}; a human must confirm who the supplier is (${amount}).`;
  } else if (cedarDecision.policies.length > 0 || effect === "dangerous") {
    why = `${tool} is a ${effect} operation on a PO from ${who} (${amount}) and always needs a human.`;
  } else if (input.agent !== undefined && input.agent !== ORCHESTRATOR) {
    why = `${amount} from ${who} was requested by "${input.agent}", which the policy does not let write on its own.`;
  } else if (input.currency !== customer.currency) {
    // Limits are written in the customer's currency; an amount in another one cannot be compared.
    why = `the PO from ${who} is in ${input.currency} (${amount}) but the policy's limits are in ${customer.currency}, so a human must approve it.`;
  } else {
    const exemption =
      preferred && !tier.preferredVendorsExempt ? " Preferred vendors are not exempt under this rule." : "";
    why = `${amount} from ${who} is over the ${autoLimit} auto-approval limit and needs a human approver.${exemption}`;
  }
  const errors = cedarDecision.errors.length > 0 ? ` (policy errors: ${cedarDecision.errors.join("; ")})` : "";
  return {
    ...base,
    decision: "require_approval",
    reason: `Under ${rule}, ${why}${note}${errors}`,
    approvers: approvers.ids,
  };
}

/** What the policy needs to know about a PO. */
export function policyInput(po: NormalizedPo): PolicyInput {
  return {
    documentId: po.poNumber,
    documentType: `purchase_order/${po.source.format}`,
    totalMinor: po.totalMinor,
    currency: po.currency,
    supplierName: po.supplier.name,
    supplierId: po.supplier.id,
    orderDate: po.orderDate,
  };
}

/**
 * Who is asked to approve, in order: the first is emailed, the rest are the escalation chain; and
 * how long each one has (the stages of the approval clock). Typed on `PolicyConfig`, so everything
 * routing reads is covered by the policy revision.
 */
import type { Approver, PolicyTier, Weekday } from "../config/schema.js";
import { toMinor } from "../po/money.js";
import type { PolicyConfig } from "../policy/types.js";

/**
 * The chain for an amount on a weekday under a tier: the tier's approvers who may approve this
 * amount on this day, then their eligible delegates; when nobody is eligible (`fallback`), or the
 * amount is in another currency than the limits, those without a limit.
 */
export function approverChain(
  customer: PolicyConfig,
  tier: PolicyTier,
  weekday: Weekday,
  amount: { totalMinor: number; currency: string },
): { ids: string[]; fallback: boolean } {
  if (amount.currency !== customer.currency) return { ids: unlimitedApprovers(customer, tier), fallback: false };
  const eligible = (a: Approver) =>
    (a.limit === undefined || toMinor(a.limit, customer.currency) >= amount.totalMinor) &&
    (!a.weekdays || a.weekdays.includes(weekday));
  const ids = withDelegates(customer, tier, eligible);
  if (ids.length > 0) return { ids, fallback: false };
  return { ids: unlimitedApprovers(customer, tier), fallback: true };
}

/** The chain of a request no tier decided (no PO to check): the last (default) tier's approvers. */
export function defaultChain(customer: PolicyConfig): string[] {
  return [...(customer.approvalPolicy.tiers.at(-1)?.approvers ?? [])];
}

/** The chain of a named tier as configured (a request the policy would allow, but a human must see). */
export function tierChain(customer: PolicyConfig, tierName: string): string[] {
  return [...(customer.approvalPolicy.tiers.find((t) => t.name === tierName)?.approvers ?? [])];
}

/**
 * The tier's approvers that pass `keep`, in tier order, then the delegates of the tier's approvers
 * that pass `keep`, without repeats. A delegate who could not approve the amount would only delay
 * the escalation, so delegates are filtered too; an ineligible approver's eligible delegate stays.
 */
function withDelegates(customer: PolicyConfig, tier: PolicyTier, keep: (a: Approver) => boolean): string[] {
  const byId = new Map(customer.approvers.map((a) => [a.id, a]));
  const resolve = (ids: readonly string[]) => ids.map((id) => byId.get(id)).filter((a) => a !== undefined);
  const tierApprovers = resolve(tier.approvers);
  const delegates = resolve(tierApprovers.flatMap((a) => a.delegates));
  return [...new Set([...tierApprovers, ...delegates].filter(keep).map((a) => a.id))];
}

/**
 * Fallback when nobody is eligible: the tier's approvers and delegates without a limit; if every one
 * of them has a limit, all of them, so the request still reaches a person who can escalate it.
 */
function unlimitedApprovers(customer: PolicyConfig, tier: PolicyTier): string[] {
  const unlimited = withDelegates(customer, tier, (a) => a.limit === undefined);
  return unlimited.length > 0 ? unlimited : withDelegates(customer, tier, () => true);
}

// ---- the chain over time: who is waited for at each stage of the approval clock ----------

/**
 * How long each approver has, from the customer config. Stages count through the approver chain:
 * stage 2k waits for approver k until the reminder, stage 2k+1 until the escalation. Without a
 * reminder (reminderAfterHours ≥ escalateAfterHours) the even stages are skipped.
 */
export function approvalTiming(customer: PolicyConfig): {
  reminderSeconds: number | undefined;
  escalateSeconds: number;
} {
  const seconds = (hours: number) => Math.max(1, Math.ceil(hours * 3600));
  const { reminderAfterHours, escalateAfterHours } = customer.approvalPolicy;
  const escalateSeconds = seconds(escalateAfterHours);
  const reminderSeconds = seconds(reminderAfterHours);
  return { reminderSeconds: reminderSeconds < escalateSeconds ? reminderSeconds : undefined, escalateSeconds };
}

/** The approver a stage waits for (the last one once the chain is exhausted). */
export function approverIndexOf(stage: number, chainLength: number): number {
  return Math.min(Math.floor(stage / 2), Math.max(0, chainLength - 1));
}

/** Seconds from entering `stage` until the whole chain has run out: the links live that long. */
export function secondsLeftInChain(customer: PolicyConfig, stage: number, chainLength: number): number {
  const { reminderSeconds, escalateSeconds } = approvalTiming(customer);
  const k = approverIndexOf(stage, chainLength);
  const thisStage =
    stage % 2 === 0 && reminderSeconds !== undefined ? escalateSeconds : escalateSeconds - (reminderSeconds ?? 0);
  return thisStage + (chainLength - 1 - k) * escalateSeconds;
}

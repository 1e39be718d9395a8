/** Save: the order claimed, written and marked written, as one transaction in effect. */
import { DocumentError } from "../errors.js";
import type { RunRecord } from "../ledger/records.js";
import type { StepSink } from "./checkpoint.js";
import type { AgentDeps } from "./deps.js";
import { orderObjectKey } from "./keys.js";

/**
 * Saving is one transaction in effect: claim the PO number (state `writing`), write the object,
 * mark the claim `written`. A failed write releases the claim, so nothing stays claimed and the
 * corrected resend is not "already saved"; a replay of the same run (same key) writes the same
 * object again and finds exactly one order. With a `sink` (the save tool), `order.saved` goes with
 * the tool call's record: written exactly once, by whichever execution stores the result.
 */
export async function saveOrderOnce(
  deps: Pick<AgentDeps, "ledger" | "documents" | "bucket" | "customer">,
  run: Pick<RunRecord, "runId">,
  { poNumber, po, idempotencyKey }: { poNumber: string; po: unknown; idempotencyKey: string },
  sink?: StepSink,
): Promise<{ created: boolean }> {
  const objectKey = orderObjectKey(poNumber);
  const customer = deps.customer.name;
  let { order } = await deps.ledger.claimOrder({ customer, poNumber, runId: run.runId, idempotencyKey, objectKey });
  if (order.idempotencyKey !== idempotencyKey && order.state === "writing") {
    // A claim left by a run that crashed between claim and write and then failed: nothing was saved.
    const claimant = await deps.ledger.getRun(order.runId);
    if (claimant?.status === "failed" && (await deps.ledger.takeOverOrder(order, run.runId, idempotencyKey))) {
      order = { ...order, runId: run.runId, idempotencyKey };
    }
  }
  if (order.idempotencyKey !== idempotencyKey) {
    throw new DocumentError(
      order.state === "written"
        ? `PO ${poNumber.slice(0, 100)} was already saved by run ${order.runId}`
        : `PO ${poNumber.slice(0, 100)} is being saved by run ${order.runId}`,
    );
  }
  try {
    await deps.documents.put(deps.bucket, order.objectKey, JSON.stringify(po, null, 2));
  } catch (err) {
    await deps.ledger.releaseOrder(customer, poNumber, idempotencyKey);
    throw err;
  }
  const completing = order.state !== "written";
  if (completing) await deps.ledger.completeOrder(customer, poNumber, idempotencyKey);
  const saved = { actor: "agent", action: "order.saved", detail: { poNumber, objectKey: order.objectKey } };
  if (sink) sink.audit.push(saved);
  else if (completing) await deps.ledger.audit(run.runId, saved.actor, saved.action, saved.detail);
  return { created: completing };
}

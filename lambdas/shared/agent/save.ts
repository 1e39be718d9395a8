/** Save: the order claimed, written and marked written, as one transaction in effect. */
import { DocumentError } from "../errors.js";
import type { RunRecord } from "../ledger/records.js";
import type { StepSink } from "./checkpoint.js";
import type { AgentDeps } from "./deps.js";
import { orderObjectKey } from "./keys.js";

/**
 * Saving is one transaction in effect: claim the PO number (state `writing`), write the object,
 * mark the claim `written`. A failed write releases the claim, so nothing stays claimed and the
 * corrected resend is not "already saved"; a replay of the same run (same key) finds its order
 * written, or its object already stored under its own claim, and writes nothing again. With a `sink` (the save tool), `order.saved` goes with
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
  const claim = await deps.ledger.claimOrder({ customer, poNumber, runId: run.runId, idempotencyKey, objectKey });
  let { order } = claim;
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
  // `written` is only ever set after the object is stored: a replay writes nothing again.
  const completing = order.state !== "written";
  if (completing) {
    const body = JSON.stringify(po, null, 2);
    // Our claim from an earlier attempt whose mark failed (throttled, crashed): its object may be there already.
    const stored = claim.created ? undefined : await readIfPresent(deps, order.objectKey);
    if (stored !== body) {
      try {
        await deps.documents.put(deps.bucket, order.objectKey, body);
      } catch (err) {
        await deps.ledger.releaseOrder(customer, poNumber, idempotencyKey);
        throw err;
      }
    }
    await deps.ledger.completeOrder(customer, poNumber, idempotencyKey);
  }
  const saved = { actor: "agent", action: "order.saved", detail: { poNumber, objectKey: order.objectKey } };
  if (sink) sink.audit.push(saved);
  else if (completing) await deps.ledger.audit(run.runId, saved.actor, saved.action, saved.detail);
  return { created: completing };
}

async function readIfPresent(deps: Pick<AgentDeps, "documents" | "bucket">, key: string): Promise<string | undefined> {
  try {
    return new TextDecoder().decode(await deps.documents.get(deps.bucket, key));
  } catch (err) {
    if (err instanceof DocumentError) return undefined;
    throw err;
  }
}

/**
 * One document, many POs: Ingest of a document that holds several purchase orders (an X12
 * interchange with several 850s, a CSV with several PO numbers, an email with several PO
 * attachments) opens a parent run and starts one execution of the same state machine per PO.
 *
 * - The parent run id is the document's run id (customer + content hash); child `n` is
 *   `<parentRunId>-p<n>` and is also the child execution's name, so a redelivered or repeated
 *   Ingest starts nothing new (`ExecutionAlreadyExists`, and put-once run records).
 * - A child execution is recognised by its name: Ingest of an execution called
 *   `<runIdOfTheseBytes>-p<n>` opens child run n. Only the state machine itself can start
 *   executions (IAM: Ingest may call `states:StartExecution` on its own state machine only).
 * - The child's run record carries `document.position`: its extract tool reads only that PO
 *   (readDocumentAt). Each child has its own turns, tool calls, approvals and outcome.
 * - The parent stays `running` (listing its children) until every child has an outcome; the last
 *   child to settle writes the children's outcomes on the parent and sets it `split`
 *   (fanout-settle.ts, called from Finalize and RecordFailure).
 */
import type { SFNClient } from "@aws-sdk/client-sfn";
import { DocumentError } from "../errors.js";
import { sha256 } from "../ledger/ledger.js";
import { ZERO_COUNTERS } from "../ledger/records.js";
import { detect } from "../po/detect.js";
import { parseOptionsFor, readDocumentAll } from "../po/parse.js";
import { noopTelemetry } from "../telemetry.js";
import { type AgentDeps, runIdFor } from "./deps.js";
import { childRunId } from "./fanout-settle.js";
import { documentRefOf, type IngestInput, ingest } from "./ingest.js";

export { childRunId, settleParent } from "./fanout-settle.js";

/** Starts one execution of the state machine; an execution of that name that already exists is success. */
export type StartChild = (req: { stateMachineArn: string; name: string; input: string }) => Promise<void>;

export interface FanoutDeps extends AgentDeps {
  /** Without it (or without `stateMachineArn` in the input) a multi-PO document is one run, refused by extract. */
  startChild?: StartChild;
}

export interface FanoutIngestInput extends IngestInput {
  /** The running state machine (`$$.StateMachine.Id`): children are executions of the same machine. */
  stateMachineArn?: string;
}

export type IngestStatus = "new" | "resume" | "duplicate" | "split";

/** `StartExecution` through the Step Functions API (AWS, or the local engine's emulation of it). */
export function sfnChildStarter(sfn: Pick<SFNClient, "send"> | (() => Promise<Pick<SFNClient, "send">>)): StartChild {
  return async ({ stateMachineArn, name, input }) => {
    // Loaded on first use: a one-PO document (most Ingests) never pays for the SFN client.
    const { StartExecutionCommand } = await import("@aws-sdk/client-sfn");
    const client = typeof sfn === "function" ? await sfn() : sfn;
    try {
      await client.send(new StartExecutionCommand({ stateMachineArn, name, input }));
    } catch (err) {
      if ((err as { name?: string }).name === "ExecutionAlreadyExists") return;
      throw err;
    }
  };
}

export class FanoutError extends DocumentError {
  override readonly name: string = "FanoutError";
}

/**
 * Ingest with fan-out: a child execution opens its child run; a document with several POs opens
 * the parent run and starts the children; anything else is the one-run Ingest of core.ts.
 */
export async function ingestDocument(
  deps: FanoutDeps,
  input: FanoutIngestInput,
): Promise<{ runId: string; status: IngestStatus }> {
  const bytes = await deps.documents.get(input.bucket, input.key, input.versionId);
  const digest = sha256(bytes);
  const parentRunId = runIdFor(deps.customer.name, digest);
  const executionName = input.executionId.split(":").pop() ?? "";
  const position = childPosition(executionName, parentRunId);
  if (position !== undefined) return openChild(deps, input, parentRunId, position);

  const existing = await deps.ledger.getRun(parentRunId);
  if (existing && !existing.children) return ingest(deps, input);
  const { startChild, ...rest } = deps;
  const arn = input.stateMachineArn;
  if (!startChild || !arn) return ingest(rest, input);

  let children = existing?.children;
  if (!children) {
    const pos = await countPos(deps, bytes, input.key);
    if (pos.length <= 1) return ingest(rest, input);
    children = pos.map((p) => ({
      runId: childRunId(parentRunId, p.position),
      position: p.position,
      poNumber: p.poNumber,
    }));
  }
  const { run, created } = await deps.ledger.openRun({
    runId: parentRunId,
    customer: deps.customer.name,
    document: documentRefOf(input, digest, bytes),
    executionId: input.executionId,
    status: "running",
    reason: `the document holds ${children.length} purchase orders: one child run each`,
    turn: 0,
    counters: { ...ZERO_COUNTERS },
    children,
  });
  if (!created && run.executionId !== input.executionId) {
    await deps.ledger.audit(parentRunId, "system", "run.duplicate", { key: input.key, executionId: input.executionId });
    return { runId: parentRunId, status: "duplicate" };
  }
  if (created) {
    await deps.ledger.audit(parentRunId, "system", "run.opened", {
      key: input.key,
      sha256: digest,
      executionId: input.executionId,
    });
    await deps.ledger.audit(parentRunId, "system", "run.split", {
      children: children.map((c) => ({ runId: c.runId, position: c.position, poNumber: c.poNumber })),
    });
  }
  // Started on every attempt of this execution (a retried Ingest): existing children are no-ops.
  const event = {
    source: "po-agent.fanout",
    "detail-type": "Child run",
    detail: { bucket: { name: input.bucket }, object: { key: input.key, "version-id": input.versionId ?? "" } },
  };
  await Promise.all(
    (run.children ?? children).map((c) =>
      startChild({
        stateMachineArn: arn,
        name: c.runId,
        input: JSON.stringify({ ...event, parentRunId, position: c.position }),
      }),
    ),
  );
  return { runId: parentRunId, status: "split" };
}

/** `n` when the execution is named `<parentRunId>-p<n>`. */
function childPosition(executionName: string, parentRunId: string): number | undefined {
  const prefix = `${parentRunId}-p`;
  if (!executionName.startsWith(prefix)) return undefined;
  const rest = executionName.slice(prefix.length);
  return /^[1-9]\d{0,4}$/.test(rest) ? Number(rest) : undefined;
}

/** The POs of the document; a document no parser reads is one run (its extract says why). */
async function countPos(
  deps: AgentDeps,
  bytes: Uint8Array,
  key: string,
): Promise<{ position: number; poNumber: string }[]> {
  try {
    // Never a refusal here: a document Ingest cannot count still gets its run, and extract says why.
    const kind = detect(bytes).kind;
    if (kind === "pdf" || kind === "image") return [];
    const all = await readDocumentAll(bytes, key.split("/").pop() ?? key, parseOptionsFor(deps.customer));
    return all.map((p) => ({ position: p.position, poNumber: p.po.poNumber }));
  } catch {
    return [];
  }
}

async function openChild(
  deps: AgentDeps,
  input: IngestInput,
  parentRunId: string,
  position: number,
): Promise<{ runId: string; status: IngestStatus }> {
  const parent = await deps.ledger.getRun(parentRunId);
  const entry = parent?.children?.find((c) => c.position === position);
  if (!parent || !entry) {
    throw new FanoutError(`execution for PO ${position} of run ${parentRunId}, which has no such child run`);
  }
  const runId = entry.runId;
  const { run, created } = await deps.ledger.openRun({
    runId,
    customer: deps.customer.name,
    document: { ...parent.document, position },
    executionId: input.executionId,
    status: "running",
    turn: 0,
    counters: { ...ZERO_COUNTERS },
    parentRunId,
    modelProvider: deps.model?.client.provider,
    modelId: deps.model?.modelId,
  });
  if (created) {
    (deps.telemetry ?? noopTelemetry).runStarted({ runId, customer: deps.customer.name });
    await deps.ledger.audit(runId, "system", "run.opened", {
      key: parent.document.key,
      sha256: parent.document.sha256,
      position,
      parentRunId,
      executionId: input.executionId,
    });
    for (const problem of (deps.mcp ? await deps.mcp() : { problems: [] }).problems) {
      await deps.ledger.audit(runId, "system", "mcp.problem", { problem });
    }
    return { runId, status: "new" };
  }
  if (run.executionId === input.executionId) return { runId, status: "resume" };
  await deps.ledger.audit(runId, "system", "run.duplicate", { key: input.key, executionId: input.executionId });
  return { runId, status: "duplicate" };
}

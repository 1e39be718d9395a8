/** Ingest: the document's bytes become a run (opened, resumed, or a duplicate). */
import { sha256 } from "../ledger/ledger.js";
import type { DocumentRef } from "../ledger/records.js";
import { ZERO_COUNTERS } from "../ledger/records.js";
import { type AgentDeps, mcpOf, runIdFor, telemetryOf } from "./deps.js";

export interface IngestInput {
  bucket: string;
  key: string;
  /** The object version the event announced: another upload under the same key cannot swap the bytes. */
  versionId?: string;
  executionId: string;
}

/** The run's pointer to its document: the uploaded object's version and the hash of its bytes. */
export function documentRefOf(input: IngestInput, digest: string, bytes: Uint8Array): DocumentRef {
  return { bucket: input.bucket, key: input.key, versionId: input.versionId, sha256: digest, size: bytes.byteLength };
}

/**
 * Loads the document, hashes it and opens the run. The same execution resumes its run; another
 * execution for the same bytes (a redelivered event, a second upload) is a duplicate.
 */
export async function ingest(
  deps: AgentDeps,
  input: IngestInput,
): Promise<{ runId: string; status: "new" | "resume" | "duplicate" }> {
  const bytes = await deps.documents.get(input.bucket, input.key, input.versionId);
  const digest = sha256(bytes);
  const runId = runIdFor(deps.customer.name, digest);
  const { run, created } = await deps.ledger.openRun(
    {
      runId,
      customer: deps.customer.name,
      document: documentRefOf(input, digest, bytes),
      executionId: input.executionId,
      status: "running",
      turn: 0,
      counters: { ...ZERO_COUNTERS },
      modelProvider: deps.model?.client.provider,
      modelId: deps.model?.modelId,
    },
    [
      {
        actor: "system",
        action: "run.opened",
        detail: { key: input.key, sha256: digest, executionId: input.executionId },
      },
    ],
  );
  if (created) {
    telemetryOf(deps).runStarted({ runId, customer: deps.customer.name });
    // Mounted at run start: a server that is down is in the audit log from the first line on.
    for (const problem of (await mcpOf(deps)).problems) {
      await deps.ledger.audit(runId, "system", "mcp.problem", { problem });
    }
    return { runId, status: "new" };
  }
  if (run.executionId === input.executionId) return { runId, status: "resume" };
  await deps.ledger.audit(runId, "system", "run.duplicate", { key: input.key, executionId: input.executionId });
  return { runId, status: "duplicate" };
}

/** An operator's retry of a failed run: a new execution that replays the ledger. */
import type { AgentDeps } from "./deps.js";

export class RetryRefusedError extends Error {
  override readonly name: string = "RetryRefusedError";
}

/**
 * An operator retries a failed run: the run goes back to `running` under a new execution name,
 * and that execution replays every stored turn and tool result from the ledger (nothing paid or
 * written twice), picking up where the run failed. Audited. A re-upload of the same bytes is still
 * a duplicate: only the execution named here resumes the run. The caller starts the execution
 * (`po-agent retry` locally; in AWS `aws stepfunctions start-execution --name <executionName>` with
 * the run's original input).
 */
export async function retryRun(
  deps: Pick<AgentDeps, "ledger">,
  input: { runId: string; operator: string },
): Promise<{
  runId: string;
  executionName: string;
  executionId: string;
  turnsReused: number;
  toolResultsReused: number;
}> {
  const run = await deps.ledger.getRun(input.runId);
  if (!run) throw new RetryRefusedError(`no run ${input.runId}`);
  if (run.status !== "failed")
    throw new RetryRefusedError(`run ${run.runId} is ${run.status}; only a failed run can be retried`);
  if (!run.document.sha256) {
    throw new RetryRefusedError(`run ${run.runId} failed before its document was read; upload the document again`);
  }
  const audit = await deps.ledger.getAudit(run.runId);
  const attempt = audit.filter((a) => a.action === "run.retried").length + 1;
  const executionName = `${run.runId}-retry-${attempt}`.slice(0, 80);
  const executionId = run.executionId.includes(":execution:")
    ? `${run.executionId.slice(0, run.executionId.lastIndexOf(":") + 1)}${executionName}`
    : executionName;
  const [turns, tools] = await Promise.all([deps.ledger.getTurns(run.runId), deps.ledger.getToolCalls(run.runId)]);
  const moved = await deps.ledger.updateRun(
    run.runId,
    {
      status: "running",
      executionId,
      reason: `retried by ${input.operator} after: ${run.reason ?? "failure"}`.slice(0, 1000),
    },
    { onlyIfStatusIn: ["failed"] },
  );
  if (!moved) throw new RetryRefusedError(`run ${run.runId} changed while retrying; look again`);
  await deps.ledger.audit(run.runId, `operator:${input.operator}`, "run.retried", {
    attempt,
    previousReason: run.reason ?? "",
    previousExecutionId: run.executionId,
    executionId,
    turnsReused: turns.length,
    toolResultsReused: tools.length,
  });
  return { runId: run.runId, executionName, executionId, turnsReused: turns.length, toolResultsReused: tools.length };
}

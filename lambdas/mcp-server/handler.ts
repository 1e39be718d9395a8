import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { runIdFor } from "../shared/agent/deps.js";
import { retryRun } from "../shared/agent/retry.js";
import { instrumentedUrl } from "../shared/aws/handler.js";
import { agentDeps, clients, customer, env, secretValue, sfnClient } from "../shared/aws/runtime.js";
import { sha256 } from "../shared/ledger/ledger.js";
import { handleFunctionUrlEvent } from "../shared/mcp/http.js";
import type { PoAgentBackend } from "../shared/mcp/server.js";
import { logger } from "../shared/observability.js";

/** Secret holding the bearer token; unset when the Function URL uses AWS_IAM auth instead. */
const tokenSecretArn = process.env.MCP_TOKEN_SECRET_ARN;
/** The stack's state machine: retry_run starts the retried run's new execution on it. */
const stateMachineArn = process.env.STATE_MACHINE_ARN;

// Each request is one MCP message (initialize, tools/list, one tool call): S3 serves submit_document
// only and Step Functions approve, reject and retry_run, so each client loads on the first request
// that needs it.
const backend: PoAgentBackend = {
  ledger: agentDeps().ledger,
  customers: [customer],
  // decide() gets the client when a decision wakes an execution (ApprovalDeps.sfn: OnUse).
  decideDeps: () => ({ ledger: agentDeps().ledger, sfn: sfnClient }),
  async submit(name, fileName, body) {
    // The same object-created path as any upload: EventBridge starts the execution.
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await (await clients.s3()).send(
      new PutObjectCommand({ Bucket: env.documentBucket, Key: `incoming/${fileName}`, Body: body }),
    );
    return runIdFor(name, sha256(body));
  },
  ...(stateMachineArn
    ? { retry: (runId: string, operator: string) => retryExecution(stateMachineArn, runId, operator) }
    : {}),
};

/**
 * retry_run: the run goes back to running under a new execution name (core retryRun, audited with
 * the caller's principal), then that execution starts with the input an upload's event gives
 * Ingest; it replays the stored turns and tool results from the ledger. If the start fails, the
 * run is failed again with the reason, so it can be retried once more.
 */
async function retryExecution(machineArn: string, runId: string, operator: string) {
  const ledger = agentDeps().ledger;
  const retried = await retryRun({ ledger }, { runId, operator });
  const run = await ledger.requireRun(runId);
  const { bucket, key, size, versionId } = run.document;
  const input = {
    version: "0",
    source: "po-agent.retry",
    "detail-type": "Retried run",
    detail: { bucket: { name: bucket }, object: { key, size, "version-id": versionId ?? "" } },
  };
  const { StartExecutionCommand } = await import("@aws-sdk/client-sfn");
  try {
    await (await sfnClient()).send(
      new StartExecutionCommand({
        stateMachineArn: machineArn,
        name: retried.executionName,
        input: JSON.stringify(input),
      }),
    );
  } catch (err) {
    const reason = `retry could not start its execution: ${err instanceof Error ? err.message : String(err)}`;
    await ledger.updateRun(runId, { status: "failed", reason: reason.slice(0, 1000) }, { onlyIfStatusIn: ["running"] });
    throw new Error(reason);
  }
  return retried;
}

/**
 * po-agent's MCP endpoint on a Function URL: stateless Streamable HTTP, authenticated by IAM
 * (the URL's auth type) or by a bearer token kept in Secrets Manager. A tool's failure is an MCP result;
 * what throws (the token cannot be read) is logged, traced and rethrown, a function error as before.
 */
export const handler = instrumentedUrl(
  "mcp-server",
  async (event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> => {
    // Present when the Function URL's auth type is AWS_IAM (the event type leaves it out).
    const iam = (event.requestContext as { authorizer?: { iam?: { userArn?: string } } }).authorizer?.iam;
    const principal = iam?.userArn;
    const result = await handleFunctionUrlEvent(event, backend, {
      bearerToken: async () => (tokenSecretArn ? (await secretValue(tokenSecretArn)).trim() : undefined),
      ...(principal ? { principal } : {}),
    });
    logger.info("mcp request", { status: result.statusCode, method: event.requestContext.http.method });
    return result;
  },
);

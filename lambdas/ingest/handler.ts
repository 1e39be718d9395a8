import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod/v3";
import { ingestDocument, sfnChildStarter } from "../shared/agent/fanout.js";
import { storedKeyOf } from "../shared/aws/documents.js";
import { instrumented } from "../shared/aws/handler.js";
import { withMcp } from "../shared/aws/mcp-deps.js";
import { agentDeps, clients, sfnClient } from "../shared/aws/runtime.js";

// Every call reads or writes a document: the client is built at init,
// which every cold start pays anyway.
clients.s3.now(S3Client);

const Input = z.object({
  bucket: z.string(),
  key: z.string(),
  versionId: z.string().optional(),
  executionId: z.string(),
  /** `$$.StateMachine.Id`: a multi-PO document starts one execution of this machine per PO. */
  stateMachineArn: z.string().optional(),
});

// Run start: the customer's MCP servers are listed once here, so a server that is down is audited from the start.
export const handler = instrumented("ingest", Input, async (input) => {
  // The event's key may arrive URL-encoded (spaces, non-ASCII); the run records the key as stored.
  const key = await storedKeyOf(clients.s3, input.bucket, input.key, input.versionId);
  return withMcp(undefined, (mcp) =>
    ingestDocument({ ...agentDeps(), mcp, startChild: sfnChildStarter(sfnClient) }, { ...input, key }),
  );
});

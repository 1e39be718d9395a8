import { S3Client } from "@aws-sdk/client-s3";
import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { modelFor } from "../shared/aws/model.js";
import { agentDeps, clients } from "../shared/aws/runtime.js";
import { DOCUMENT_TOOLS } from "../shared/tools/document.js";
import { laneCallInput } from "../shared/tools/lane.js";

// Every call reads or writes a document: the client is built at init,
// which every cold start pays anyway.
clients.s3.now(S3Client);

const Input = laneCallInput("document");

// The model client lets extract read scans and images with Claude (document blocks); on the offline
// reference model such a document fails with that reason, as it does locally.
export const handler = instrumented("tool.read", Input, async (input) => {
  const { client, modelId } = await modelFor();
  return runTool({ ...agentDeps({ client, modelId }), tools: DOCUMENT_TOOLS }, input);
});

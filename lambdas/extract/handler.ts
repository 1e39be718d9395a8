import { S3Client } from "@aws-sdk/client-s3";
import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, clients } from "../shared/aws/runtime.js";
import { DOCUMENT_TOOLS } from "../shared/tools/document.js";
import { laneCallInput } from "../shared/tools/lane.js";

// Every call reads or writes a document: the client is built at init,
// which every cold start pays anyway.
clients.s3.now(S3Client);

const Input = laneCallInput("document");

/**
 * The model client, for a scan or an image only (Claude reads it as a document block; on the offline
 * reference model such a document fails with that reason, as it does locally). A document with text,
 * and read_document and fetch_context, never need it: the model key (Secrets Manager) is read, and the
 * model module loaded, on the first call that does.
 */
const documentModel = async () => {
  const { modelFor } = await import("../shared/aws/model.js");
  const { client, modelId } = await modelFor();
  return { client, modelId };
};

export const handler = instrumented("tool.read", Input, (input) =>
  runTool({ ...agentDeps(), documentModel, tools: DOCUMENT_TOOLS }, input),
);

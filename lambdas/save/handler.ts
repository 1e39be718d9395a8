import { S3Client } from "@aws-sdk/client-s3";
import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, clients } from "../shared/aws/runtime.js";
import { laneCallInput } from "../shared/tools/lane.js";
import { SAVE_TOOLS } from "../shared/tools/save.js";

// Every call reads or writes a document: the client is built at init,
// which every cold start pays anyway.
clients.s3.now(S3Client);

const Input = laneCallInput("save");

export const handler = instrumented("tool.save", Input, (input) =>
  runTool({ ...agentDeps(), tools: SAVE_TOOLS }, input),
);

import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { laneCallInput } from "../shared/tools/lane.js";
import { VERSION_TOOLS } from "../shared/tools/version.js";

const Input = laneCallInput("version");

export const handler = instrumented("tool.transform", Input, (input) =>
  runTool({ ...agentDeps(), tools: VERSION_TOOLS }, input),
);

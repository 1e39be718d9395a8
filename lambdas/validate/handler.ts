import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { CHECK_TOOLS } from "../shared/tools/check.js";
import { laneCallInput } from "../shared/tools/lane.js";

const Input = laneCallInput("check");

export const handler = instrumented("tool.validate", Input, (input) =>
  runTool({ ...agentDeps(), tools: CHECK_TOOLS }, input),
);

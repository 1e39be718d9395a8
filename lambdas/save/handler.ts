import { runTool } from "../shared/agent/tool-run.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";
import { laneCallInput } from "../shared/tools/lane.js";
import { SAVE_TOOLS } from "../shared/tools/save.js";

const Input = laneCallInput("save");

export const handler = instrumented("tool.save", Input, (input) =>
  runTool({ ...agentDeps(), tools: SAVE_TOOLS }, input),
);

import { laneTools } from "./lane.js";

/** What the Validate Lambda runs: the check lane, every file of tools/check/. */
export const CHECK_TOOLS = laneTools("check", (name) => import(`./check/${name}.ts`));

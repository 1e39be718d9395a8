import { laneTools } from "./lane.js";

/** What the Save Lambda runs: the save lane (the one built-in write), every file of tools/save/. */
export const SAVE_TOOLS = laneTools("save", (name) => import(`./save/${name}.ts`));

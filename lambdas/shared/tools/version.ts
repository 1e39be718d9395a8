import { laneTools } from "./lane.js";

/** What the Transform Lambda runs: the version lane (new PO versions, no write outside the ledger), every file of tools/version/. */
export const VERSION_TOOLS = laneTools("version", (name) => import(`./version/${name}.ts`));

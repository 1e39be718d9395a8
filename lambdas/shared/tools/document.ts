import { laneTools } from "./lane.js";

/** What the Extract Lambda runs: the document lane, every file of tools/document/. */
export const DOCUMENT_TOOLS = laneTools("document", (name) => import(`./document/${name}.ts`));

/**
 * The registry of built-in tools: one line per tool, naming the file that declares it
 * (`tools/<lane>/<name>.ts`, exporting `spec` and `run`; tools/define.ts says what may go in one).
 * Only the specs are taken here, so whoever reads this list (the catalogue, the orchestrator, the
 * CDK app) loads no tool's implementation; each lane's Lambda loads its own folder's files (tools/lane.ts).
 * Kept sorted by path (so by lane); the model is shown them by lane (catalogue BUILT_IN_TOOL_NAMES).
 */

export { spec as escalate_to_human } from "./approval/escalate_to_human.js";
export { spec as validate } from "./check/validate.js";
export { spec as extract } from "./document/extract.js";
export { spec as fetch_context } from "./document/fetch_context.js";
export { spec as read_document } from "./document/read_document.js";
export { spec as save } from "./save/save.js";
export { spec as amend } from "./version/amend.js";
export { spec as draft_po } from "./version/draft_po.js";
export { spec as transform } from "./version/transform.js";

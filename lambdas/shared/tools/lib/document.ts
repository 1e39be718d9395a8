/**
 * The code the document lane's tools run with: the lane's module (tools/document.ts) imports it and hands it
 * to each tool's `run` as its third argument, so a tool file imports it as a type only and a bundle
 * that reads only the specs (the orchestrator, every reader of the catalogue) never reaches it.
 * A tool that needs more from outside tools/ gets it re-exported here.
 */
export { poOf } from "../../agent/artifacts.js";
export { DEFAULTS } from "../../constants.js";
export { prepareContext } from "../../context/prepare.js";
export { fetchContextRun } from "../../context/tool.js";
export { DocumentError } from "../../errors.js";
export { buildExtractionContent, readExtractionAnswer } from "../../po/claude-extract.js";
export { detect } from "../../po/detect.js";
export { parseOptionsFor, readDocument, readDocumentAt } from "../../po/parse.js";
export { error, forModel, json, refOf, storeDocumentVersion } from "../common.js";
export { hasReadableText, PAGE_CHARS, rawParts } from "../raw-text.js";

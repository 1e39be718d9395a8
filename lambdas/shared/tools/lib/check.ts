/**
 * The code the check lane's tools run with: the lane's module (tools/check.ts) imports it and hands it
 * to each tool's `run` as its third argument, so a tool file imports it as a type only and a bundle
 * that reads only the specs (the orchestrator, every reader of the catalogue) never reaches it.
 * A tool that needs more from outside tools/ gets it re-exported here.
 */
export { validatePo } from "../../po/validate.js";
export { json, versionOf } from "../common.js";

export { Bm25Index, terms } from "./bm25.js";
export { extractFacts, findThreadPo, parseItems, poKey, resolveFacts } from "./facts.js";
export { messageAlias, renderMessage, renderThread, splitThread } from "./passages.js";
export {
  citeMessages,
  DEFAULT_CONTEXT_TOKENS,
  lookupContext,
  type PrepareContextOptions,
  prepareContext,
} from "./prepare.js";
export { createFetchContextTool, FETCH_CONTEXT_TOOL, type PreparedContextLoader } from "./tool.js";
export * from "./types.js";

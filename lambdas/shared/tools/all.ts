import { CHECK_TOOLS } from "./check.js";
import { DOCUMENT_TOOLS } from "./document.js";
import { SAVE_TOOLS } from "./save.js";
import type { Tool } from "./types.js";
import { VERSION_TOOLS } from "./version.js";

/**
 * Every built-in tool's implementation, for the runtimes that run all lanes in one process (the
 * local stack, tests). A Lambda imports only its own lane's module.
 */
export const ALL_TOOLS: readonly Tool[] = [...DOCUMENT_TOOLS, ...CHECK_TOOLS, ...VERSION_TOOLS, ...SAVE_TOOLS];

import { SPECS } from "../tools/registry.js";
import type { Tool, ToolContext, ToolOutput } from "../tools/types.js";
import { lookupContext } from "./prepare.js";
import type { PreparedContext } from "./types.js";

export const FETCH_CONTEXT_TOOL = "fetch_context";

/** Where the tool finds this run's prepared context (the run record, S3, or memory in tests). */
export type PreparedContextLoader = (ctx: ToolContext) => Promise<PreparedContext | undefined>;

/**
 * `fetch_context`: the model reads in full any passage the prepared context left out or cut,
 * by the id the context cites (`m14:L3-7`, `m2/a1:L1-12`), a whole attachment (`m2/a1`) or a
 * whole message (`m14`). A read: the guard lets it through without approval.
 */
export function createFetchContextTool(load: PreparedContextLoader): Tool<{ id: string }> {
  return { ...SPECS.fetch_context, run: fetchContextRun(load) };
}

/** The code of `fetch_context` (its spec and run: tools/document/fetch_context.ts). */
export function fetchContextRun(
  load: PreparedContextLoader,
): (input: { id: string }, ctx: ToolContext) => Promise<ToolOutput> {
  return async ({ id }, ctx) => {
    const context = await load(ctx);
    if (!context) {
      // Not "no thread": an email whose attachment could not be read has one, but extract prepared nothing.
      return {
        content:
          "no prepared thread context for this run (extract prepares it only when it reads a PO); read_document shows the raw document, an email's body and attachments included",
        isError: true,
      };
    }
    const found = lookupContext(context, id);
    if (!found) {
      const count = context.messages.length;
      return {
        content: `unknown id "${id}": use a passage id cited in the context (like m3:L1-4), an attachment (m1/a1) or a message m1…m${count}`,
        isError: true,
      };
    }
    const m = found.message;
    return {
      content: JSON.stringify({
        id: found.id,
        message: m ? { alias: m.alias, id: m.id, from: m.from, date: m.date, subject: m.subject } : undefined,
        passages: found.passages.map((p) => ({ id: p.id, kind: p.kind, attachment: p.attachment, text: p.text })),
      }),
    };
  };
}

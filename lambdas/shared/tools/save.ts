import { error, implement, json, versionOf } from "./common.js";
import type { Tool } from "./types.js";

/** The save lane (the Save Lambda): the one built-in write. */

const save = implement("save", "save", async (ref, ctx) => {
  const got = await versionOf(ctx, ref);
  if ("error" in got) return got.error;
  if (got.artifact.validation?.errors !== 0) {
    return error(`save: version ${ref.version} has not passed validate without errors`);
  }
  const { created } = await ctx.saveOrder({
    poNumber: got.po.poNumber,
    po: got.po,
    idempotencyKey: `${ctx.runId}`,
  });
  return json({ saved: true, poNumber: got.po.poNumber, ...ref, replayed: !created });
});

/** What the Save Lambda runs. */
export const SAVE_TOOLS: readonly Tool[] = [save] as Tool[];

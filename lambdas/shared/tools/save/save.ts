import { type RunOf, toolSpec } from "../define.js";
import { RefInput } from "../schemas.js";

export const spec = toolSpec({
  name: "save",
  lane: "save",
  effect: "write",
  writes: ["processed"],
  description: "Write a validated version; the policy on it decides if a human signs first.",
  input: RefInput,
});

/** The one built-in write: the saved order, once per run (a replay finds it). */
export const run: RunOf<typeof spec> = async (ref, ctx) => {
  const { error, json, versionOf } = await import("../common.js");
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
};

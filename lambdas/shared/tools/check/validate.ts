import { type RunOf, toolSpec } from "../define.js";
import { RefInput } from "../schemas.js";

export const spec = toolSpec({
  name: "validate",
  lane: "check",
  effect: "read",
  description: "Check a version (arithmetic, fields, duplicates, supplier); only one without errors can be saved.",
  input: RefInput,
});

/** Findings on one stored version; the version is marked validated with its error count (save needs 0). */
export const run: RunOf<typeof spec> = async (ref, ctx) => {
  const [{ validatePo }, { json, versionOf }] = await Promise.all([
    import("../../po/validate.js"),
    import("../common.js"),
  ]);
  const got = await versionOf(ctx, ref);
  if ("error" in got) return got.error;
  const existing = await ctx.findSavedOrder(got.po.poNumber);
  const findings = validatePo(got.po, ctx.customer, {
    existingRunForPoNumber: existing && existing.runId !== ctx.runId ? existing.runId : undefined,
  });
  const errors = findings.filter((f) => f.severity === "error").length;
  await ctx.artifacts.markValidated(ref, {
    errors,
    warnings: findings.filter((f) => f.severity === "warning").length,
  });
  return json({ ...ref, findings, errors });
};

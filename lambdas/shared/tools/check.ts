import { validatePo } from "../po/validate.js";
import { implement, json, versionOf } from "./common.js";
import type { Tool } from "./types.js";

/** The check lane (the Validate Lambda). */

const validate = implement("check", "validate", async (ref, ctx) => {
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
});

/** What the Validate Lambda runs. */
export const CHECK_TOOLS: readonly Tool[] = [validate] as Tool[];

import { z } from "zod/v3";
import { AmendmentChange } from "../../ledger/records.js";
import { type RunOf, toolSpec } from "../define.js";
import type * as Lib from "../lib/version.js";
import { Ref } from "../schemas.js";

export const spec = toolSpec({
  name: "amend",
  lane: "version",
  effect: "read",
  description:
    "Change a version by RFC 6901 paths (/lines/0/unit; value or remove:true; /lines/- appends): a new version.",
  input: z
    .object({
      ...Ref,
      reason: z.string().min(1).max(500),
      changes: z.array(AmendmentChange).min(1).max(50),
    })
    .strict(),
});

/** A diff against a stored version, with a reason: a new version, flagged for a human by what it touches. */
export const run: RunOf<typeof spec, typeof Lib> = async ({ reason, changes, ...ref }, ctx, lib) => {
  const { applyChanges, classesOf, error, json, needsHumanOf, poHash, provenanceAfter, refOf, versionOf } = lib;
  const got = await versionOf(ctx, ref);
  if ("error" in got) return got.error;
  const applied = applyChanges(got.po, changes);
  if ("error" in applied) return error(`amend: ${applied.error}`);
  const classes = classesOf(got.po, applied.po);
  const stored = await ctx.artifacts.put({
    artifactId: ref.artifactId,
    documentSha256: got.artifact.documentSha256,
    origin: "amendment",
    parentVersion: ref.version,
    po: applied.po as unknown as Record<string, unknown>,
    poSha256: poHash(applied.po),
    provenance: provenanceAfter(got.artifact.provenance, got.po, applied.po, `amendment v${ref.version}`),
    amendment: { reason, changes, classes },
    needsHuman: needsHumanOf(ctx.customer, got.artifact.needsHuman, classes),
  });
  return json({ ...refOf(stored), classes, needsHuman: stored.needsHuman });
};

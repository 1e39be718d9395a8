import { type RunOf, toolSpec } from "../define.js";
import { RefInput } from "../schemas.js";

export const spec = toolSpec({
  name: "transform",
  lane: "version",
  effect: "read",
  description: "Normalize a version (Rec 20 units, ISO dates); new version only if changed.",
  input: RefInput,
});

export const run: RunOf<typeof spec> = async (ref, ctx) => {
  const [{ changedLeaves, poHash, provenanceAfter }, { transformPo }, { json, refOf, versionOf }] = await Promise.all([
    import("../../agent/artifacts.js"),
    import("../../po/transform.js"),
    import("../common.js"),
  ]);
  const got = await versionOf(ctx, ref);
  if ("error" in got) return got.error;
  const out = transformPo(got.po);
  const changed = changedLeaves(got.po, out).map((c) => c.path);
  if (changed.length === 0) return json({ ...ref, changed: [] });
  const stored = await ctx.artifacts.put({
    artifactId: ref.artifactId,
    documentSha256: got.artifact.documentSha256,
    origin: "transform",
    parentVersion: ref.version,
    po: out as unknown as Record<string, unknown>,
    poSha256: poHash(out),
    provenance: provenanceAfter(got.artifact.provenance, got.po, out, "transform"),
    needsHuman: got.artifact.needsHuman,
  });
  return json({ ...refOf(stored), changed });
};

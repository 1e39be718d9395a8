import {
  applyChanges,
  artifactIdFor,
  changedLeaves,
  classesOf,
  needsHumanOf,
  poHash,
  poOf,
  provenanceAfter,
} from "../agent/artifacts.js";
import { NormalizedPo } from "../po/model.js";
import { transformPo } from "../po/transform.js";
import { error, implement, json, refOf, versionOf } from "./common.js";
import type { Tool } from "./types.js";

/** The version lane (the Transform Lambda): every tool here makes a new PO version, none writes outside the ledger. */

const transform = implement("version", "transform", async (ref, ctx) => {
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
});

const amend = implement("version", "amend", async ({ reason, changes, ...ref }, ctx) => {
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
});

const draft = implement("version", "draft_po", async ({ reason, po: built }, ctx) => {
  const name = ctx.document.key.split("/").pop() ?? ctx.document.key;
  const po = NormalizedPo.parse({
    ...built,
    source: { format: "json", document: name, method: "model", lowConfidence: ["(whole PO drafted by the model)"] },
  });
  const all = await ctx.artifacts.list();
  const doc = all.find((a) => a.origin === "document");
  const classes = doc ? classesOf(poOf(doc), po) : [];
  const stored = await ctx.artifacts.put({
    artifactId: artifactIdFor(ctx.runId, ctx.document.sha256),
    documentSha256: ctx.document.sha256,
    origin: "model-draft",
    po: po as unknown as Record<string, unknown>,
    poSha256: poHash(po),
    provenance: [{ field: "/", from: `model draft from raw text: ${reason.slice(0, 200)}` }],
    amendment: { reason, changes: [], classes: [...classes, "model-draft"] },
    needsHuman: needsHumanOf(ctx.customer, [], [...classes, "model-draft"]),
  });
  return json({ ...refOf(stored), needsHuman: stored.needsHuman });
});

/** What the Transform Lambda runs. */
export const VERSION_TOOLS: readonly Tool[] = [transform, amend, draft] as Tool[];

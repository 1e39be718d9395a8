import { z } from "zod/v3";
import { NormalizedPo } from "../../po/model.js";
import { type RunOf, toolSpec } from "../define.js";
import type * as Lib from "../lib/version.js";

export const spec = toolSpec({
  name: "draft_po",
  lane: "version",
  effect: "read",
  description: "A PO you built from read_document's text, as a new version; a human confirms it.",
  input: z
    .object({ reason: z.string().min(1).max(500), po: NormalizedPo.omit({ source: true, totals: true }) })
    .strict(),
});

/** A whole PO the model built from the raw text: a new version that always needs a human. */
export const run: RunOf<typeof spec, typeof Lib> = async ({ reason, po: built }, ctx, lib) => {
  const { artifactIdFor, classesOf, json, needsHumanOf, poHash, poOf, refOf } = lib;
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
};

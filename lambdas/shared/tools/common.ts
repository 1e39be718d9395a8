/** Helpers the built-in tools' `run` share (loaded by `run`, never by a spec). */
import { ArtifactError, artifactIdFor, findVersion, poHash, poOf, provenanceAfter } from "../agent/artifacts.js";
import type { AmendmentClass, ArtifactRecord } from "../ledger/records.js";
import type { NormalizedPo } from "../po/model.js";
import { transformPo } from "../po/transform.js";
import type { RefArgs } from "./schemas.js";
import type { ToolContext, ToolOutput } from "./types.js";

export const json = (value: unknown): ToolOutput => ({ content: JSON.stringify(value) });
export const error = (message: string): ToolOutput => ({ content: message, isError: true });

export const refOf = (a: ArtifactRecord): RefArgs => ({ artifactId: a.artifactId, version: a.version });

/** The PO as the model reads it: field provenance stays in the ledger (it is long and not the model's to use). */
export function forModel(
  po: NormalizedPo,
): Omit<NormalizedPo, "source"> & { source: Omit<NormalizedPo["source"], "fields"> } {
  const { fields: _fields, ...source } = po.source;
  return { ...po, source };
}

/** Version 1: what the parser (or, flagged, a model) read from the document, normalized by code. */
export async function storeDocumentVersion(
  ctx: ToolContext,
  read: NormalizedPo,
  needsHuman: AmendmentClass[],
): Promise<ArtifactRecord> {
  const po = transformPo(read);
  const fromParser = (read.source.fields ?? []).map((f) => ({ field: f.field, from: f.from }));
  return ctx.artifacts.put({
    artifactId: artifactIdFor(ctx.runId, ctx.document.sha256),
    documentSha256: ctx.document.sha256,
    origin: "document",
    po: po as unknown as Record<string, unknown>,
    poSha256: poHash(po),
    provenance: provenanceAfter(fromParser, read, po, "transform"),
    needsHuman,
  });
}

/** The version a reference names in this run, or the tool error the model reads. */
export async function versionOf(
  ctx: ToolContext,
  ref: RefArgs,
): Promise<{ artifact: ArtifactRecord; po: NormalizedPo } | { error: ToolOutput }> {
  const all = await ctx.artifacts.list();
  const artifact = findVersion(all, ref);
  if (!artifact) return { error: error(`artifact ${ref.artifactId} has no version ${ref.version} in this run`) };
  try {
    return { artifact, po: poOf(artifact) };
  } catch (err) {
    if (err instanceof ArtifactError) return { error: error(err.message) };
    throw err;
  }
}

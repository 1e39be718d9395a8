import { artifactIdFor, poHash } from "../../lambdas/shared/agent/artifacts.js";
import type { GuardState } from "../../lambdas/shared/agent/guard.js";
import { SCHEMA_VERSION } from "../../lambdas/shared/constants.js";
import type { AmendmentClass, ArtifactRecord } from "../../lambdas/shared/ledger/records.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";

/** An artifact version as the ledger would hold it, for guard tests that need no ledger. */
export function artifactOf(
  runId: string,
  po: NormalizedPo,
  opts: {
    version?: number;
    validated?: number | false;
    needsHuman?: AmendmentClass[];
    origin?: ArtifactRecord["origin"];
  } = {},
): ArtifactRecord {
  const validated = opts.validated ?? 0;
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    artifactId: artifactIdFor(runId, "doc-sha"),
    version: opts.version ?? 1,
    documentSha256: "doc-sha",
    origin: opts.origin ?? (opts.version && opts.version > 1 ? "amendment" : "document"),
    po: po as unknown as Record<string, unknown>,
    poSha256: poHash(po),
    provenance: [],
    needsHuman: opts.needsHuman ?? [],
    ...(validated === false ? {} : { validation: { errors: validated, warnings: 0, at: "2026-11-30T00:00:00Z" } }),
    createdAt: "2026-11-30T00:00:00Z",
  };
}

export const refOf = (a: ArtifactRecord) => ({ artifactId: a.artifactId, version: a.version });

/** Guard state holding exactly these versions. */
export function stateWith(...artifacts: ArtifactRecord[]): Partial<GuardState> {
  return { artifacts, rejectedPoNumbers: new Set() };
}

/**
 * What an approver must see before a write: the difference between the PO as the document says it
 * and the version that would be saved, field by field, with the chain of versions (transform,
 * amendments with the model's reasons, drafts) that led there. Read from the ledger's artifact
 * versions, never from what the model says about them; a version whose content no longer matches
 * its hash is flagged, not shown as if it were true.
 */
import {
  changedLeaves,
  classOfChange,
  documentVersion,
  findVersion,
  latestVersion,
  poHash,
} from "../../lambdas/shared/agent/artifacts.js";
import { escapeHtml as esc } from "../../lambdas/shared/approval/render.js";
import type { ApprovalRecord, ArtifactRecord } from "../../lambdas/shared/ledger/records.js";
import { money, shortText } from "./clerk.js";

/** One row of the table: a field whose value differs between the document and the version to save. */
export interface FieldChange {
  path: string;
  document: unknown;
  saved: unknown;
  /** What the change can do to the decision (money, quantity, …); undefined = free text. */
  kind: string | undefined;
}

export interface ApprovalChanges {
  /** The version read from the document, if there is one (a model draft has none). */
  base: ArtifactRecord | undefined;
  /** The version the approved call would write. */
  target: ArtifactRecord | undefined;
  /** Versions from the document's to the target, oldest first. */
  chain: ArtifactRecord[];
  fields: FieldChange[];
  /** Versions whose content does not match their recorded hash (an edited record). */
  tampered: number[];
}

/** The diff an approval is about, computed from the run's artifact versions. */
export function changesFor(artifacts: readonly ArtifactRecord[], approval: ApprovalRecord): ApprovalChanges {
  const target = approval.artifact ? findVersion(artifacts, approval.artifact) : latestVersion(artifacts);
  const base = documentVersion(artifacts);
  const chain: ArtifactRecord[] = [];
  for (let v = target; v && chain.length < 100; ) {
    chain.unshift(v);
    const parent: number | undefined = v.parentVersion;
    v =
      parent === undefined ? undefined : artifacts.find((a) => a.artifactId === v?.artifactId && a.version === parent);
  }
  const tampered = chain.filter((a) => poHash(a.po) !== a.poSha256).map((a) => a.version);
  // The approval binds the content hash it was asked for: a target that differs is tampered too.
  if (target && approval.artifact && target.poSha256 !== approval.artifact.poSha256) tampered.push(target.version);
  const fields =
    base && target && base !== target
      ? changedLeaves(base.po, target.po)
          .filter((c) => !c.path.startsWith("/source"))
          .map((c) => ({ path: c.path, document: c.from, saved: c.to, kind: classOfChange(c.path, c.from, c.to) }))
      : [];
  return { base, target, chain, fields, tampered: [...new Set(tampered)] };
}

function show(path: string, value: unknown, currency: string): string {
  if (value === undefined) return '<span class="muted">(absent)</span>';
  if (typeof value === "number" && /Minor$/.test(path)) return esc(money(value, currency));
  if (typeof value === "string") return shortText(value, 80);
  return `<code>${esc(JSON.stringify(value).slice(0, 200))}</code>`;
}

const ORIGIN: Record<ArtifactRecord["origin"], string> = {
  document: "read from the document",
  transform: "normalized by code (units, dates)",
  amendment: "amended by the model",
  "model-draft": "drafted by the model from the raw text",
};

/** The diff as a clerk reads it: a table of changed fields and the versions behind them. */
export function renderChanges(approval: ApprovalRecord, changes: ApprovalChanges): string {
  const { base, target, chain, fields, tampered } = changes;
  const id = esc(approval.approvalId);
  if (!target) {
    // Older approvals (before artifacts): the lines recorded with the request.
    const lines = approval.diff ?? [];
    return `<div class="changes" data-changes-for="${id}">${
      lines.length
        ? `<ul>${lines.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>`
        : '<p class="muted">no PO version is attached to this request</p>'
    }</div>`;
  }
  const currency = String((target.po as { currency?: unknown }).currency ?? "USD");
  const warning = tampered.length
    ? `<p class="err" data-tampered>version(s) ${tampered.join(", ")} no longer match their recorded hash: do not approve</p>`
    : "";
  const versions = `<ol class="versions">${chain
    .map(
      (v) =>
        `<li data-version="${v.version}">v${v.version}: ${esc(ORIGIN[v.origin])}${
          v.amendment
            ? ` — “${shortText(v.amendment.reason, 160)}”${v.amendment.classes.length ? ` <span class="muted">(${esc(v.amendment.classes.join(", "))})</span>` : ""}`
            : ""
        }</li>`,
    )
    .join("")}</ol>`;
  if (!base) {
    return `<div class="changes" data-changes-for="${id}">${warning}<p><strong>No version was read from the document:</strong> the model built this PO from the raw text; check every field against the document.</p>${versions}</div>`;
  }
  const rows = fields
    .map(
      (f) =>
        `<tr data-path="${esc(f.path)}"${f.kind ? ` data-kind="${esc(f.kind)}"` : ""}><td><code>${esc(f.path)}</code></td><td class="from">${show(f.path, f.document, currency)}</td><td class="to">${show(f.path, f.saved, currency)}</td><td>${f.kind ? `<span class="err">${esc(f.kind)}</span>` : '<span class="muted">text</span>'}</td></tr>`,
    )
    .join("");
  const table = fields.length
    ? `<table class="diff"><thead><tr><th>field</th><th>in the document (v${base.version})</th><th>would be saved (v${target.version})</th><th>kind</th></tr></thead><tbody>${rows}</tbody></table>`
    : `<p class="muted" data-no-changes>what would be saved (v${target.version}) is what the document says</p>`;
  return `<div class="changes" data-changes-for="${id}">${warning}${table}${versions}</div>`;
}

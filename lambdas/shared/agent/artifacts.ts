import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import type { AmendmentChange, AmendmentClass, ArtifactRecord } from "../ledger/records.js";
import { NormalizedPo } from "../po/model.js";
import { formatMinor } from "../po/money.js";
import { normalizeUnit } from "../po/transform.js";

/**
 * The PO as an artifact: versions in the ledger, bound to the document's hash. The model refers
 * to a version by `{ artifactId, version }`; it changes one only by an amendment (a list of
 * changes with a reason), which this module applies, classifies and explains to a human.
 */

/** What the model passes to validate, transform, save and escalate: a reference, never a PO. */
export interface ArtifactRef {
  artifactId: string;
  version: number;
}

/** One artifact per run: the id is derived from the run and the document it was read from. */
export function artifactIdFor(runId: string, documentSha256: string): string {
  return `po_${sha256(`${runId}\n${documentSha256}`).slice(0, 16)}`;
}

export function poHash(po: unknown): string {
  return sha256(canonicalJson(po));
}

/** The stored PO of a version, checked against its recorded hash (an edited record fails here). */
export function poOf(artifact: ArtifactRecord): NormalizedPo {
  if (poHash(artifact.po) !== artifact.poSha256) {
    throw new ArtifactError(
      `artifact ${artifact.artifactId} version ${artifact.version} does not match its recorded hash`,
    );
  }
  return NormalizedPo.parse(artifact.po);
}

export class ArtifactError extends Error {
  override readonly name: string = "ArtifactError";
}

/** Flattens JSON to leaf paths (`/lines/0/quantity` → value). Empty arrays and objects are leaves. */
export function flatten(value: unknown, prefix = "", out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (Array.isArray(value) && value.length > 0) {
    value.forEach((v, i) => {
      flatten(v, `${prefix}/${i}`, out);
    });
  } else if (value !== null && typeof value === "object" && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== undefined) flatten(v, `${prefix}/${escapePointer(k)}`, out);
    }
  } else {
    out.set(prefix || "/", value);
  }
  return out;
}

const escapePointer = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");
const unescapePointer = (k: string) => k.replace(/~1/g, "/").replace(/~0/g, "~");

/** Leaf paths whose value differs between two POs, with both values (undefined = absent). */
export function changedLeaves(before: unknown, after: unknown): { path: string; from: unknown; to: unknown }[] {
  const a = flatten(before);
  const b = flatten(after);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths
    .filter((p) => canonicalJson(a.get(p)) !== canonicalJson(b.get(p)))
    .map((p) => ({ path: p, from: a.get(p), to: b.get(p) }));
}

/**
 * The class of one changed leaf: what it can do to the decision. `undefined` = free text (a
 * description, a note, the delivery date); a unit only counts as free when it is the code the
 * transform would map the old unit to (the "unit mapping" it claims to be).
 */
export function classOfChange(path: string, from: unknown, to: unknown): AmendmentClass | undefined {
  const [top, index, field] = path.split("/").slice(1);
  switch (top) {
    case "poNumber":
      return "po-number";
    case "orderDate":
      return "order-date";
    case "currency":
      return "currency";
    case "supplier":
      return "supplier";
    case "totalMinor":
    case "totals":
    case "charges":
    case "allowances":
    case "tax":
      return "money";
    case "lines": {
      if (index === undefined || field === undefined) return "quantity";
      if (field === "unitPriceMinor" || field === "amountMinor") return "money";
      if (field === "unit") {
        const mapped = typeof from === "string" && typeof to === "string" && normalizeUnit(from) === to;
        return mapped ? undefined : "quantity";
      }
      if (field === "description") return undefined;
      return "quantity";
    }
    default:
      return undefined;
  }
}

export function classesOf(before: unknown, after: unknown): AmendmentClass[] {
  const classes = new Set<AmendmentClass>();
  for (const c of changedLeaves(before, after)) {
    const k = classOfChange(c.path, c.from, c.to);
    if (k) classes.add(k);
  }
  return [...classes].sort();
}

/** The classes a human must still confirm: the chain's so far plus this change's, minus what the customer allows. */
export function needsHumanOf(
  customer: CustomerConfig,
  parent: readonly AmendmentClass[],
  added: readonly AmendmentClass[],
): AmendmentClass[] {
  const allowed = new Set<string>(customer.approvalPolicy.amendmentsWithoutHuman ?? []);
  return [...new Set([...parent, ...added])].filter((c) => !allowed.has(c)).sort();
}

/**
 * Applies RFC 6901 changes to a copy of the PO. `/lines/-` appends. Returns the new PO or the
 * first problem in words (the model reads it as a tool error). `source` is ours: never amended.
 */
export function applyChanges(
  po: NormalizedPo,
  changes: readonly AmendmentChange[],
): { po: NormalizedPo } | { error: string } {
  const copy = structuredClone(po) as unknown as Record<string, unknown>;
  for (const change of changes) {
    if (!change.path.startsWith("/")) return { error: `path "${change.path}" must start with "/"` };
    const parts = change.path.split("/").slice(1).map(unescapePointer);
    if (parts[0] === "source") return { error: "the source (provenance) of a PO cannot be amended" };
    if (parts.some((p) => p === "__proto__" || p === "constructor" || p === "prototype")) {
      return { error: `path "${change.path}" is not a PO field` };
    }
    let node: unknown = copy;
    for (const part of parts.slice(0, -1)) {
      const next = (node as Record<string, unknown>)[part];
      if (next === null || typeof next !== "object") return { error: `path "${change.path}" does not exist` };
      node = next;
    }
    const last = parts.at(-1) ?? "";
    if (change.remove) {
      if (Array.isArray(node)) {
        const i = Number(last);
        if (!Number.isInteger(i) || i < 0 || i >= node.length) return { error: `no item at "${change.path}"` };
        node.splice(i, 1);
      } else {
        delete (node as Record<string, unknown>)[last];
      }
      continue;
    }
    if (change.value === undefined) return { error: `change at "${change.path}" has neither value nor remove` };
    if (Array.isArray(node)) {
      const i = last === "-" ? node.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > node.length) return { error: `no item at "${change.path}"` };
      node[i] = change.value;
    } else {
      (node as Record<string, unknown>)[last] = change.value;
    }
  }
  const parsed = NormalizedPo.safeParse(copy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `the amended PO is not valid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}` };
  }
  return { po: parsed.data };
}

/** What a human reads: each changed field against the document version, money formatted. */
export function describeDiff(document: NormalizedPo | undefined, po: NormalizedPo, limit = 40): string[] {
  if (!document) {
    return [
      "No version of this PO was read from the document: the model drafted all of it from the raw text.",
      `PO ${po.poNumber} of ${po.orderDate}, supplier ${po.supplier.name}${po.supplier.id ? ` (${po.supplier.id})` : ""}, ${po.lines.length} line(s), total ${formatMinor(po.totalMinor, po.currency)}.`,
    ];
  }
  const show = (path: string, v: unknown) => {
    if (v === undefined) return "(absent)";
    if (typeof v === "number" && /Minor$/.test(path)) return formatMinor(v, po.currency);
    return JSON.stringify(v).slice(0, 120);
  };
  const lines = changedLeaves(document, po)
    .filter((c) => !c.path.startsWith("/source"))
    .map((c) => `${c.path}: ${show(c.path, c.from)} → ${show(c.path, c.to)}`);
  if (lines.length > limit) return [...lines.slice(0, limit), `… and ${lines.length - limit} more changes`];
  return lines;
}

/** Provenance of a new version: the parent's, with every changed field now attributed to `from`. */
export function provenanceAfter(
  parent: readonly { field: string; from: string }[],
  before: unknown,
  after: unknown,
  from: string,
): { field: string; from: string }[] {
  const changed = changedLeaves(before, after).map((c) => c.path);
  const touched = new Set(changed);
  return [...parent.filter((p) => !touched.has(p.field)), ...changed.map((field) => ({ field, from }))];
}

/** Latest version of the run's artifact, or undefined when nothing was extracted or drafted. */
export function latestVersion(artifacts: readonly ArtifactRecord[]): ArtifactRecord | undefined {
  return artifacts.reduce<ArtifactRecord | undefined>((a, b) => (!a || b.version > a.version ? b : a), undefined);
}

/** The version a reference names, in this run's artifacts only. */
export function findVersion(artifacts: readonly ArtifactRecord[], ref: ArtifactRef): ArtifactRecord | undefined {
  return artifacts.find((a) => a.artifactId === ref.artifactId && a.version === ref.version);
}

/** The version read from the document (the base of every diff a human sees), if there is one. */
export function documentVersion(artifacts: readonly ArtifactRecord[]): ArtifactRecord | undefined {
  return artifacts.find((a) => a.origin === "document");
}

import { z } from "zod/v3";
import { SCHEMA_VERSION } from "../constants.js";
import { RunCostRecord } from "../cost-estimate.js";
import { LedgerSchemaError } from "../errors.js";

/**
 * Persisted records. Every record carries `schemaVersion`, per kind: readers upgrade an older
 * version step by step (`UPGRADES`) before parsing, so a run parked on an approval for weeks
 * survives a version change; a newer (or corrupted) version fails loudly instead of being
 * reinterpreted. Kinds that never changed are at SCHEMA_VERSION (1).
 */
export const RECORD_VERSIONS = {
  run: SCHEMA_VERSION,
  /** 2: a turn carries its counter delta (`delta`) and its audit lines; the run's counters fold them. */
  turn: 2,
  /** 2: as turns. */
  "tool call": 2,
  /** 2: `policyRevision` is the only source of the revision an approval was requested under (v1 put it in `reason`). */
  approval: 2,
  /** 2: `state` (writing/written) is required. */
  order: 2,
  artifact: SCHEMA_VERSION,
  audit: SCHEMA_VERSION,
} as const;
export type RecordKind = keyof typeof RECORD_VERSIONS;

type Item = Record<string, unknown>;

/**
 * Upgrade functions per kind, keyed by the version they upgrade from. A v1 turn or tool call was
 * written when its counters went straight onto the run record: it carries no delta to fold.
 * A v1 order was written after its object (before the claim/write split): it is `written`.
 * A v1 approval may carry its policy revision only at the end of its reason: see `approvalV1ToV2`.
 */
const UPGRADES: { [K in RecordKind]?: Record<number, (item: Item) => Item> } = {
  turn: { 1: (t) => ({ ...t, schemaVersion: 2, delta: t.delta ?? {} }) },
  "tool call": { 1: (c) => ({ ...c, schemaVersion: 2, delta: c.delta ?? {} }) },
  approval: { 1: approvalV1ToV2 },
  order: { 1: (o) => ({ state: "written", ...o, schemaVersion: 2 }) },
};

/**
 * A v1 approval's policy revision: its `policyRevision` field when it has one, else the
 * `(policy cedar-…)` that v1 builds appended to a policy decision's reason. This is the one place
 * the reason text is parsed; from v2 on the field alone says which revision the request was made
 * under. A model escalation's reason is the model's own words and never names a revision.
 */
function approvalV1ToV2(a: Item): Item {
  const { policyRevision, ...rest } = a;
  const fromReason =
    a.rule === "model-escalation" || typeof a.reason !== "string"
      ? undefined
      : /\(policy (cedar-[0-9a-f]{16})\)$/.exec(a.reason)?.[1];
  const revision = typeof policyRevision === "string" ? policyRevision : fromReason;
  return { ...rest, ...(revision !== undefined ? { policyRevision: revision } : {}), schemaVersion: 2 };
}

/** Brings a stored item of `kind` to the current version; anything it cannot upgrade is left for the parse to refuse. */
export function upgradeRecord(kind: RecordKind, item: unknown): unknown {
  let out = item;
  for (let guard = 0; guard < 20; guard++) {
    if (!out || typeof out !== "object") return out;
    const version = (out as Item).schemaVersion;
    const step = typeof version === "number" ? UPGRADES[kind]?.[version] : undefined;
    if (!step || version === RECORD_VERSIONS[kind]) return out;
    out = step(out as Item);
  }
  return out;
}

const Version = z.literal(SCHEMA_VERSION);

/** `split`: a parent run whose document held several POs, settled once every child run settled (see agent/fanout.ts). */
export const RunStatus = z.enum([
  "running",
  "awaiting_approval",
  "saved",
  "rejected",
  "failed",
  "handed_to_human",
  "split",
]);
export type RunStatus = z.infer<typeof RunStatus>;

export const Counters = z.object({
  /** Model invocations actually paid for (a replay from the ledger does not count). */
  modelCalls: z.number().int(),
  /** Tool executions actually performed (a replay does not count). */
  toolCalls: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cacheReadTokens: z.number().int(),
  cacheWriteTokens: z.number().int(),
  costUsd: z.number(),
  guardRejections: z.number().int(),
  /** Model attempts retried after a transient failure (429, 529, 5xx, reset, timeout). */
  retries: z.number().int().default(0),
  /** Times the conversation was compacted because the prompt was too long. */
  compactions: z.number().int().default(0),
  /** Model turns whose token figures are offline estimates (no billed usage from a model). */
  estimatedTurns: z.number().int().default(0),
});
export type Counters = z.infer<typeof Counters>;

export const ZERO_COUNTERS: Counters = {
  modelCalls: 0,
  toolCalls: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
  guardRejections: 0,
  retries: 0,
  compactions: 0,
  estimatedTurns: 0,
};

export const DocumentRef = z.object({
  bucket: z.string(),
  key: z.string(),
  /** The S3 object version read (the bucket is versioned): a later upload under the same key is another run. */
  versionId: z.string().optional(),
  sha256: z.string(),
  size: z.number().int(),
  /** For a child run of a multi-PO document: the 1-based position of its PO (readDocumentAt). */
  position: z.number().int().positive().optional(),
});
export type DocumentRef = z.infer<typeof DocumentRef>;

/**
 * An audit line stored inside the record of the step that caused it (a turn, a tool call, the run's
 * opening): written in the same conditional put, so it exists exactly when the step's outcome does.
 * `Ledger.getAudit` returns these together with the standalone audit records.
 */
export const EmbeddedAudit = z.object({
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  detail: z.record(z.unknown()),
});
export type EmbeddedAudit = z.infer<typeof EmbeddedAudit>;

/** What one step adds to the run's counters; folded into the run record once (see `Ledger.foldRun`). */
export const CounterDelta = Counters.partial();
export type CounterDelta = z.infer<typeof CounterDelta>;

export const RunRecord = z.object({
  schemaVersion: Version,
  runId: z.string(),
  customer: z.string(),
  document: DocumentRef,
  executionId: z.string(),
  status: RunStatus,
  reason: z.string().optional(),
  poNumber: z.string().optional(),
  modelProvider: z.string().optional(),
  modelId: z.string().optional(),
  /** Highest model turn stored. 0 before the first turn. */
  turn: z.number().int(),
  pendingApprovalId: z.string().optional(),
  /** A child run (one PO of a multi-PO document): its parent's run id. */
  parentRunId: z.string().optional(),
  /** A parent run: one child run per PO; `outcome` is written when the parent settles. */
  children: z
    .array(
      z.object({
        runId: z.string(),
        position: z.number().int(),
        poNumber: z.string().optional(),
        outcome: z.string().optional(),
        reason: z.string().optional(),
      }),
    )
    .optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Keys of the step records (turns, tool calls) whose counter deltas the run's counters include. */
  folded: z.array(z.string()).optional(),
  /**
   * Decided approvals of this run, copied when they were decided: later steps read them here
   * instead of one read per approval. The approval record stays the source (a copy may be missing).
   */
  decided: z.array(z.lazy(() => z.preprocess((a) => upgradeRecord("approval", a), ApprovalRecord))).optional(),
  /** Audit lines of the run's opening, written with the run record. */
  audit: z.array(EmbeddedAudit).optional(),
  finishedAt: z.string().optional(),
  durationMs: z.number().optional(),
  counters: Counters,
  /** Written when the run finishes: tokens by kind, model dollars and an AWS cost estimate. */
  cost: RunCostRecord.optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

/** What the guard decided for one tool_use block of a turn; stored with the turn, atomically. */
export const Disposition = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("run"), toolUseId: z.string(), name: z.string(), argsHash: z.string() }),
  z.object({ kind: z.literal("rejected"), toolUseId: z.string(), name: z.string(), error: z.string() }),
  z.object({
    kind: z.literal("approval"),
    toolUseId: z.string(),
    name: z.string(),
    argsHash: z.string(),
    approvalId: z.string(),
    /** The policy revision that asked for the approval (not set for the model's own escalations). */
    policyRevision: z.string().optional(),
  }),
]);
export type Disposition = z.infer<typeof Disposition>;

export const TurnRecord = z.object({
  schemaVersion: z.literal(RECORD_VERSIONS.turn),
  runId: z.string(),
  turn: z.number().int(),
  /** The model's answer (Anthropic Messages shape). */
  response: z.object({
    model: z.string(),
    content: z.array(z.record(z.unknown())),
    stop_reason: z.string(),
    usage: z.object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      cache_creation_input_tokens: z.number().optional(),
      cache_read_input_tokens: z.number().optional(),
    }),
    usageEstimated: z.boolean().optional(),
  }),
  dispositions: z.array(Disposition),
  costUsd: z.number(),
  /** Wall-clock time of the model call. */
  durationMs: z.number().optional(),
  /** This turn's counters (paid model calls, tokens, retries...): folded into the run once. */
  delta: CounterDelta.optional(),
  /** The guard's decisions and the model call's retries, stored with the turn. */
  audit: z.array(EmbeddedAudit).optional(),
  createdAt: z.string(),
});
export type TurnRecord = z.infer<typeof TurnRecord>;

export const ToolCallRecord = z.object({
  schemaVersion: z.literal(RECORD_VERSIONS["tool call"]),
  runId: z.string(),
  toolUseId: z.string(),
  name: z.string(),
  argsHash: z.string(),
  /** Inline result for the model; large results live in S3 (`resultKey`). */
  content: z.string().optional(),
  resultKey: z.string().optional(),
  isError: z.boolean(),
  approvalId: z.string().optional(),
  durationMs: z.number(),
  /** This execution's counters (the tool call, an extraction's model call): folded into the run once. */
  delta: CounterDelta.optional(),
  /** `tool.executed` and the tool's own lines (`order.saved`), stored with the result. */
  audit: z.array(EmbeddedAudit).optional(),
  createdAt: z.string(),
});
export type ToolCallRecord = z.infer<typeof ToolCallRecord>;

export const ApprovalStatus = z.enum(["pending", "approved", "rejected", "timed_out"]);
export type ApprovalStatus = z.infer<typeof ApprovalStatus>;

export const ApprovalRecord = z.object({
  schemaVersion: z.literal(RECORD_VERSIONS.approval),
  approvalId: z.string(),
  runId: z.string(),
  customer: z.string(),
  turn: z.number().int(),
  /** The exact call a human approves: approving cannot execute anything else. */
  call: z.object({ toolUseId: z.string(), name: z.string(), input: z.unknown() }),
  callHash: z.string(),
  /**
   * The policy revision the request was made under, written with the request and bound into its id:
   * a decision under another revision is refused as stale. Absent when the policy did not decide
   * (the model's own escalation). The reason text may mention it for humans; nothing reads it there.
   */
  policyRevision: z.string().optional(),
  /** The artifact version a write would store, with its content hash: approving binds that content. */
  artifact: z.object({ artifactId: z.string(), version: z.number().int(), poSha256: z.string() }).optional(),
  /** What changed against the document, line by line, for the human (amendments and model drafts). */
  diff: z.array(z.string()).optional(),
  reason: z.string(),
  rule: z.string(),
  approvers: z.array(z.string()),
  summary: z.object({ poNumber: z.string(), supplierName: z.string(), amount: z.string() }),
  status: ApprovalStatus,
  taskToken: z.string().optional(),
  emailedTo: z.array(z.string()).default([]),
  usedNonces: z.array(z.string()).default([]),
  decidedBy: z.string().optional(),
  decidedAt: z.string().optional(),
  comment: z.string().optional(),
  createdAt: z.string(),
});
export type ApprovalRecord = z.infer<typeof ApprovalRecord>;

export const OrderRecord = z.object({
  schemaVersion: z.literal(RECORD_VERSIONS.order),
  customer: z.string(),
  poNumber: z.string(),
  runId: z.string(),
  idempotencyKey: z.string(),
  objectKey: z.string(),
  /** `writing` while the object is being written (claimed, not yet stored), `written` once it is. */
  state: z.enum(["writing", "written"]),
  createdAt: z.string(),
});
export type OrderRecord = z.infer<typeof OrderRecord>;

/** Which kind of change made an artifact version; the classes a human must see before it is written. */
export const AmendmentClass = z.enum([
  "money",
  "quantity",
  "supplier",
  "currency",
  "order-date",
  "po-number",
  "model-draft",
]);
export type AmendmentClass = z.infer<typeof AmendmentClass>;

/** One change of an amendment: set `value` at `path` (RFC 6901 pointer into the PO), or remove it. */
export const AmendmentChange = z
  .object({
    path: z.string().min(1).max(200),
    value: z.unknown().optional(),
    remove: z.literal(true).optional(),
  })
  .strict();
export type AmendmentChange = z.infer<typeof AmendmentChange>;

/**
 * A version of the run's PO. Version 1 is what extraction read from the document (bound to its
 * SHA-256, with field provenance); later versions come from code (transform) or from the model
 * (an amendment with a reason, or a draft built from raw text). Versions are never overwritten:
 * the only later write is the validation result of that exact version.
 */
export const ArtifactRecord = z.object({
  schemaVersion: Version,
  runId: z.string(),
  artifactId: z.string(),
  version: z.number().int().positive(),
  documentSha256: z.string(),
  origin: z.enum(["document", "transform", "amendment", "model-draft"]),
  parentVersion: z.number().int().positive().optional(),
  /** The normalized PO of this version (a NormalizedPo). */
  po: z.record(z.unknown()),
  /** sha256 of the canonical JSON of `po`: an edited record no longer matches. */
  poSha256: z.string(),
  /** Where each field came from: the parser's provenance, `transform`, or `amendment v<n>`. */
  provenance: z.array(z.object({ field: z.string(), from: z.string() })),
  amendment: z
    .object({ reason: z.string(), changes: z.array(AmendmentChange), classes: z.array(AmendmentClass) })
    .optional(),
  /** Classes over the whole chain from the document that a human must confirm before a write. */
  needsHuman: z.array(AmendmentClass),
  /** Set by the validate tool on this exact version. */
  validation: z.object({ errors: z.number().int(), warnings: z.number().int(), at: z.string() }).optional(),
  createdAt: z.string(),
});
export type ArtifactRecord = z.infer<typeof ArtifactRecord>;

export const AuditRecord = z.object({
  schemaVersion: Version,
  runId: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  detail: z.record(z.unknown()),
});
export type AuditRecord = z.infer<typeof AuditRecord>;

/** Parses a stored item (upgraded first), naming the record kind and the problem when it does not fit. */
export function parseRecord<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, kind: RecordKind, stored: unknown): T {
  const item = upgradeRecord(kind, stored);
  const version = (item as { schemaVersion?: unknown } | undefined)?.schemaVersion;
  const current = RECORD_VERSIONS[kind];
  if (version !== current) {
    throw new LedgerSchemaError(
      `${kind} record has schemaVersion ${JSON.stringify(version)}; this build reads version ${current}${typeof version === "number" && version < current ? " and has no upgrade from it" : ""}`,
    );
  }
  const parsed = schema.safeParse(item);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LedgerSchemaError(`${kind} record is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

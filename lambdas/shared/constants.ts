/**
 * Behaviour-altering defaults live here and only here, so a reviewer can see every knob at once.
 * Customer configs may override the budgets; nothing else reads magic numbers.
 */
export const DEFAULTS = {
  /** Model turns per run before the run ends as budget_exceeded. */
  maxTurns: 12,
  /** Input + output tokens per run. */
  maxTokens: 200_000,
  /** Dollars per run (model cost only). */
  maxCostUsd: 2,
  /** Bounded retries for a model that keeps sending unknown tools or invalid arguments. */
  maxGuardRejectionsPerRun: 5,
  /** Tokens the model may produce per turn (calls carry references, but a draft_po carries a whole PO). */
  maxOutputTokens: 8_192,
  /** Approval links live this long. */
  approvalLinkTtlSeconds: 7 * 24 * 3600,
  /** Largest document the intake accepts; bigger ones fail with a clear reason. */
  maxDocumentBytes: 10 * 1024 * 1024,
  /** Tokens of prepared email-thread context per run (customer budgets.contextTokens overrides). */
  contextTokens: 4_000,
  /** The single retry layer for model calls (see model/retry.ts and README "Who retries what"). */
  modelRetry: { maxAttempts: 4, baseDelayMs: 1_000, maxDelayMs: 20_000, maxRetryAfterMs: 60_000 },
  /** "Prompt is too long": one retry with a compacted conversation, then a human. */
  promptTooLongRetries: 1,
  /** Tool results larger than this go to S3 with a pointer in DynamoDB (DynamoDB items cap at 400 KB). */
  maxInlineResultBytes: 100 * 1024,
} as const;

/** Current version of every persisted ledger record. Unknown versions fail loudly. */
export const SCHEMA_VERSION = 1;

/** Default model when a customer config does not name one (Sonnet 4.5 reaches end-of-life on 2026-11-30). */
export const DEFAULT_MODEL = "claude-sonnet-5";

/** Name the offline reference model reports in run records and output. */
export const REFERENCE_MODEL = "po-agent-reference-v1";

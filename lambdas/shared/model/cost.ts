import { REFERENCE_MODEL } from "../constants.js";
import type { Usage } from "./types.js";

/**
 * Published list prices, USD per million tokens, checked on PRICE_LIST_DATE against Anthropic's
 * pricing page (platform.claude.com/docs/en/about-claude/pricing) and the per-model overview
 * pages (platform.claude.com/docs/en/models/<model>/overview). Cache writes are the 5-minute
 * tier (1.25× input), which is the only TTL this project requests; cache reads are the
 * "cache hits & refreshes" column. Not modelled: the Batch API discount, the 1-hour cache tier,
 * long-context (>200K prompt) surcharges of older 1M-context betas, data-residency multipliers.
 * Models not listed here (newer families whose prices were still moving when this was written)
 * are priced at the most expensive known rates and flagged `unknown-model`: budgets err on the
 * safe side and the flag shows up in the cost ledger.
 */
export const PRICE_LIST_DATE = "2026-11-25";

export interface ModelPrice {
  /** Normalized family id, e.g. `claude-sonnet-4-5`. */
  family: string;
  inputPerMTok: number;
  outputPerMTok: number;
  /** 5-minute cache write. */
  cacheWritePerMTok: number;
  /** Cache hit / refresh. */
  cacheReadPerMTok: number;
}

function price(
  families: readonly string[],
  inputPerMTok: number,
  outputPerMTok: number,
  cacheWritePerMTok: number,
  cacheReadPerMTok: number,
): ModelPrice[] {
  return families.map((family) => ({ family, inputPerMTok, outputPerMTok, cacheWritePerMTok, cacheReadPerMTok }));
}

const PRICES: readonly ModelPrice[] = [
  ...price(["claude-opus-4", "claude-opus-4-1"], 15, 75, 18.75, 1.5),
  ...price(
    ["claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-opus-5"],
    5,
    25,
    6.25,
    0.5,
  ),
  ...price(["claude-sonnet-4", "claude-sonnet-4-5", "claude-sonnet-4-6"], 3, 15, 3.75, 0.3),
  ...price(["claude-sonnet-5"], 2, 10, 2.5, 0.2),
  ...price(["claude-haiku-4-5"], 1, 5, 1.25, 0.1),
  ...price(["claude-haiku-3-5"], 0.8, 4, 1, 0.08),
];

const BY_FAMILY = new Map(PRICES.map((p) => [p.family, p]));

const FREE: ModelPrice = {
  family: REFERENCE_MODEL,
  inputPerMTok: 0,
  outputPerMTok: 0,
  cacheWritePerMTok: 0,
  cacheReadPerMTok: 0,
};

/** The upper bound per token kind across the list; what an unknown model is charged. */
export const MOST_EXPENSIVE_PRICE: ModelPrice = {
  family: "unknown",
  inputPerMTok: Math.max(...PRICES.map((p) => p.inputPerMTok)),
  outputPerMTok: Math.max(...PRICES.map((p) => p.outputPerMTok)),
  cacheWritePerMTok: Math.max(...PRICES.map((p) => p.cacheWritePerMTok)),
  cacheReadPerMTok: Math.max(...PRICES.map((p) => p.cacheReadPerMTok)),
};

/**
 * Reduces the id spellings of one model to its family: dated ids (`claude-sonnet-4-5-20250929`),
 * aliases (`claude-sonnet-4-0`, `claude-3-5-haiku-latest`), Bedrock ids and inference profiles
 * (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`, ARNs ending in one), Vertex ids
 * (`claude-sonnet-4-5@20250929`), dotted gateway names (`anthropic/claude-sonnet-4.5`).
 */
export function modelFamily(modelId: string): string {
  let id = modelId.trim().toLowerCase();
  id = id.slice(id.lastIndexOf("/") + 1);
  id = id.replace(/^(?:[a-z0-9-]+\.)?anthropic\./, "");
  id = id.replace(/\[1m\]$/, "");
  id = id.replace(/-v\d+(?::\d+)?$/, "");
  id = id.replace(/[@-]\d{8}$/, "");
  id = id.replace(/-latest$/, "");
  id = id.replace(/\./g, "-");
  id = id.replace(/^claude-(\d(?:-\d)?)-(opus|sonnet|haiku)$/, "claude-$2-$1");
  id = id.replace(/^(claude-(?:opus|sonnet|haiku)-\d)-0$/, "$1");
  return id;
}

/** The list price for a model id, or `undefined` when the family is not on the list. */
export function priceFor(modelId: string): ModelPrice | undefined {
  if (modelId === REFERENCE_MODEL) return FREE;
  return BY_FAMILY.get(modelFamily(modelId));
}

export interface CostBreakdown {
  inputUsd: number;
  outputUsd: number;
  cacheWriteUsd: number;
  cacheReadUsd: number;
  totalUsd: number;
  /** `unknown-model`: charged at MOST_EXPENSIVE_PRICE, an upper-bound estimate. */
  priced: "exact" | "unknown-model";
}

/**
 * Dollars for one call. `input_tokens` excludes cached tokens in the Anthropic usage object,
 * so cache writes and reads are added at their own prices, never double-counted.
 */
export function costBreakdown(modelId: string, usage: Usage): CostBreakdown {
  const known = priceFor(modelId);
  const p = known ?? MOST_EXPENSIVE_PRICE;
  const perToken = (tokens: number | undefined, perMTok: number) => ((tokens ?? 0) * perMTok) / 1_000_000;
  const inputUsd = perToken(usage.input_tokens, p.inputPerMTok);
  const outputUsd = perToken(usage.output_tokens, p.outputPerMTok);
  const cacheWriteUsd = perToken(usage.cache_creation_input_tokens, p.cacheWritePerMTok);
  const cacheReadUsd = perToken(usage.cache_read_input_tokens, p.cacheReadPerMTok);
  return {
    inputUsd,
    outputUsd,
    cacheWriteUsd,
    cacheReadUsd,
    totalUsd: inputUsd + outputUsd + cacheWriteUsd + cacheReadUsd,
    priced: known ? "exact" : "unknown-model",
  };
}

/** Total dollars for one call; see costBreakdown for how unknown models are charged. */
export function costUsd(modelId: string, usage: Usage): number {
  return costBreakdown(modelId, usage).totalUsd;
}

import { describe, expect, it } from "vitest";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import {
  costBreakdown,
  costUsd,
  MOST_EXPENSIVE_PRICE,
  modelFamily,
  PRICE_LIST_DATE,
  priceFor,
} from "../../lambdas/shared/model/cost.js";

describe("priceFor", () => {
  it.each([
    ["claude-sonnet-4-5", "claude-sonnet-4-5", 3],
    ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5", 3],
    ["anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", 3],
    ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", 3],
    ["global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", 1],
    [
      "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
      "claude-sonnet-4-5",
      3,
    ],
    ["claude-sonnet-4-5@20250929", "claude-sonnet-4-5", 3],
    ["claude-sonnet-4-0", "claude-sonnet-4", 3],
    ["claude-opus-4-20250514", "claude-opus-4", 15],
    ["claude-opus-4-1-20250805", "claude-opus-4-1", 15],
    ["claude-opus-4-5-20251101", "claude-opus-4-5", 5],
    ["claude-opus-4-6", "claude-opus-4-6", 5],
    ["claude-haiku-4-5-20251001", "claude-haiku-4-5", 1],
    ["claude-3-5-haiku-20241022", "claude-haiku-3-5", 0.8],
    ["claude-3-5-haiku-latest", "claude-haiku-3-5", 0.8],
    ["anthropic.claude-3-5-haiku-20241022-v1:0", "claude-haiku-3-5", 0.8],
    ["anthropic/claude-sonnet-4.5", "claude-sonnet-4-5", 3],
  ])("prices %s as %s", (modelId, family, inputPerMTok) => {
    // Act
    const price = priceFor(modelId);

    // Assess
    expect(price?.family).toBe(family);
    expect(price?.inputPerMTok).toBe(inputPerMTok);
  });

  it("does not confuse Opus 4 with Opus 4.5 (three times cheaper)", () => {
    // Assess
    expect(priceFor("claude-opus-4")?.outputPerMTok).toBe(75);
    expect(priceFor("claude-opus-4-5")?.outputPerMTok).toBe(25);
  });

  it("returns undefined for a model that is not on the list", () => {
    // Assess
    expect(priceFor("gpt-4o")).toBeUndefined();
    expect(priceFor("claude-sonnet-4-7")).toBeUndefined();
    expect(modelFamily("claude-sonnet-4-7-20270101")).toBe("claude-sonnet-4-7");
  });

  it("records when the list was checked", () => {
    // Assess
    expect(PRICE_LIST_DATE).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });
});

describe("costBreakdown", () => {
  it("prices input, output, cache writes and cache reads at their own rates", () => {
    // Prepare: Sonnet 4.5 is $3 in, $15 out, $3.75 5-minute cache write, $0.30 cache read per MTok.
    const usage = {
      input_tokens: 1_000_000,
      output_tokens: 100_000,
      cache_creation_input_tokens: 200_000,
      cache_read_input_tokens: 2_000_000,
    };

    // Act
    const cost = costBreakdown("claude-sonnet-4-5-20250929", usage);

    // Assess
    expect(cost.inputUsd).toBeCloseTo(3, 10);
    expect(cost.outputUsd).toBeCloseTo(1.5, 10);
    expect(cost.cacheWriteUsd).toBeCloseTo(0.75, 10);
    expect(cost.cacheReadUsd).toBeCloseTo(0.6, 10);
    expect(cost.totalUsd).toBeCloseTo(5.85, 10);
    expect(cost.priced).toBe("exact");
    expect(costUsd("claude-sonnet-4-5-20250929", usage)).toBeCloseTo(5.85, 10);
  });

  it("treats missing cache fields as zero", () => {
    // Act
    const cost = costBreakdown("claude-haiku-4-5", { input_tokens: 2_000, output_tokens: 1_000 });

    // Assess: $1 and $5 per MTok.
    expect(cost.totalUsd).toBeCloseTo(0.002 + 0.005, 12);
    expect(cost.cacheWriteUsd).toBe(0);
    expect(cost.cacheReadUsd).toBe(0);
  });

  it("costs nothing for the offline reference model", () => {
    // Act
    const cost = costBreakdown(REFERENCE_MODEL, {
      input_tokens: 50_000,
      output_tokens: 5_000,
      cache_read_input_tokens: 10_000,
    });

    // Assess
    expect(cost.totalUsd).toBe(0);
    expect(cost.priced).toBe("exact");
  });

  it("charges an unknown model at the most expensive known rates and flags it", () => {
    // Prepare
    const usage = { input_tokens: 1_000_000, output_tokens: 1_000_000 };

    // Act
    const cost = costBreakdown("some-future-model", usage);

    // Assess
    expect(cost.priced).toBe("unknown-model");
    expect(MOST_EXPENSIVE_PRICE.inputPerMTok).toBe(15);
    expect(MOST_EXPENSIVE_PRICE.outputPerMTok).toBe(75);
    expect(cost.totalUsd).toBeCloseTo(90, 10);
    expect(cost.totalUsd).toBeGreaterThan(costUsd("claude-opus-4-5", usage));
  });
});

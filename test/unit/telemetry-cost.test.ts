import { describe, expect, it } from "vitest";
import { AWS_PRICE_DATE, estimateAwsCost, runCostRecord } from "../../lambdas/shared/cost-estimate.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";

describe("AWS cost estimate per run", () => {
  it("prices state transitions and arm64 GB-seconds at the dated list prices", () => {
    // Prepare: 40 transitions; 10 invocations of 256 MiB × 1000 ms = 2.5 GB-s
    const usage = {
      stateTransitions: 40,
      lambdaInvocations: Array.from({ length: 10 }, () => ({ durationMs: 1000, memoryMb: 256 })),
    };
    // Act
    const est = estimateAwsCost(usage);
    // Assess
    expect(est.stepFunctionsUsd).toBeCloseTo(40 * 0.000025, 12);
    expect(est.lambdaGbSeconds).toBeCloseTo(2.5, 12);
    expect(est.lambdaUsd).toBeCloseTo(2.5 * 0.0000133334 + 10 * 0.0000002, 12);
    expect(est.totalUsd).toBeCloseTo(est.stepFunctionsUsd + est.lambdaUsd, 15);
    expect(est.priceDate).toBe(AWS_PRICE_DATE);
  });

  it("bills Lambda in whole milliseconds, rounded up", () => {
    const est = estimateAwsCost({ stateTransitions: 0, lambdaInvocations: [{ durationMs: 0.2, memoryMb: 1024 }] });
    expect(est.lambdaGbSeconds).toBeCloseTo(0.001, 12);
  });

  it("adds model dollars and token counts to the run's cost record", () => {
    const rec = runCostRecord({
      runId: "r",
      customer: "acme",
      counters: {
        ...ZERO_COUNTERS,
        inputTokens: 5,
        outputTokens: 6,
        cacheReadTokens: 7,
        cacheWriteTokens: 8,
        costUsd: 0.1,
      },
      aws: { stateTransitions: 4000, lambdaInvocations: [] },
    });
    expect(rec.tokens).toEqual({ input: 5, output: 6, cacheRead: 7, cacheWrite: 8 });
    expect(rec.totalUsd).toBeCloseTo(0.1 + 0.1, 12);
  });
});

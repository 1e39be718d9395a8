import { describe, expect, it } from "vitest";
import { runDurability } from "../bench/durability-lib.js";

/**
 * A small version of `npm run bench:durability`: a few POs under a fixed fault schedule that
 * includes every fault kind at high rates and external SIGKILLs of the runtime process.
 */
describe("durability under faults (seeded, small)", () => {
  it("loses no run, repeats no side effect and re-pays no stored turn across kills and injected faults", async () => {
    // Prepare: high rates so each kind fires at least once in a handful of POs.
    const rates = {
      model_429: 0.15,
      model_529: 0.1,
      model_500: 0.1,
      model_connection_reset: 0.1,
      model_timeout: 0.1,
      model_invalid_tool_input: 0.1,
      model_unknown_tool: 0.1,
      model_prompt_too_long: 0.1,
      crash_after_tool_effect: 0.05,
      crash_after_model_answer: 0.05,
      dynamodb_throttle: 0.02,
      s3_missing_object: 0.1,
    };

    // Act
    const report = await runDurability({ pos: 10, seed: 11, rates, killEveryMs: 1500, maxKills: 3, baseline: false });

    // Assess
    expect(report.runsLost).toBe(0);
    expect(report.runsFinished).toBeGreaterThanOrEqual(10);
    // Counted on the S3 client (every saved-order object written), so the check can fail: see effect-count.test.ts.
    expect(report.orderWrites).toBeGreaterThan(0);
    expect(report.duplicateSideEffects).toBe(0);
    expect(report.redundantModelCallsFromCrashes).toBe(0);
    expect(report.restarts).toBeGreaterThan(0);
    const injected = Object.entries(report.faultsInjected)
      .filter(([, n]) => n > 0)
      .map(([k]) => k);
    expect(injected).toEqual(
      expect.arrayContaining(["model_429", "model_prompt_too_long", "process_kill", "s3_event_twice"]),
    );
  }, 240_000);
});

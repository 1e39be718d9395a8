import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Seconds each slow file took in a CI run (`CI=true bash .ci/run` on a clean clone, 2026-12-01): the
 * files at 10 s or more. A clean clone has no Vitest results cache, and without one Vitest starts the
 * largest files first, by bytes; durability.test.ts (small, 87 s) then started last and ran alone on
 * one core at the end. Longest first keeps both workers busy to the end. Only the order changes: every
 * file still runs, and a file not listed keeps Vitest's own order after these.
 */
const SECONDS: Readonly<Record<string, number>> = {
  "test/infra/bundling.test.ts": 163,
  "test/local/durability.test.ts": 87,
  "test/infra/catalogue.test.ts": 74,
  "test/local/restart.test.ts": 49,
  "test/local/orchestrator.test.ts": 40,
  "test/local/intake.test.ts": 35,
  "test/browser/console.test.ts": 33,
  "test/security/compromised.test.ts": 28,
  "test/local/stop-reasons.test.ts": 28,
  "test/local/context-and-limits.test.ts": 28,
  "test/infra/exec-wrapper.test.ts": 27,
  "test/local/routes.test.ts": 25,
  "test/local/owner.test.ts": 22,
  "test/local/mcp-server.test.ts": 21,
  "test/local/bad-input.test.ts": 21,
  "test/local/sample-outcomes.test.ts": 19,
  "test/infra/grants.test.ts": 19,
  "test/infra/nag.test.ts": 18,
  "test/local/fanout.test.ts": 16,
  "test/infra/bundle-init.test.ts": 15,
  "test/local/e2e.test.ts": 14,
  "test/infra/extract-model-key.test.ts": 14,
  "test/infra/app.test.ts": 14,
  "test/local/large-po.test.ts": 13,
  "test/infra/po-agent-stack.test.ts": 13,
  "test/infra/many-customers.test.ts": 13,
  "test/local/parse-pool.test.ts": 12,
  "test/local/mcp-e2e.test.ts": 12,
  "test/infra/fixed-cost.test.ts": 12,
  "test/infra/fanout.test.ts": 12,
  "test/infra/customer-config-synth.test.ts": 12,
  "test/local/mcp-client.test.ts": 11,
  "test/infra/runtime-traps.test.ts": 11,
  "test/infra/cost-truth.test.ts": 11,
  "test/unit/cli.test.ts": 10,
  "test/local/retry.test.ts": 10,
};

/** Longest-known first; Vitest's own order (its cache of durations, else file size) for the rest and for ties. */
export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files);
    const seconds = (f: TestSpecification) => SECONDS[relative(this.ctx.config.root, f.moduleId)] ?? 0;
    return ordered
      .map((f, i) => ({ f, i }))
      .sort((a, b) => seconds(b.f) - seconds(a.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

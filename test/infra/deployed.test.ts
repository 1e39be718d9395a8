import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * `npm run check:deployed` inside `npm test`: a grant or an error name can never drift again. It
 * synthesizes acme's stack into its own cdk.out (bundling only that stack), runs acme's samples
 * through the bundles and fails on any denied AWS call, error-name mismatch, cost record that
 * differs from its execution's events, or a failed retry_run scenario.
 */
describe("what deploys is what is tested", () => {
  it("runs acme's samples through the synthesized bundles with no denied call and no error-name mismatch", async () => {
    const { stdout } = await promisify(execFile)(
      "npx",
      ["tsx", "scripts/check-deployed.ts", "--json", "--customers", "acme", "--out", "cdk.out.check"],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      },
    ).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`check:deployed failed:\n${err.stderr ?? ""}\n${err.stdout ?? ""}`);
    });
    const last = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    expect(last).toMatchObject({ bundlesRun: 14, denied: 0, errorNameMismatches: 0, costMismatches: 0 });
    // every sample's cost record equals its execution's counts; retry_run resumed a failed run on the bundles
    expect(Number(last.costRecordsChecked)).toBeGreaterThanOrEqual(9);
    expect(last.retriesChecked).toBe(1);
    expect(last.awsCallsChecked).toEqual(expect.any(Number));
    expect(Number(last.awsCallsChecked)).toBeGreaterThan(100);
    expect(Number(last.errorNamesChecked)).toBeGreaterThanOrEqual(10);
  }, 900_000);
});

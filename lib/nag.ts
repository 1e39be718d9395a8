import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { PoAgentStack } from "./po-agent-stack.js";

export { nagAcknowledgements } from "./nag-acknowledgements.js";

/** Runs cdk-nag (AwsSolutions pack) over po-agent stacks and reports what is not acknowledged. */

export interface NagViolation {
  readonly rule: string;
  readonly description: string;
  readonly constructPath: string;
}

interface ValidationReport {
  pluginReports?: {
    pluginName: string;
    violations?: { ruleName: string; description: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

/**
 * Synthesizes one stack per customer with the AwsSolutions pack and returns the unacknowledged
 * errors (empty when clean). Bundling is skipped: nag reads templates, not code. `extend` adds to
 * each stack before synthesis (the test uses it to prove a real finding is reported).
 */
export function runNag(customers: readonly CustomerConfig[], extend?: (stack: PoAgentStack) => void): NagViolation[] {
  const outdir = mkdtempSync(join(tmpdir(), "po-agent-nag-"));
  try {
    const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
    // Each PoAgentStack acknowledges its accepted findings itself (see nag-acknowledgements.ts).
    for (const customer of customers) extend?.(new PoAgentStack(app, `PoAgent-${customer.name}`, { customer }));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      app.synth();
    } catch (err) {
      if ((err as { name?: string }).name !== "ValidationFailed" && !/Validation failed/.test(String(err))) throw err;
    }
    const reportFile = join(outdir, "validation-report.json");
    if (!existsSync(reportFile)) return [];
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as ValidationReport;
    return (report.pluginReports ?? []).flatMap((p) =>
      (p.violations ?? []).flatMap((v) =>
        v.violatingConstructs.map((c) => ({
          rule: v.ruleName,
          description: v.description,
          constructPath: c.constructPath,
        })),
      ),
    );
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

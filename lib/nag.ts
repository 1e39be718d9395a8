import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { PoAgentStack, type PoAgentStackProps } from "./po-agent-stack.js";

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

/** What one nag run checked and found. */
export interface NagReport {
  /** Names of the stacks the app held when it was synthesized (one per customer). */
  readonly stacks: string[];
  /** Unacknowledged errors; empty when clean. */
  readonly violations: NagViolation[];
}

export interface NagOptions {
  /** Adds to each stack before synthesis (the test uses it to prove a real finding is reported). */
  readonly extend?: (stack: PoAgentStack) => void;
  /** Props given to every stack, e.g. `{ mcpAuth: "bearer" }`. */
  readonly stackProps?: Omit<PoAgentStackProps, "customer">;
}

/**
 * Synthesizes one stack per customer with the AwsSolutions pack and reports the stacks it checked
 * and the unacknowledged errors. Bundling is skipped: nag reads templates, not code.
 */
export function nagReport(customers: readonly CustomerConfig[], opts: NagOptions = {}): NagReport {
  const outdir = mkdtempSync(join(tmpdir(), "po-agent-nag-"));
  try {
    const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
    // Each PoAgentStack acknowledges its accepted findings itself (see nag-acknowledgements.ts).
    for (const customer of customers) {
      // Built first, extended after: `extend?.(new PoAgentStack(...))` would not build the stack at
      // all without an `extend` (an optional call does not evaluate its arguments).
      const stack = new PoAgentStack(app, `PoAgent-${customer.name}`, { ...opts.stackProps, customer });
      opts.extend?.(stack);
    }
    const stacks = app.node.children.filter((c) => Stack.isStack(c)).map((c) => c.stackName);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      app.synth();
    } catch (err) {
      if ((err as { name?: string }).name !== "ValidationFailed" && !/Validation failed/.test(String(err))) throw err;
    }
    const reportFile = join(outdir, "validation-report.json");
    if (!existsSync(reportFile)) return { stacks, violations: [] };
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as ValidationReport;
    const violations = (report.pluginReports ?? []).flatMap((p) =>
      (p.violations ?? []).flatMap((v) =>
        v.violatingConstructs.map((c) => ({
          rule: v.ruleName,
          description: v.description,
          constructPath: c.constructPath,
        })),
      ),
    );
    return { stacks, violations };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The unacknowledged errors of `nagReport` (empty when clean). */
export function runNag(customers: readonly CustomerConfig[], extend?: (stack: PoAgentStack) => void): NagViolation[] {
  return nagReport(customers, extend ? { extend } : {}).violations;
}

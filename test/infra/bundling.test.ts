import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import { customerConfig, logicalIdOf, poAgentFunctions } from "./helpers.js";

interface FunctionJson {
  readonly Properties: { readonly Code: { readonly S3Key: string } };
}

interface AssetManifestJson {
  readonly files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("lambda bundling", () => {
  // The one test that really bundles: every other infra test skips it with aws:cdk:bundling-stacks = [].
  it("bundles every handler with the local esbuild, without Docker, and ships the customer config", () => {
    // Prepare: any attempt to use Docker fails loudly.
    vi.stubEnv("CDK_DOCKER", "/nonexistent/docker-must-not-run");
    const customer = customerConfig("acme");
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), "po-agent-cdk-")) });
    const stack = new PoAgentStack(app, "PoAgent-acme", { customer });

    // Act
    const assembly = app.synth();

    // Assess
    const resources: Record<string, FunctionJson> = assembly.getStackByName(stack.stackName).template.Resources;
    const manifest: AssetManifestJson = JSON.parse(
      readFileSync(join(assembly.directory, `${stack.stackName}.assets.json`), "utf8"),
    );
    const fns = poAgentFunctions(stack);
    expect(fns).toHaveLength(11);
    for (const fn of fns) {
      const key = resources[logicalIdOf(fn)]?.Properties.Code.S3Key;
      const asset = Object.values(manifest.files).find((f) =>
        Object.values(f.destinations).some((d) => d.objectKey === key),
      );
      expect(asset, fn.handlerName).toBeDefined();
      const dir = join(assembly.directory, asset?.source.path ?? "missing");
      expect(existsSync(join(dir, "index.mjs")), fn.handlerName).toBe(true);
      expect(readFileSync(join(dir, "index.mjs"), "utf8"), fn.handlerName).toMatch(
        /export\s*\{[^}]*\bhandler\b[^}]*\}/,
      );
      expect(JSON.parse(readFileSync(join(dir, "customer.json"), "utf8")), fn.handlerName).toEqual(customer);
    }
  });
});

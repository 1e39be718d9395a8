import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { App } from "aws-cdk-lib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { logicalIdOf, poAgentFunctions } from "./helpers.js";

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
  /** handler name → bundle directory, filled by the bundling test. */
  const bundles = new Map<string, string>();

  // The one test that really bundles: every other infra test skips it with aws:cdk:bundling-stacks = [].
  it("bundles every handler with the local esbuild, without Docker, and ships the customer config", () => {
    // Prepare: any attempt to use Docker fails loudly.
    vi.stubEnv("CDK_DOCKER", "/nonexistent/docker-must-not-run");
    const customer = loadCustomerFile("customers/acme.yaml");
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
    expect(fns).toHaveLength(14);
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
      // The deployed config: local-only MCP servers (acme's sample ERP) are left out.
      expect(JSON.parse(readFileSync(join(dir, "customer.json"), "utf8")), fn.handlerName).toEqual(stack.customer);
      bundles.set(fn.handlerName, dir);
    }
  }, 600_000);

  it("runs a PO through the bundled handlers, as Lambda would, against the emulated services", async () => {
    // Prepare: the bundles from the test above; the AWS SDK is provided by the Lambda runtime, so link ours.
    expect(bundles.size).toBe(14);
    const customer = loadCustomerFile("customers/acme.yaml");
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-bundled-"));
    const stack = await LocalStack.start({ dataDir, customers: [customer] });
    try {
      const bucket = bucketFor(customer.name);
      const po = readFileSync("samples/acme/01-packaging-saved.json");
      await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: "manual/po.json", Body: po }));
      vi.stubEnv("ANTHROPIC_API_KEY", "");
      vi.stubEnv("MODEL_API_KEY_SECRET_ARN", "");
      for (const [k, v] of Object.entries({
        LEDGER_TABLE: "po-agent-ledger",
        DOCUMENT_BUCKET: bucket,
        CUSTOMER: customer.name,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        AWS_ENDPOINT_URL_S3: stack.services.s3Endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: stack.services.dynamodbEndpoint,
        POWERTOOLS_LOG_LEVEL: "ERROR",
        POWERTOOLS_METRICS_DISABLED: "true",
      })) {
        vi.stubEnv(k, v);
      }
      const load = async (name: string) => {
        const dir = bundles.get(name) ?? "";
        if (!existsSync(join(dir, "node_modules")))
          symlinkSync(join(process.cwd(), "node_modules"), join(dir, "node_modules"));
        vi.stubEnv("LAMBDA_TASK_ROOT", dir);
        const mod = (await import(join(dir, "index.mjs"))) as { handler: (event: unknown) => Promise<unknown> };
        return mod.handler;
      };
      const ingest = await load("ingest");
      const orchestrate = await load("orchestrate");
      const tools: Record<string, (event: unknown) => Promise<unknown>> = {};
      for (const name of ["extract", "validate", "transform", "save", "mcp-tool"]) tools[name] = await load(name);
      const finalize = await load("finalize");

      // Act: what the state machine does, one Task at a time.
      const { runId } = (await ingest({ bucket, key: "manual/po.json", executionId: "bundled-1" })) as {
        runId: string;
      };
      let step = (await orchestrate({ runId })) as { type: string; calls?: { toolUseId: string; name: string }[] };
      for (let i = 0; step.type === "tools" && i < 10; i++) {
        // Mounted MCP tools (`<server>.<tool>`) share the McpTool Lambda, as the state machine routes them.
        await Promise.all(
          (step.calls ?? []).map((call) => tools[call.name.includes(".") ? "mcp-tool" : call.name]?.({ runId, call })),
        );
        step = (await orchestrate({ runId })) as typeof step;
      }
      const result = await finalize({ runId, step });
      // The scheduled backlog check counts only this customer's pending approvals.
      for (const [approvalId, who] of [
        ["bundled-approval-1", customer.name],
        ["bundled-approval-other", "someone-else"],
      ] as const) {
        await stack.ledger.putApproval({
          approvalId,
          runId,
          customer: who,
          turn: 1,
          call: { toolUseId: "toolu_1", name: "save", input: {} },
          callHash: "hash",
          reason: "over the auto-approve limit",
          rule: "tier:default",
          approvers: ["alice"],
          summary: { poNumber: "ACM-PO-1", supplierName: "Supplier", amount: "1.00" },
          status: "pending",
          emailedTo: [],
          usedNonces: [],
        });
      }
      const backlog = await (await load("approval-backlog"))({
        source: "aws.events",
        "detail-type": "Scheduled Event",
      });

      // Assess
      expect(result, JSON.stringify(result)).toMatchObject({ outcome: "saved" });
      const run = await stack.ledger.getRun(runId);
      expect(run?.status).toBe("saved");
      expect(run?.counters.modelCalls).toBe((await stack.ledger.getTurns(runId)).length);
      expect(await stack.ledger.getOrder(customer.name, "ACM-PO-22817")).toBeDefined();
      expect(backlog).toMatchObject({ pending: 1 });
      expect((backlog as { oldestAgeSeconds: number }).oldestAgeSeconds).toBeLessThan(600);
    } finally {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 600_000);
});

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { HANDLER_OF_ID, synthesizedFunctions } from "../../scripts/deployed/bundles.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("lambda bundling", () => {
  /** handler name → bundle directory, filled by the bundling test. */
  const bundles = new Map<string, string>();

  // The one test that really bundles: every other infra test skips it with aws:cdk:bundling-stacks = [].
  // The app runs in a child process, exactly as `cdk synth` runs it, so this worker stays responsive.
  it("bundles every handler with the local esbuild, without Docker, and ships the customer config", async () => {
    // Prepare: any attempt to use Docker fails loudly.
    const outdir = mkdtempSync(join(tmpdir(), "po-agent-cdk-"));
    const stackName = "PoAgent-acme";

    // Act
    await promisify(execFile)("npx", ["tsx", "bin/po-agent.ts"], {
      env: {
        ...process.env,
        CDK_DOCKER: "/nonexistent/docker-must-not-run",
        CDK_OUTDIR: outdir,
        // As the CLI does: bundle only this stack, and record construct paths (they name the handlers).
        CDK_CONTEXT_JSON: JSON.stringify({
          "aws:cdk:bundling-stacks": [stackName],
          "aws:cdk:enable-path-metadata": true,
        }),
      },
      maxBuffer: 64 * 1024 * 1024,
    });

    // Assess
    const customer = deployedCustomer(loadCustomerFile("customers/acme.yaml"));
    const fns = synthesizedFunctions(outdir, stackName).functions;
    expect(fns).toHaveLength(14);
    for (const fn of fns) {
      const handler = HANDLER_OF_ID[fn.constructPath.split("/").at(-2) ?? ""] ?? fn.constructPath;
      const dir = fn.bundleDir;
      expect(existsSync(join(dir, "index.mjs")), handler).toBe(true);
      expect(readFileSync(join(dir, "index.mjs"), "utf8"), handler).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
      // The deployed config: local-only MCP servers (acme's sample ERP) are left out.
      expect(JSON.parse(readFileSync(join(dir, "customer.json"), "utf8")), handler).toEqual(customer);
      bundles.set(handler, dir);
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

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { AttributeType, Table } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { AGENT_DEFINITION_FILE } from "../../lib/agent-state-machine.js";
import { PoAgentFunction } from "../../lib/po-agent-function.js";
import { BundleProcess, synthesizedFunctions } from "../../scripts/deployed/bundles.js";
import { logicalIdOf } from "./helpers.js";

interface AslState {
  Type?: string;
  Parameters?: { FunctionName?: string };
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[] }[];
  ItemProcessor?: { States: Record<string, AslState> };
}

/** Every custom (non `States.` / `Lambda.`) error name a Retry or Catch of the state invoking `placeholder` names. */
function errorNamesFor(placeholder: string): Set<string> {
  const asl = JSON.parse(readFileSync(AGENT_DEFINITION_FILE, "utf8")) as { States: Record<string, AslState> };
  const names = new Set<string>();
  const visit = (states: Record<string, AslState>) => {
    for (const state of Object.values(states)) {
      if (state.ItemProcessor) visit(state.ItemProcessor.States);
      if (state.Parameters?.FunctionName !== `\${${placeholder}}`) continue;
      for (const rule of [...(state.Retry ?? []), ...(state.Catch ?? [])])
        for (const name of rule.ErrorEquals) if (!/^(States|Lambda)\./.test(name)) names.add(name);
    }
  };
  visit(asl.States);
  return names;
}

describe("error names in the synthesized bundles", () => {
  let outdir: string;
  let dynamo: Server;
  let dynamoUrl: string;
  let validateDir: string;
  const requests: string[] = [];

  beforeAll(async () => {
    // A DynamoDB endpoint that fails every request with HTTP 500 (what the SDK retries, then gives up on).
    dynamo = createServer((req, res) => {
      requests.push(String(req.headers["x-amz-target"]));
      req.resume();
      res.writeHead(500, { "content-type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "boom" }));
    });
    await new Promise<void>((resolve) => dynamo.listen(0, "127.0.0.1", resolve));
    const address = dynamo.address();
    dynamoUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

    // Only the Validate function, bundled exactly as the customer stacks bundle it.
    outdir = mkdtempSync(join(tmpdir(), "po-agent-errnames-"));
    const app = new App({ outdir });
    const stack = new Stack(app, "ErrorNames");
    const fn = new PoAgentFunction(stack, "Validate", {
      handlerName: "validate",
      customer: loadCustomerFile("customers/acme.yaml"),
      ledgerTable: new Table(stack, "Table", { partitionKey: { name: "pk", type: AttributeType.STRING } }),
      documentBucket: new Bucket(stack, "Bucket"),
    });
    const assembly = app.synth();
    const found = synthesizedFunctions(assembly.directory, stack.artifactId).functions.find(
      (f) => f.logicalId === logicalIdOf(fn),
    );
    expect(found).toBeDefined();
    validateDir = found?.bundleDir ?? "";
  }, 120_000);

  afterAll(async () => {
    await new Promise((resolve) => dynamo?.close(resolve));
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it("report TransientError, a name the state machine retries, when DynamoDB answers 500", async () => {
    // Prepare
    const retried = errorNamesFor("ValidateFunctionArn");
    expect(retried.has("TransientError")).toBe(true);
    const lambda = await BundleProcess.start(validateDir, {
      LEDGER_TABLE: "po-agent-ledger",
      DOCUMENT_BUCKET: "po-agent-acme",
      CUSTOMER: "acme",
      CUSTOMER_CONFIG_FILE: "customer.json",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
      POWERTOOLS_LOG_LEVEL: "CRITICAL",
      POWERTOOLS_METRICS_DISABLED: "true",
      POWERTOOLS_TRACE_ENABLED: "false",
    });
    try {
      // Act
      const out = await lambda.invoke({
        runId: "run-1",
        call: { toolUseId: "toolu_1", name: "validate", input: {} },
      });

      // Assess: the errorType Lambda would report is exactly a name of the ValidateTool Retry.
      expect(out.ok).toBe(false);
      const errorType = out.ok ? "" : out.errorType;
      expect(retried.has(errorType), `errorType "${errorType}" not in ${[...retried].join(", ")}`).toBe(true);
      expect(errorType).toBe("TransientError");
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.every((t) => t.startsWith("DynamoDB_20120810."))).toBe(true);
    } finally {
      await lambda.close();
    }
  }, 60_000);
});

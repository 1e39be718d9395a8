import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { App, type AssetStaging, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AttributeType, Table } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { modelEnvironment } from "../../lib/model-access.js";
import { PoAgentFunction } from "../../lib/po-agent-function.js";
import { bucketFor, LocalStack, TABLE_NAME } from "../../local/stack.js";
import { BundleProcess } from "../../scripts/deployed/bundles.js";
import { Recorder } from "../../scripts/deployed/recorder.js";

/**
 * The synthesized Extract function reads the model key (Secrets Manager) only for a document that needs a
 * model to be read: a scan or an image. A PO with text is parsed without it, so that call costs no Secrets
 * Manager request (and no model client). Counted on the bundle CDK staged for the function, run in its own
 * process as a cold container, with the environment the template gives it: every Secrets Manager request goes
 * to a recording endpoint (scripts/deployed/recorder.ts, which answers GetSecretValue), S3 and DynamoDB to the
 * emulators, and the model key's client (Claude) to a local Messages endpoint that records each request.
 */
const REGION = "us-east-1";
const KEY_ARN = `arn:aws:secretsmanager:${REGION}:123456789012:secret:PoAgent-customer37-ModelApiKey-AbCdEf`;
const API_KEY = "sk-ant-extract-bundle-test-key";
const TEXT_PO = "01-auto-approve-monday.json";
const SCAN = "10-scanned-pdf-no-text-layer.pdf";
/** A 1x1 PNG: no text to parse, so Claude reads it as an image block. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

/** A Messages endpoint standing in for Claude: answers each extraction with a PO as JSON, records the request. */
class FakeClaude {
  readonly requests: { apiKey: string; body: { messages: { content: { type: string }[] }[] } }[] = [];
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        // The SDK sends the key as `x-api-key` or as a bearer token, by version.
        const apiKey = req.headers["x-api-key"] ?? req.headers.authorization?.replace(/^Bearer /, "");
        this.requests.push({ apiKey: String(apiKey ?? ""), body });
        const po = {
          poNumber: `PSC-7700${this.requests.length}`,
          orderDate: "2026-11-23",
          buyer: { name: "Prairie State Components" },
          supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
          currency: "USD",
          lines: [
            { id: "1", description: "Copy paper, 5-ream case", quantity: "10", unit: "case", unitPrice: "42.00" },
          ],
          total: "420.00",
        };
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            id: `msg_${this.requests.length}`,
            type: "message",
            role: "assistant",
            model: body.model,
            content: [{ type: "text", text: JSON.stringify(po) }],
            stop_reason: "end_turn",
            stop_sequence: null,
            usage: { input_tokens: 1600, output_tokens: 300 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const claude = new FakeClaude();
const secrets = new Recorder({
  region: REGION,
  account: "123456789012",
  upstreams: {},
  secrets: new Map([[KEY_ARN, API_KEY]]),
  stateMachineArnOf: () => "",
});
const dataDir = mkdtempSync(join(tmpdir(), "po-agent-extract-key-"));
const outdir = mkdtempSync(join(tmpdir(), "po-agent-extract-key-cdk-"));
let customer: CustomerConfig;
let bundleDir = "";
/** The function's variables as the template sets them (the table's and bucket's names are tokens there). */
let templateEnv: Record<string, string> = {};
let stack: LocalStack;
const processes: BundleProcess[] = [];

beforeAll(async () => {
  await claude.start();
  await secrets.start();
  // The customer's Claude is the local endpoint; the rest is customers/customer37.yaml as deployed.
  const loaded = deployedCustomer(loadCustomerFile("customers/customer37.yaml"));
  customer = { ...loaded, model: { ...loaded.model, baseURL: claude.url } };
  const app = new App({ outdir });
  const cdk = new Stack(app, "ExtractKey");
  const fn = new PoAgentFunction(cdk, "Extract", {
    customer,
    ledgerTable: new Table(cdk, "Table", { partitionKey: { name: "pk", type: AttributeType.STRING } }),
    documentBucket: new Bucket(cdk, "Bucket"),
    // As ToolFunctions gives the document lane its model key's ARN (lib/tool-functions.ts).
    environment: modelEnvironment(customer, Secret.fromSecretCompleteArn(cdk, "ModelKey", KEY_ARN)),
  });
  bundleDir = (fn.node.findChild("Code").node.findChild("Stage") as AssetStaging).absoluteStagedPath;
  const id = cdk.getLogicalId(fn.node.defaultChild as never);
  const variables = Template.fromStack(cdk).toJSON().Resources[id].Properties.Environment.Variables as Record<
    string,
    unknown
  >;
  templateEnv = Object.fromEntries(
    Object.entries(variables).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
  stack = await LocalStack.start({ dataDir, customers: [customer] });
}, 240_000);

afterAll(async () => {
  for (const p of processes) await p.close();
  await stack?.close();
  await claude.close();
  await secrets.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(outdir, { recursive: true, force: true });
});

/** A cold Extract container: the staged bundle in its own process. */
async function startExtract(): Promise<BundleProcess> {
  const p = await BundleProcess.start(bundleDir, {
    ...templateEnv,
    LEDGER_TABLE: TABLE_NAME,
    DOCUMENT_BUCKET: bucketFor(customer.name),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL_S3: stack.services.s3Endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: stack.services.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_TRACE_ENABLED: "false",
  });
  processes.push(p);
  expect(p.initError).toBeUndefined();
  return p;
}

/** Stores `bytes` and opens its run in process (offline model) up to the model's first call: extract. */
async function extractCall(file: string, bytes: Uint8Array) {
  const bucket = bucketFor(customer.name);
  const key = `manual/${file}`;
  await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  const deps: AgentDeps = {
    ledger: stack.ledger,
    documents: new DocumentStore(stack.s3),
    customer,
    bucket,
    model: { client: new ReferenceModelClient(), modelId: "reference" },
    tools: ALL_TOOLS,
  };
  const { runId } = await ingest(deps, { bucket, key, executionId: `extract-key-${file}` });
  const step = await orchestrate(deps, { runId });
  const call = step.type === "tools" ? step.calls.find((c) => c.name === "extract") : undefined;
  if (!call) throw new Error(`the offline model did not call extract first: ${JSON.stringify(step)}`);
  return { runId, call };
}

/** Secrets Manager requests so far: [action, secret]. */
const secretReads = () => secrets.calls.map((c) => [c.action, c.resource]);

describe("the synthesized Extract function reads the model key only for a scan or an image", () => {
  it("is given the key's ARN by the template, as the document lane is in the stack", () => {
    expect(templateEnv.MODEL_API_KEY_SECRET_ARN).toBe(KEY_ARN);
  });

  it("a text PO: no Secrets Manager call and no model request; an image next in the same container: one of each", async () => {
    // Prepare
    const text = await extractCall(TEXT_PO, readFileSync(`samples/customer37/${TEXT_PO}`));
    const image = await extractCall("photo-of-po.png", PNG);
    // Counted from before the container starts: a key read at init counts too.
    const readsBefore = secrets.calls.length;
    const modelBefore = claude.requests.length;
    const extract = await startExtract();

    // Act
    const textOut = await extract.invoke(text);
    const textReads = secretReads().slice(readsBefore);
    const textModel = claude.requests.slice(modelBefore);
    const imageOut = await extract.invoke(image);

    // Assess: the text PO parsed without the key, into a stored PO
    expect(textOut, JSON.stringify(textOut)).toMatchObject({ ok: true });
    expect(textReads).toEqual([]);
    expect(textModel).toEqual([]);
    const [textArtifact, ...moreText] = await stack.ledger.getArtifacts(text.runId);
    expect(moreText).toEqual([]);
    expect(textArtifact?.origin).toBe("document");
    expect(textArtifact?.needsHuman).toEqual([]);
    // ... the image: the key read once, and Claude given it and the image, into a draft a human confirms
    expect(imageOut, JSON.stringify(imageOut)).toMatchObject({ ok: true });
    expect(secretReads().slice(readsBefore)).toEqual([["secretsmanager:GetSecretValue", KEY_ARN]]);
    const imageModel = claude.requests.slice(modelBefore);
    expect(imageModel.map((r) => [r.apiKey, r.body.messages[0]?.content[0]?.type])).toEqual([[API_KEY, "image"]]);
    const imageArtifacts = await stack.ledger.getArtifacts(image.runId);
    expect(imageArtifacts.map((a) => a.needsHuman)).toEqual([["model-draft"]]);
  }, 120_000);

  it("a scan as a cold container's first call: one Secrets Manager call, and Claude reads it as a document", async () => {
    // Prepare
    const scan = await extractCall(SCAN, readFileSync(`samples/customer37/${SCAN}`));
    // Counted from before the container starts: a key read at init counts too.
    const readsBefore = secrets.calls.length;
    const modelBefore = claude.requests.length;
    const extract = await startExtract();

    // Act
    const out = await extract.invoke(scan);

    // Assess
    expect(out, JSON.stringify(out)).toMatchObject({ ok: true });
    expect(secretReads().slice(readsBefore)).toEqual([["secretsmanager:GetSecretValue", KEY_ARN]]);
    const model = claude.requests.slice(modelBefore);
    expect(model.map((r) => [r.apiKey, r.body.messages[0]?.content[0]?.type])).toEqual([[API_KEY, "document"]]);
    const artifacts = await stack.ledger.getArtifacts(scan.runId);
    expect(artifacts.map((a) => a.needsHuman)).toEqual([["model-draft"]]);
    // Only the model key was ever asked for, and every request was understood.
    expect(new Set(secrets.calls.map((c) => c.resource))).toEqual(new Set([KEY_ARN]));
    expect(secrets.unmapped).toEqual([]);
  }, 120_000);
});

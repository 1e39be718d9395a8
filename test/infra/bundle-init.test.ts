import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { bundleHandler, type HandlerName } from "../../lib/po-agent-function.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { BundleProcess, bundleLayout } from "../../scripts/deployed/bundles.js";
import { localBundleEnv } from "./helpers.js";

/**
 * What the Extract, McpTool and MCP endpoint bundles load at init, on bundles made by the stack's own
 * bundleHandler: a call of Extract reads one document of one format, so each format's parser (and its
 * library) is a chunk read when that format is met; the MCP SDK's default validator (ajv) is in no
 * bundle, since po-agent gives the SDK its own. Each marker is a string literal of that code, so the
 * test also proves the code is still in the bundle, in a chunk loaded on first use.
 */
const LAZY_IN_EXTRACT: Record<string, string> = {
  "postal-mime": "Can not reuse parser, create a new PostalMime object",
  "csv-parse": "CSV_QUOTE_NOT_CLOSED",
  "fast-xml-parser": "Multiple possible root nodes found.",
  "po/xml.ts": "internal DTD subset",
  "po/edifact.ts": "the EDIFACT UNA segment",
  "po/x12.ts": "fewer than 16 elements",
  "po/pdf.ts": "the PDF is damaged",
  // The model key is read only for a scan or an image (AgentDeps.documentModel).
  "the Secrets Manager client": '"GetSecretValue"',
};

/** Strings of ajv and ajv-formats, and of the stand-in the bundles hold instead (lambdas/shared/mcp/ajv-absent.ts). */
const AJV_MARKERS = ["must NOT have additional properties", "strict mode: "];
const AJV_STAND_IN = "ajv is not bundled";

const customer = deployedCustomer(loadCustomerFile("customers/acme.yaml"));
const dirs = new Map<HandlerName, string>();

function bundled(handler: HandlerName) {
  const dir = dirs.get(handler) ?? "";
  const layout = bundleLayout(dir);
  const code = (files: readonly string[]) => files.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
  return { dir, init: code(layout.initFiles), lazy: code(layout.lazyFiles) };
}

beforeAll(() => {
  for (const handler of ["extract", "ingest", "orchestrate", "mcp-tool", "mcp-server"] as const) {
    const dir = mkdtempSync(join(tmpdir(), `po-agent-${handler}-`));
    bundleHandler(handler, JSON.stringify(customer), dir);
    dirs.set(handler, dir);
  }
}, 240_000);

afterAll(() => {
  for (const dir of dirs.values()) rmSync(dir, { recursive: true, force: true });
});

describe("what the document and MCP bundles load at init", () => {
  it("Extract loads no format's parser (nor the model key's client) at init: each is a chunk of its own, read when its format is met", () => {
    // Act
    const { init, lazy } = bundled("extract");
    // Assess
    for (const [code, marker] of Object.entries(LAZY_IN_EXTRACT)) {
      expect(init.includes(marker), `${code} is loaded at init`).toBe(false);
      expect(lazy.includes(marker), `${code} is not in a chunk of the bundle`).toBe(true);
    }
  });

  it("the MCP client and server bundles hold no ajv (the SDK is given po-agent's validator), only its stand-in", () => {
    for (const handler of ["mcp-tool", "mcp-server"] as const) {
      // Act
      const { init, lazy } = bundled(handler);
      // Assess
      for (const marker of AJV_MARKERS) expect(init + lazy, `${handler} bundles ajv (${marker})`).not.toContain(marker);
      expect(init, `${handler} lost the MCP SDK`).toContain("jsonSchemaValidator");
      expect(init + lazy, `${handler} has no ajv stand-in`).toContain(AJV_STAND_IN);
    }
  });

  it("an email read through the Extract bundle: the parser chunks load on the call and the PO and its thread are stored", async () => {
    // Prepare: the ingest, orchestrate (the offline reference model) and extract bundles in their own
    // processes, on the emulated DynamoDB and S3, up to the model's first call of extract.
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-extract-bundle-"));
    const stack = await LocalStack.start({ dataDir, customers: [customer] });
    const processes: BundleProcess[] = [];
    try {
      const bucket = bucketFor(customer.name);
      const env = localBundleEnv(customer.name, stack.services);
      const ingest = await BundleProcess.start(bundled("ingest").dir, env);
      const orchestrate = await BundleProcess.start(bundled("orchestrate").dir, env);
      const extract = await BundleProcess.start(bundled("extract").dir, env);
      processes.push(ingest, orchestrate, extract);
      const sample = "09-email-thread-csv-attachment-saved.eml";
      const key = `manual/${sample}`;
      await stack.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(`samples/acme/${sample}`) }),
      );
      const opened = await ingest.invoke({ bucket, key, executionId: "bundle-init-email" });
      expect(opened, JSON.stringify(opened)).toMatchObject({ ok: true });
      const { runId } = (opened as { result: { runId: string } }).result;
      const step = await orchestrate.invoke({ runId });
      const calls0 = (step as { result?: { calls?: { toolUseId: string; name: string }[] } }).result?.calls ?? [];
      const call = calls0.find((c) => c.name === "extract");
      expect(call, JSON.stringify(step)).toBeDefined();

      // Act
      const out = await extract.invoke({ runId, call });

      // Assess: the stored PO (from the CSV attachment of the email) and the thread context written to S3.
      expect(out, JSON.stringify(out)).toMatchObject({ ok: true });
      const calls = await stack.ledger.getToolCalls(runId);
      expect(calls.map((c) => [c.name, c.isError === true])).toEqual([["extract", false]]);
      const artifacts = await stack.ledger.getArtifacts(runId);
      expect(artifacts).toHaveLength(1);
      expect(artifacts[0]?.po).toMatchObject({ poNumber: "ACM-PO-22890", source: { format: "csv" } });
      const context = await stack.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `context/${runId}.json` }));
      const thread = JSON.parse((await context.Body?.transformToString()) ?? "{}") as { messages?: unknown[] };
      expect(thread.messages?.length).toBeGreaterThanOrEqual(2);
    } finally {
      for (const p of processes) await p.close();
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { readOwner } from "../../local/owner.js";
import { startServices } from "../../local/services.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { CUSTOMERS_DIR, REPO_DIR, SAMPLES_DIR, tempDir } from "../support/stack.js";

/**
 * Durable intake: an acknowledged submission is never lost with the process that took it, and an
 * upload whose process stopped before Ingest ran is started on the next start.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const customers = loadCustomers(CUSTOMERS_DIR);

async function waitOwnerGone(dataDir: string): Promise<void> {
  for (let i = 0; i < 200 && readOwner(dataDir); i++) await new Promise((r) => setTimeout(r, 50));
}

function mcpClient(dataDir: string): { client: Client; transport: StdioClientTransport } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["--import", "tsx", "local/mcp-server.ts", "--data-dir", dataDir, "--customers", CUSTOMERS_DIR],
    cwd: REPO_DIR,
    env: { ...(process.env as Record<string, string>), ANTHROPIC_API_KEY: "" },
    stderr: "pipe",
  });
  return { client: new Client({ name: "one-shot", version: "1.0.0" }), transport };
}

describe("durable intake", () => {
  it("a one-shot MCP client that leaves right after submit_document finds its run finished by the next start", async () => {
    // Prepare
    const dataDir = tempDir("intake-mcp");
    dirs.push(dataDir);
    const { client, transport } = mcpClient(dataDir);
    await client.connect(transport);
    const content = readFileSync(join(SAMPLES_DIR, "acme", "01-packaging-saved.json")).toString("base64");
    // Act: submit, then close at once (the server process stops with the client).
    const res = (await client.callTool({
      name: "submit_document",
      arguments: { customer: "acme", fileName: "one-shot.json", contentBase64: content },
    })) as { content: { text: string }[]; isError?: boolean };
    await client.close();
    await waitOwnerGone(dataDir);
    // Assess: the answer named a run that exists; the next start finishes it.
    expect(res.isError, res.content[0]?.text).toBeFalsy();
    const { runId } = JSON.parse(res.content[0]?.text ?? "{}") as { runId: string };
    const stack = await LocalStack.start({ dataDir, customers });
    try {
      expect(await stack.ledger.getRun(runId)).toBeDefined();
      await stack.resumeRuns();
      const run = stack.trackedRunIds().includes(runId)
        ? await stack.waitSettled(runId)
        : await stack.ledger.getRun(runId);
      expect(run?.status, run?.reason).toBe("saved");
      expect((await stack.ledger.listRuns()).length).toBe(1);
    } finally {
      await stack.close();
    }
  });

  it("refuses invalid base64 instead of running garbage", async () => {
    // Prepare
    const dataDir = tempDir("intake-b64");
    dirs.push(dataDir);
    const { client, transport } = mcpClient(dataDir);
    await client.connect(transport);
    // Act
    const res = (await client.callTool({
      name: "submit_document",
      arguments: { customer: "acme", fileName: "bad.json", contentBase64: "this is not base64!" },
    })) as { content: { text: string }[]; isError?: boolean };
    await client.close();
    await waitOwnerGone(dataDir);
    // Assess
    expect(res.isError).toBe(true);
    expect(res.content[0]?.text).toContain("not valid base64");
    const stack = await LocalStack.start({ dataDir, customers });
    try {
      expect(await stack.ledger.listRuns()).toEqual([]);
    } finally {
      await stack.close();
    }
  });

  it("an upload left under incoming/ with no run is started on the next start, as a redelivered event", async () => {
    // Prepare: the bytes reach the bucket while no po-agent process listens for the event.
    const dataDir = tempDir("intake-scan");
    dirs.push(dataDir);
    const services = await startServices({ dataDir, buckets: customers.map((c) => bucketFor(c.name)) });
    const s3 = new S3Client({
      region: "us-east-1",
      endpoint: services.s3Endpoint,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
      forcePathStyle: true,
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: bucketFor("acme"),
        Key: "incoming/orphan.json",
        Body: readFileSync(join(SAMPLES_DIR, "acme", "01-packaging-saved.json")),
      }),
    );
    s3.destroy();
    await services.close();
    // Act
    const stack = await LocalStack.start({ dataDir, customers });
    try {
      expect(await stack.ledger.listRuns()).toEqual([]);
      await stack.resumeRuns();
      await stack.waitAllSettled();
      // Assess: one run, saved; a second resume starts nothing new.
      const runs = await stack.ledger.listRuns();
      expect(runs.map((r) => [r.document.key, r.status])).toEqual([["incoming/orphan.json", "saved"]]);
      expect(await stack.recoverIntake()).toEqual([]);
    } finally {
      await stack.close();
    }
  });
});

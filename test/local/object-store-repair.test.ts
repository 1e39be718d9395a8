import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { markStoreOpen } from "../../local/integrity.js";
import { startServices } from "../../local/services.js";

/**
 * A process killed while s3rver writes an object leaves its metadata file empty or missing (seen in
 * the durability benchmark after SIGKILLs), and s3rver answers every read of that key with a 500
 * for ever. The start after an unclean stop repairs the store first: an object written whole reads
 * again; one whose write never completed is gone (404), as if its PUT had not happened; healthy
 * ones are untouched, a CopyObject destination (whose stale .md5 s3rver leaves) included.
 */
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const BUCKET = "po-agent-acme";
let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "po-agent-s3-repair-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const fileOf = (key: string, part: "object" | "metadata.json" | "object.md5") =>
  join(dataDir, "s3", BUCKET, `${key}._S3rver_${part}`);

async function withServices<T>(fn: (s3: S3Client) => Promise<T>): Promise<{ out: T; repair: unknown }> {
  const services = await startServices({ dataDir, buckets: [BUCKET] });
  const s3 = new S3Client({
    endpoint: services.s3Endpoint,
    region: "us-east-1",
    credentials,
    forcePathStyle: true,
    maxAttempts: 1,
  });
  try {
    return { out: await fn(s3), repair: services.objectStoreRepair };
  } finally {
    s3.destroy();
    await services.close();
  }
}

const read = async (s3: S3Client, key: string): Promise<string> => {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return (await res.Body?.transformToString()) ?? "";
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return `${e.$metadata?.httpStatusCode} ${e.name}`;
  }
};

/** s3rver as it is, on the same directory: what a start without the repair would answer. */
async function readWithoutRepair(key: string): Promise<string> {
  const S3rver = createRequire(import.meta.url)("s3rver") as new (
    o: Record<string, unknown>,
  ) => { run(): Promise<{ port: number }>; close(): Promise<void> };
  const raw = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: join(dataDir, "s3") });
  const { port } = await raw.run();
  const s3 = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    forcePathStyle: true,
    maxAttempts: 1,
  });
  try {
    return await read(s3, key);
  } finally {
    s3.destroy();
    await raw.close();
  }
}

describe("the local S3 store after a process died mid-write", () => {
  it("an object written whole reads again, a cut one is gone, a healthy one is untouched", async () => {
    // Prepare: three objects written through the emulator, then the damage a kill leaves
    const body = (n: number) => JSON.stringify({ poNumber: `PO-${n}`, lines: Array(40).fill("x") });
    await withServices(async (s3) => {
      for (const [key, n] of [
        ["processed/whole.json", 1],
        ["incoming/cut.json", 2],
        ["incoming/healthy.json", 3],
      ] as const) {
        await s3.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body(n), ContentType: "application/json" }),
        );
      }
      // s3rver's CopyObject with REPLACE leaves the destination's old .md5: acknowledged, and must be kept.
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "results/copied.json", Body: "old" }));
      await s3.send(
        new CopyObjectCommand({
          Bucket: BUCKET,
          Key: "results/copied.json",
          CopySource: `${BUCKET}/incoming/healthy.json`,
          MetadataDirective: "REPLACE",
          ContentType: "application/json",
        }),
      );
    });
    markStoreOpen(join(dataDir, "dynamodb")); // the process that wrote them never closed the store
    writeFileSync(fileOf("processed/whole.json", "metadata.json"), "");
    const cut = fileOf("incoming/cut.json", "object");
    writeFileSync(cut, readFileSync(cut).subarray(0, 20));
    rmSync(fileOf("incoming/cut.json", "metadata.json"));
    const before = await readWithoutRepair("processed/whole.json");

    // Act
    const { out, repair } = await withServices(async (s3) => ({
      whole: await read(s3, "processed/whole.json"),
      cut: await read(s3, "incoming/cut.json"),
      healthy: await read(s3, "incoming/healthy.json"),
      copied: await read(s3, "results/copied.json"),
    }));

    // Assess
    expect(before).toBe("500 InternalError");
    expect(out).toEqual({ whole: body(1), cut: "404 NoSuchKey", healthy: body(3), copied: body(3) });
    expect(repair).toEqual({ repaired: [`${BUCKET}/processed/whole.json`], removed: [`${BUCKET}/incoming/cut.json`] });
  }, 60_000);
});

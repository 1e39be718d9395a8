/**
 * Intake of the local runtime: an S3 put under incoming/ becomes a run (as EventBridge starts an
 * execution in AWS), submissions return once the run record exists, and on start every stored
 * upload without a run is started (as a redelivered event would).
 */
import { basename } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { runIdFor } from "../lambdas/shared/agent/core.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { type Ledger, sha256 } from "../lambdas/shared/ledger/ledger.js";
import { IntakeError } from "./backend.js";
import { bucketFor, md5, type RunEvent, versionKey } from "./runtime.js";

/** What intake needs of the runtime: the stores and a way to start (or mark as known) a run. */
export interface IntakeHost {
  s3: S3Client;
  ledger: Ledger;
  customers: CustomerConfig[];
  customer(name: string): CustomerConfig;
  customerForBucket(bucket: string): CustomerConfig | undefined;
  onEvent?: (event: RunEvent) => void;
  startExecution(
    customer: CustomerConfig,
    runId: string,
    bucket: string,
    key: string,
    size: number,
    versionId: string | undefined,
  ): void;
  /** Marks a run as known to this process without an execution (already finished). */
  trackFinished(runId: string): void;
  /** The run's execution in this process has finished. */
  isFinished(runId: string): boolean;
  isClosed(): boolean;
}

export class Intake {
  constructor(private readonly host: IntakeHost) {}

  /**
   * S3 put under incoming/ → a run, as EventBridge would start an execution in AWS. The event's
   * ETag (MD5 of the bytes) plays the object version: the bytes read are the bytes announced,
   * even when another upload replaced the key in between.
   */
  async onObjectCreated(bucket: string, key: string, eTag?: string): Promise<void> {
    if (!key.startsWith("incoming/")) return;
    const host = this.host;
    const customer = host.customerForBucket(bucket);
    if (!customer) return;
    const announced = eTag?.replace(/"/g, "");
    let bytes = announced ? await this.readObject(bucket, versionKey(key, announced)) : undefined;
    if (!bytes) {
      const current = await this.readObject(bucket, key);
      if (!current) return;
      if (announced && md5(current) !== announced) {
        host.onEvent?.({
          type: "skipped",
          customer: customer.name,
          document: key,
          reason: "replaced by another upload before it could be read (upload through po-agent to keep every version)",
        });
        return;
      }
      bytes = current;
      await host.s3.send(new PutObjectCommand({ Bucket: bucket, Key: versionKey(key, md5(bytes)), Body: bytes }));
    }
    const versionId = md5(bytes);
    const runId = runIdFor(customer.name, sha256(bytes));
    const existing = await host.ledger.getRun(runId);
    if (existing && ["saved", "rejected", "failed", "split"].includes(existing.status)) {
      host.onEvent?.({
        type: "skipped",
        customer: customer.name,
        document: key,
        reason: `same bytes as run ${runId} (${existing.status}); not processed again`,
      });
      host.trackFinished(runId);
      return;
    }
    host.startExecution(customer, runId, bucket, key, bytes.byteLength, versionId);
  }

  private async readObject(bucket: string, key: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.host.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await res.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  /** Delivers the S3 event for an object again (EventBridge delivers at least once). */
  async redeliver(customerName: string, fileName: string): Promise<void> {
    await this.onObjectCreated(bucketFor(customerName), `incoming/${basename(fileName)}`);
  }

  /** Drops a file into the customer's intake bucket, as a user or an upstream system would. */
  async submit(customerName: string, fileName: string, body: Uint8Array): Promise<string> {
    const customer = this.host.customer(customerName);
    const key = `incoming/${basename(fileName)}`;
    // The immutable copy first (local stand-in for the object version), then the upload that fires the event.
    await this.host.s3.send(
      new PutObjectCommand({ Bucket: bucketFor(customer.name), Key: versionKey(key, md5(body)), Body: body }),
    );
    await this.host.s3.send(new PutObjectCommand({ Bucket: bucketFor(customer.name), Key: key, Body: body }));
    return runIdFor(customer.name, sha256(body));
  }

  /**
   * Submits and returns only once the run record exists (Ingest ran), so an acknowledged document
   * is never lost with this process; throws IntakeError when no run opened in time (the document
   * stays stored and is started by the next start's intake scan).
   */
  async submitDurably(customerName: string, fileName: string, body: Uint8Array, timeoutMs = 60_000): Promise<string> {
    const runId = await this.submit(customerName, fileName, body);
    const deadline = Date.now() + timeoutMs;
    const ledger = this.host.ledger;
    for (;;) {
      if (await ledger.getRun(runId)) return runId;
      if (this.host.isClosed()) {
        throw new IntakeError(`stopped before run ${runId} was opened; it starts on the next start`);
      }
      if (this.host.isFinished(runId) && !(await ledger.getRun(runId))) {
        throw new IntakeError(`run ${runId} could not be opened (see the console); the document is kept`);
      }
      if (Date.now() > deadline) {
        throw new IntakeError(
          `run ${runId} was not opened within ${timeoutMs} ms; the document is kept and starts on the next start`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Starts every stored upload that has no run yet, as a redelivered EventBridge event would: an
   * upload whose process stopped before Ingest ran is not lost. Returns the run ids started.
   */
  async recoverIntake(): Promise<string[]> {
    const { s3, ledger } = this.host;
    const started: string[] = [];
    for (const customer of this.host.customers) {
      const bucket = bucketFor(customer.name);
      const keys = await listKeys(s3, bucket, "versions/");
      const seen = new Set<string>();
      for (const versionedKey of keys) {
        const m = /^versions\/([0-9a-f]{32})\/(.+)$/.exec(versionedKey);
        if (!m?.[1] || !m[2]) continue;
        const bytes = await this.readObject(bucket, versionedKey);
        if (!bytes) continue;
        const runId = runIdFor(customer.name, sha256(bytes));
        if (seen.has(runId) || (await ledger.getRun(runId))) continue;
        seen.add(runId);
        await this.onObjectCreated(bucket, `incoming/${m[2]}`, m[1]);
        started.push(runId);
      }
      // Objects put straight into incoming/ (not through po-agent) have no version copy until read.
      for (const key of await listKeys(s3, bucket, "incoming/")) {
        const bytes = await this.readObject(bucket, key);
        if (!bytes) continue;
        const runId = runIdFor(customer.name, sha256(bytes));
        if (seen.has(runId) || (await ledger.getRun(runId))) continue;
        seen.add(runId);
        await this.onObjectCreated(bucket, key, md5(bytes));
        started.push(runId);
      }
    }
    return started;
  }
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

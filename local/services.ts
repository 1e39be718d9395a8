/**
 * Emulated AWS services for the local runtime, all in-process and on loopback: dynalite (DynamoDB), s3rver (S3)
 * and aws-ses-v2-local (SES v2). Real SDK clients talk to them through `endpoint` overrides.
 */
import type { Cipher, Decipher } from "node:crypto";
import type { EventEmitter } from "node:events";
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import type SesServerModule from "aws-ses-v2-local";
import { guardHost } from "./control.js";
import { markStoreClean, markStoreOpen, probeStore, storeClosedCleanly, verifyStore } from "./integrity.js";
import { describeRepair, type ObjectStoreRepair, repairObjectStore } from "./object-store-repair.js";
import { closeServer, LOOPBACK, listen, urlOf } from "./ports.js";

export interface ObjectCreatedEvent {
  bucket: string;
  key: string;
  size: number;
  eTag?: string;
}

export interface LocalServices {
  s3Endpoint: string;
  dynamodbEndpoint: string;
  /** Also serves the SES web inbox at `/` and the stored emails as JSON at `GET /store`. */
  sesEndpoint: string;
  close(): Promise<void>;
  /** Called after every PutObject, CopyObject, POST upload and CompleteMultipartUpload. */
  onObjectCreated(listener: (e: ObjectCreatedEvent) => void): void;
  /** False when the ledger store's last process did not close it (its index may disagree: reindex.ts). */
  ledgerClosedCleanly: boolean;
  /** What the start repaired in the S3 store (objects cut by a process stopped mid-write). */
  objectStoreRepair: ObjectStoreRepair;
}

export interface StartServicesOptions {
  /** DynamoDB tables persist under `<dataDir>/dynamodb`, S3 objects under `<dataDir>/s3`. SES mail is in memory. */
  dataDir: string;
  /** Buckets created at start (existing ones and their objects are kept). */
  buckets: string[];
  /** @default any free port for each service */
  ports?: { s3?: number; dynamodb?: number; ses?: number };
  /**
   * Access key ids S3 accepts (s3rver refuses unknown ids; it does not check SigV4 signatures).
   * @default [{ accessKeyId: "local", secretAccessKey: "local" }]
   */
  credentials?: { accessKeyId: string; secretAccessKey: string }[];
}

interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string; configs: string[] }[];
}
interface S3rverInstance extends EventEmitter {
  run(): Promise<unknown>;
  close(callback: (error?: Error) => void): unknown;
  httpServer?: Server;
}
interface S3rverRecord {
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string; size?: number; eTag?: string } };
}
type DynaliteFactory = (options: {
  path: string;
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}) => Server;
type CipherFactory = (algorithm: string, key: unknown, iv: unknown, ...rest: unknown[]) => Cipher | Decipher;
interface CryptoModule {
  createCipheriv: CipherFactory;
  createDecipheriv: CipherFactory;
}

const require = createRequire(import.meta.url);
// require() keeps the CommonJS shape (`exports.default`) the same under node, tsx and vitest, whose ESM interop differ.
const startSesServer = (require("aws-ses-v2-local") as typeof SesServerModule).default;

/** Starts the three emulators; if one fails to start, the others are closed before the error is rethrown. */
export async function startServices(opts: StartServicesOptions): Promise<LocalServices> {
  const dynamoDir = join(opts.dataDir, "dynamodb");
  const s3Dir = join(opts.dataDir, "s3");
  await mkdir(dynamoDir, { recursive: true });
  await mkdir(s3Dir, { recursive: true });
  installDesFallback();
  allowS3AccessKeys(opts.credentials ?? [{ accessKeyId: "local", secretAccessKey: "local" }]);

  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    const results = await Promise.allSettled(closers.splice(0).map((close) => close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  };
  const listeners: ((e: ObjectCreatedEvent) => void)[] = [];

  try {
    // Corruption is named before LevelDB opens (and would drop or delete what it cannot read).
    verifyStore(dynamoDir);
    await probeStore(dynamoDir);
    const ledgerClosedCleanly = storeClosedCleanly(dynamoDir);
    markStoreOpen(dynamoDir);
    const dynalite = require("dynalite") as DynaliteFactory;
    // Tables become ACTIVE at once: nothing local should wait the emulated 500 ms.
    const dynamo = dynalite({ path: dynamoDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await listen(dynamo, opts.ports?.dynamodb ?? 0);
    guardHost(dynamo, "none");
    // dynalite wraps close() to also close its LevelDB store; that is what releases the directory lock.
    closers.push(() => closeServer(dynamo, (cb) => dynamo.close(cb)).then(() => markStoreClean(dynamoDir)));

    // s3rver's files are not written atomically: a kill mid-write leaves a key it answers 500 for.
    const objectStoreRepair = ledgerClosedCleanly ? { repaired: [], removed: [] } : repairObjectStore(s3Dir);
    const repairLine = describeRepair(objectStoreRepair);
    if (repairLine) process.stderr.write(`${repairLine}\n`);
    const S3rver = require("s3rver") as new (options: S3rverOptions) => S3rverInstance;
    const s3 = new S3rver({
      address: LOOPBACK,
      port: opts.ports?.s3 ?? 0,
      silent: true,
      directory: s3Dir,
      configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
    });
    s3.on("event", (event: { Records?: S3rverRecord[] }) => {
      for (const record of event.Records ?? []) forwardObjectCreated(record, listeners);
    });
    await s3.run();
    const s3Server = s3.httpServer;
    if (!s3Server) throw new Error("s3rver did not start an HTTP server");
    guardHost(s3Server, "none");
    closers.push(() => closeServer(s3Server, (cb) => s3.close(cb)));

    const ses = await startSesServer({ host: LOOPBACK, port: opts.ports?.ses ?? 0 });
    // The inbox holds every approver's signed links: no other host name (DNS rebinding) reads it.
    guardHost(ses, "read");
    closers.push(() => closeServer(ses));

    return {
      s3Endpoint: urlOf(s3Server),
      dynamodbEndpoint: urlOf(dynamo),
      sesEndpoint: urlOf(ses),
      close: closeAll,
      onObjectCreated: (listener) => {
        listeners.push(listener);
      },
      objectStoreRepair,
      ledgerClosedCleanly,
    };
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }
}

function forwardObjectCreated(record: S3rverRecord, listeners: ((e: ObjectCreatedEvent) => void)[]): void {
  const bucket = record.s3?.bucket?.name;
  const object = record.s3?.object;
  if (!record.eventName?.startsWith("ObjectCreated:") || !bucket || object?.key === undefined) return;
  const event: ObjectCreatedEvent = { bucket, key: object.key, size: object.size ?? 0 };
  if (object.eTag !== undefined) event.eTag = object.eTag;
  for (const listener of listeners) {
    try {
      listener(event);
    } catch {
      // A failing consumer must not turn the client's successful PutObject into an error.
    }
  }
}

function allowS3AccessKeys(credentials: { accessKeyId: string; secretAccessKey: string }[]): void {
  const account = require("s3rver/lib/models/account.js") as {
    DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
  };
  for (const { accessKeyId, secretAccessKey } of credentials) {
    account.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  }
}

let desFallbackInstalled = false;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers with
 * `--openssl-legacy-provider`; without it every truncated listing is a 500. The token is opaque to clients,
 * so when DES is unavailable, `des` is served by AES-128-CTR (same lengths, key and IV zero-extended).
 * Only calls that would otherwise throw change behaviour.
 */
function installDesFallback(): void {
  if (desFallbackInstalled) return;
  desFallbackInstalled = true;
  const crypto = require("node:crypto") as CryptoModule;
  try {
    crypto.createCipheriv("des", Buffer.alloc(8), Buffer.alloc(8));
    return;
  } catch {
    // DES is unavailable: install the fallback below.
  }
  const widen = (bytes: Buffer): Buffer =>
    Buffer.concat([bytes, Buffer.alloc(16 - Math.min(bytes.length, 16))]).subarray(0, 16);
  const wrap = (original: CipherFactory): CipherFactory => {
    const bound = original.bind(crypto);
    return (algorithm, key, iv, ...rest) =>
      algorithm.toLowerCase() === "des" &&
      Buffer.isBuffer(key) &&
      Buffer.isBuffer(iv) &&
      key.length === 8 &&
      iv.length === 8
        ? bound("aes-128-ctr", widen(key), widen(iv))
        : bound(algorithm, key, iv, ...rest);
  };
  crypto.createCipheriv = wrap(crypto.createCipheriv);
  crypto.createDecipheriv = wrap(crypto.createDecipheriv);
}

import { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import { type InvocationUsage, USAGE_KEY } from "./cost-estimate.js";

/**
 * What one Lambda invocation used, counted in the process as it happens: DynamoDB request units as
 * DynamoDB reports them (ReturnConsumedCapacity TOTAL on every call), S3 requests by price class and
 * bytes, and the bytes the function writes to stdout/stderr (what CloudWatch Logs ingests). The
 * handler wrapper returns it beside the result, so it lands in the execution history, where Finalize
 * adds it up (cost-estimate.ts usageFromHistory).
 */
interface Meter {
  readUnits: number;
  writeUnits: number;
  s3WriteRequests: number;
  s3ReadRequests: number;
  s3BytesWritten: number;
  s3BytesRead: number;
  logBytes: number;
  startedAt: number;
}

const current = new AsyncLocalStorage<Meter>();

/** Reads, for the request-unit fallback and the read/write split (DynamoDB and DocumentClient names). */
const DDB_READ = /^(Get|GetItem|Query|Scan|BatchGet|BatchGetItem|TransactGet|TransactGetItems)Command$/;
const DDB_WITH_CAPACITY =
  /^(Get|GetItem|Put|PutItem|Update|UpdateItem|Delete|DeleteItem|Query|Scan|BatchGet|BatchGetItem|BatchWrite|BatchWriteItem|TransactGet|TransactGetItems|TransactWrite|TransactWriteItems)Command$/;
/** S3's PUT, COPY, POST, LIST price class; DELETE is free; everything else is the GET class. */
const S3_WRITE =
  /^(PutObject|CopyObject|ListObjects|ListObjectsV2|ListObjectVersions|CreateMultipartUpload|UploadPart|CompleteMultipartUpload|PostObject)Command$/;
const S3_FREE = /^(DeleteObject|DeleteObjects|AbortMultipartUpload)Command$/;

interface MiddlewareClient {
  middlewareStack: {
    add(
      mw: (
        next: (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
        context: { commandName?: string },
      ) => (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
      opts: { step: "initialize"; name: string; override?: boolean },
    ): void;
  };
}

/** Counts a DynamoDB client's request units into the invocation's meter. */
export function meterDynamoDb<C>(client: C): C {
  (client as unknown as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName ?? "";
      if (DDB_WITH_CAPACITY.test(op) && args.input.ReturnConsumedCapacity === undefined) {
        args.input.ReturnConsumedCapacity = "TOTAL";
      }
      const result = await next(args);
      const meter = current.getStore();
      if (meter) {
        const consumed = result.output.ConsumedCapacity as
          | { CapacityUnits?: number }[]
          | { CapacityUnits?: number }
          | undefined;
        const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
        // An endpoint that reports no capacity (an emulator for some calls): one unit per request.
        const units = list.length > 0 ? list.reduce((n, c) => n + (c.CapacityUnits ?? 0), 0) : 1;
        if (DDB_READ.test(op)) meter.readUnits += units;
        else meter.writeUnits += units;
      }
      return result;
    },
    { step: "initialize", name: "poAgentUsageMeter", override: true },
  );
  return client;
}

/** Counts an S3 client's requests by price class, and the bytes put and got, into the invocation's meter. */
export function meterS3<C>(client: C): C {
  (client as unknown as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName ?? "";
      const result = await next(args);
      const meter = current.getStore();
      if (meter && !S3_FREE.test(op)) {
        if (S3_WRITE.test(op)) {
          meter.s3WriteRequests++;
          meter.s3BytesWritten += byteLength(args.input.Body);
        } else {
          meter.s3ReadRequests++;
          if (op === "GetObjectCommand") meter.s3BytesRead += Number(result.output.ContentLength ?? 0);
        }
      }
      return result;
    },
    { step: "initialize", name: "poAgentUsageMeter", override: true },
  );
  return client;
}

function byteLength(body: unknown): number {
  if (typeof body === "string") return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

let streamsWrapped = false;
/** stdout/stderr bytes of the invocation: Lambda ships both to CloudWatch Logs. */
function wrapStreams(): void {
  if (streamsWrapped) return;
  streamsWrapped = true;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const meter = current.getStore();
      if (meter) meter.logBytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : byteLength(chunk);
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** Runs one invocation under a fresh meter; returns its result and what it used. */
export async function metered<R>(fn: () => Promise<R>): Promise<{ result: R; usage: InvocationUsage }> {
  wrapStreams();
  const meter: Meter = {
    readUnits: 0,
    writeUnits: 0,
    s3WriteRequests: 0,
    s3ReadRequests: 0,
    s3BytesWritten: 0,
    s3BytesRead: 0,
    logBytes: 0,
    startedAt: performance.now(),
  };
  const result = await current.run(meter, fn);
  return { result, usage: usageOf(meter) };
}

/**
 * Runs one invocation metered and returns its result with the usage beside it under USAGE_KEY (a
 * plain-object result only: every state's ResultSelector drops the key, the history keeps it).
 */
export async function withUsage<R>(fn: () => Promise<R>): Promise<R> {
  const { result, usage } = await metered(fn);
  return result !== null && typeof result === "object" && !Array.isArray(result)
    ? ({ ...result, [USAGE_KEY]: usage } as R)
    : result;
}

/** The running invocation's usage so far (Finalize counts itself while it runs); undefined outside one. */
export function currentUsage(): InvocationUsage | undefined {
  const meter = current.getStore();
  return meter ? usageOf(meter) : undefined;
}

function usageOf(m: Meter): InvocationUsage {
  return {
    memoryMb: Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? 256),
    durationMs: Math.ceil(performance.now() - m.startedAt),
    dynamodbReadUnits: m.readUnits,
    dynamodbWriteUnits: m.writeUnits,
    s3WriteRequests: m.s3WriteRequests,
    s3ReadRequests: m.s3ReadRequests,
    s3BytesWritten: m.s3BytesWritten,
    s3BytesRead: m.s3BytesRead,
    logBytes: m.logBytes,
  };
}

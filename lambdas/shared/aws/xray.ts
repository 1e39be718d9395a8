import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { subscribe } from "node:diagnostics_channel";

/**
 * X-Ray subsegments from a Lambda function, without the X-Ray SDK (in maintenance mode since
 * 2026-02-25, end of support 2027-02-25; with Powertools Tracer it cost 30-50 ms of every cold start).
 * Lambda's active tracing records the function's own segment; this module adds what runs inside it:
 * one subsegment per handler invocation (`## <name>`, with the run's annotations), per AWS SDK call
 * (namespace `aws`: service, operation, region, request id, status, error/throttle/fault), per
 * `fetch` request (namespace `remote`: the model API, MCP servers) and per model and tool call
 * (telemetry.ts). Each is sent when it closes, as one segment document over UDP to
 * the daemon Lambda runs beside the function (`AWS_XRAY_DAEMON_ADDRESS`).
 *
 * Nothing is recorded or sent unless the invocation's trace header (`_X_AMZN_TRACE_ID`, which the
 * Node.js runtime sets per invocation) says `Sampled=1`: locally and in tests there is none. A failure
 * to send is counted and dropped; nothing here throws into a handler.
 *
 * The current parent (the handler's subsegment while it runs) is held in an AsyncLocalStorage, which
 * every bundle already runs each invocation in (usage-meter.ts): concurrent SDK calls of one invocation
 * each find it. Only node:dgram, node:crypto, node:async_hooks and node:diagnostics_channel are used.
 */

/** The trace header fields of one invocation (Root, Parent, Sampled; others such as Lineage are kept verbatim). */
export interface TraceContext {
  /** `1-<8 hex epoch>-<24 hex>`. */
  readonly root: string;
  /** The id of the function's segment that Lambda records: the parent of every top-level subsegment. */
  readonly parent: string;
  readonly sampled: boolean;
  /** Further `Key=Value` fields (e.g. `Lineage=…`, read by Lambda's recursive-loop detection), passed on as they are. */
  readonly extra: readonly string[];
}

const ROOT = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;
const SEGMENT_ID = /^[0-9a-f]{16}$/;

/** Parses `Root=1-…;Parent=…;Sampled=1[;Lineage=…]`; undefined for anything without a valid Root and Parent. */
export function parseTraceHeader(header: string | undefined): TraceContext | undefined {
  if (!header) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled = false;
  const extra: string[] = [];
  for (const field of header.split(";")) {
    const eq = field.indexOf("=");
    if (eq <= 0) continue;
    const key = field.slice(0, eq).trim();
    const value = field.slice(eq + 1).trim();
    if (key === "Root") root = value;
    else if (key === "Parent") parent = value;
    else if (key === "Sampled") sampled = value === "1";
    else extra.push(`${key}=${value}`);
  }
  if (!root || !ROOT.test(root) || !parent || !SEGMENT_ID.test(parent)) return undefined;
  return { root, parent, sampled, extra };
}

/**
 * The header of the invocation being served: the runtime's per-invocation store when it has one (functions
 * that run invocations concurrently), else `_X_AMZN_TRACE_ID` (the same sources Powertools Logger reads).
 */
function invocationTraceHeader(): string | undefined {
  const store = (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId?: () => string | undefined } } })
    .awslambda?.InvokeStore;
  return store?.getXRayTraceId?.() ?? process.env._X_AMZN_TRACE_ID;
}

/** `host:port`, or the `udp:host:port tcp:host:port` form; the daemon's default is 127.0.0.1:2000. */
export function daemonAddress(value: string | undefined): { host: string; port: number } {
  const fallback = { host: "127.0.0.1", port: 2000 };
  if (!value) return fallback;
  const parts = value.trim().split(/\s+/);
  const udp = parts.find((p) => p.startsWith("udp:"))?.slice(4) ?? parts.find((p) => !p.startsWith("tcp:"));
  if (!udp) return fallback;
  const colon = udp.lastIndexOf(":");
  const port = Number(udp.slice(colon + 1));
  const host = udp.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return colon > 0 && Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : fallback;
}

/** A segment document as the daemon takes it (only the fields this module writes). */
export interface SubsegmentDocument {
  name: string;
  id: string;
  trace_id: string;
  parent_id: string;
  type: "subsegment";
  start_time: number;
  end_time: number;
  namespace?: "aws" | "remote";
  annotations?: Record<string, string | number | boolean>;
  metadata?: Record<string, Record<string, unknown>>;
  aws?: Record<string, string | number | boolean>;
  http?: { request?: { method: string; url: string }; response?: { status: number; content_length?: number } };
  error?: true;
  throttle?: true;
  fault?: true;
  cause?: { exceptions: { id: string; type: string; message: string; remote?: true }[] };
}

/** The daemon protocol: this header line, a newline, then one JSON segment document per datagram. */
const DAEMON_HEADER = '{"format":"json","version":1}\n';
/** A datagram (and a segment document) is at most 64 KB. */
const MAX_DATAGRAM = 64_000;

/** Sends segment documents to the daemon over UDP; never throws. */
export class DaemonEmitter {
  private socket: Socket | undefined;
  private address: { host: string; port: number } | undefined;
  /** Documents not sent (serialization failed, too large, or the socket reported an error). */
  dropped = 0;

  constructor(private readonly addressOf: () => string | undefined = () => process.env.AWS_XRAY_DAEMON_ADDRESS) {}

  send(doc: SubsegmentDocument): void {
    try {
      let datagram = Buffer.from(DAEMON_HEADER + JSON.stringify(doc));
      if (datagram.byteLength > MAX_DATAGRAM) {
        // Metadata is what grows; the timing, ids and flags are what a trace needs.
        const { metadata: _dropped, ...rest } = doc;
        datagram = Buffer.from(DAEMON_HEADER + JSON.stringify(rest));
        if (datagram.byteLength > MAX_DATAGRAM) {
          this.dropped++;
          return;
        }
      }
      this.address ??= daemonAddress(this.addressOf());
      const { host, port } = this.address;
      if (!this.socket) {
        const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
        socket.on("error", () => {
          this.dropped++;
          if (this.socket === socket) this.socket = undefined;
          socket.close();
        });
        socket.unref(); // a pending datagram never keeps the process alive
        this.socket = socket;
      }
      this.socket.send(datagram, port, host, (err) => {
        if (err) this.dropped++;
      });
    } catch {
      this.dropped++;
    }
  }
}

/** A 64-bit id in 16 hex digits. */
function newId(): string {
  return randomBytes(8).toString("hex");
}

/** X-Ray annotation keys: letters, digits and underscores only (others are not indexed for filter expressions). */
const ANNOTATION_KEY = /^[A-Za-z0-9_]+$/;

/** One subsegment: filled while it runs, sent once when closed. */
export class Subsegment {
  readonly id = newId();
  start_time = Date.now() / 1000;
  namespace: "aws" | "remote" | undefined;
  private readonly doc: Partial<SubsegmentDocument> = {};
  private closed = false;

  constructor(
    readonly name: string,
    readonly trace: TraceContext,
    private readonly parentId: string,
    private readonly emit: (doc: SubsegmentDocument) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  addNewSubsegment(name: string): Subsegment {
    return new Subsegment(name, this.trace, this.id, this.emit);
  }

  /** Indexed for filter expressions. A key X-Ray would not index is dropped, as is a non-finite number. */
  addAnnotation(key: string, value: string | number | boolean): void {
    if (!ANNOTATION_KEY.test(key)) return;
    if (typeof value === "number" && !Number.isFinite(value)) return;
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return;
    this.doc.annotations = { ...this.doc.annotations, [key]: value };
  }

  addMetadata(key: string, value: unknown, namespace = "default"): void {
    const metadata = this.doc.metadata ?? {};
    metadata[namespace] = { ...metadata[namespace], [key]: value };
    this.doc.metadata = metadata;
  }

  /** A client error (4xx). */
  addErrorFlag(): void {
    this.doc.error = true;
  }

  /** A server error (5xx) or an exception thrown by the code the subsegment times. */
  addFaultFlag(): void {
    this.doc.fault = true;
  }

  /** Throttled (429 or a throttling error): also a client error. */
  addThrottleFlag(): void {
    this.doc.throttle = true;
    this.doc.error = true;
  }

  /** Records an exception in `cause`; `remote` when a downstream service answered with it. */
  addException(type: string, message: string, remote = false): void {
    const exceptions = this.doc.cause?.exceptions ?? [];
    // Bounded, so that a long message cannot push the document past a datagram's size.
    exceptions.push({
      id: newId(),
      type,
      message: message.slice(0, 2000),
      ...(remote ? { remote: true as const } : {}),
    });
    this.doc.cause = { exceptions };
  }

  setAws(aws: Record<string, string | number | boolean | undefined>): void {
    const defined = Object.entries(aws).filter((e): e is [string, string | number | boolean] => e[1] !== undefined);
    this.doc.aws = { ...this.doc.aws, ...Object.fromEntries(defined) };
  }

  setHttpRequest(method: string, url: string): void {
    this.doc.http = { ...this.doc.http, request: { method, url } };
  }

  setHttpStatus(status: number, contentLength?: number): void {
    const response = { status, ...(contentLength !== undefined ? { content_length: contentLength } : {}) };
    this.doc.http = { ...this.doc.http, response };
  }

  /** Error (4xx), throttle (429) or fault (5xx) from an HTTP status. */
  flagStatus(status: number): void {
    if (status === 429) this.addThrottleFlag();
    else if (status >= 400 && status < 500) this.addErrorFlag();
    else if (status >= 500) this.addFaultFlag();
  }

  /** The `X-Amzn-Trace-Id` a request made inside this subsegment carries: the downstream segment's parent is this one. */
  traceHeader(): string {
    return [`Root=${this.trace.root}`, `Parent=${this.id}`, "Sampled=1", ...this.trace.extra].join(";");
  }

  /** Ends the subsegment and sends it; a second close does nothing. */
  close(endTime = Date.now() / 1000): void {
    if (this.closed) return;
    this.closed = true;
    this.emit({
      ...this.doc,
      name: this.name,
      id: this.id,
      trace_id: this.trace.root,
      parent_id: this.parentId,
      type: "subsegment",
      start_time: this.start_time,
      end_time: Math.max(endTime, this.start_time),
      ...(this.namespace ? { namespace: this.namespace } : {}),
    });
  }
}

/** What a subsegment may be started under: the function's segment (Lambda's) or an open subsegment. */
export interface SegmentParent {
  addNewSubsegment(name: string): Subsegment;
}

/** The parts of an AWS SDK v3 client the instrumentation touches. */
interface InstrumentableClient {
  middlewareStack: {
    add(
      middleware: (next: SdkHandler, context: { clientName?: string; commandName?: string }) => SdkHandler,
      options: { step: "build"; name: string; override: boolean },
    ): void;
  };
  config?: { region?: unknown };
}
type SdkHandler = (args: { input: unknown; request?: unknown }) => Promise<{ output: unknown; response?: unknown }>;

interface SdkMetadata {
  httpStatusCode?: number;
  requestId?: string;
  attempts?: number;
}

/** What undici publishes on its diagnostics channels for each `fetch` request (the fields read here). */
interface UndiciRequest {
  readonly origin?: unknown;
  readonly path?: unknown;
  readonly method?: unknown;
  addHeader?(name: string, value: string): unknown;
}
interface UndiciMessage {
  readonly request: UndiciRequest;
  readonly response?: { readonly statusCode?: number; readonly headers?: readonly (Buffer | string)[] };
  readonly error?: unknown;
}

/** Error names the AWS SDKs treat as throttling (HTTP 400 for several of them). */
const THROTTLING =
  /^(Throttling|ThrottlingException|ThrottledException|RequestThrottledException|TooManyRequestsException|ProvisionedThroughputExceededException|TransactionInProgressException|RequestLimitExceeded|BandwidthLimitExceeded|LimitExceededException|RequestThrottled|SlowDown|PriorRequestNotComplete|EC2ThrottledException)$/;

export interface XRayTracerOptions {
  /** Where documents go (tests capture them); defaults to the daemon over UDP. */
  readonly emitter?: { send(doc: SubsegmentDocument): void };
  /** The current invocation's trace header; defaults to the runtime's. */
  readonly traceHeader?: () => string | undefined;
  /** Applied to exception messages before they leave the process. */
  readonly redact?: (text: string) => string;
}

/**
 * The tracer every handler shares (observability.ts). `getSegment()` is the parent for new subsegments,
 * undefined when the invocation is not sampled, so callers do no tracing work then.
 */
export class XRayTracer {
  private readonly current = new AsyncLocalStorage<Subsegment>();
  private readonly emitter: { send(doc: SubsegmentDocument): void };
  private readonly headerOf: () => string | undefined;
  private readonly redact: (text: string) => string;
  private readonly emit = (doc: SubsegmentDocument) => this.emitter.send(doc);

  constructor(opts: XRayTracerOptions = {}) {
    this.emitter = opts.emitter ?? new DaemonEmitter();
    this.headerOf = opts.traceHeader ?? invocationTraceHeader;
    this.redact = opts.redact ?? ((t) => t);
  }

  /** The sampled invocation's trace, or undefined (no header, Sampled=0, or POWERTOOLS_TRACE_ENABLED=false). */
  traceContext(): TraceContext | undefined {
    if (process.env.POWERTOOLS_TRACE_ENABLED === "false") return undefined;
    const ctx = parseTraceHeader(this.headerOf());
    return ctx?.sampled ? ctx : undefined;
  }

  /**
   * The subsegment of this async context, else the function's segment of the invocation's trace. The context
   * travels with the work, as the X-Ray SDK's did: what an invocation left running and resumes while the
   * next one is served (its header already the next one's) stays in its own trace, under its own subsegment,
   * even once that subsegment is closed and sent (a later child names it as parent all the same).
   */
  getSegment(): SegmentParent | undefined {
    const open = this.current.getStore();
    if (open && process.env.POWERTOOLS_TRACE_ENABLED !== "false") return open;
    const ctx = this.traceContext();
    if (!ctx) return undefined;
    return { addNewSubsegment: (name) => new Subsegment(name, ctx, ctx.parent, this.emit) };
  }

  /** Runs `fn` inside a new subsegment (the parent of what it starts), closed when `fn` settles; a throw is a fault. */
  async inSubsegment<T>(name: string, fn: (sub: Subsegment | undefined) => Promise<T>): Promise<T> {
    const sub = this.getSegment()?.addNewSubsegment(name);
    if (!sub) return fn(undefined);
    try {
      return await this.current.run(sub, () => fn(sub));
    } catch (err) {
      sub.addFaultFlag();
      sub.addException(errorName(err), this.redact(errorMessage(err)));
      throw err;
    } finally {
      sub.close();
    }
  }

  /** An annotation on the open subsegment (the function's own segment takes none); dropped when there is none. */
  putAnnotation(key: string, value: string | number | boolean): void {
    const open = this.current.getStore();
    if (open && !open.isClosed && process.env.POWERTOOLS_TRACE_ENABLED !== "false") open.addAnnotation(key, value);
  }

  /**
   * A `remote` subsegment per `fetch` request (what Powertools Tracer recorded: host as name, method, URL
   * without the query, status, error/throttle/fault), from undici's diagnostics channels; the request
   * carries `X-Amzn-Trace-Id` with the subsegment as Parent. Closed when the response headers arrive.
   */
  traceFetch(): void {
    const open = new WeakMap<UndiciRequest, Subsegment>();
    const take = (request: UndiciRequest) => {
      const sub = open.get(request);
      open.delete(request);
      return sub;
    };
    subscribe("undici:request:create", (message) => {
      try {
        const { request } = message as UndiciMessage;
        const method = String(request.method ?? "GET");
        if (method === "CONNECT") return;
        const parent = this.getSegment();
        if (!parent) return;
        const url = new URL(String(request.path ?? "/"), String(request.origin ?? ""));
        const sub = parent.addNewSubsegment(url.hostname);
        sub.namespace = "remote";
        sub.setHttpRequest(method, `${url.protocol}//${url.host}${url.pathname}`);
        request.addHeader?.("X-Amzn-Trace-Id", sub.traceHeader());
        open.set(request, sub);
      } catch {
        // An unreadable request is not traced.
      }
    });
    subscribe("undici:request:headers", (message) => {
      const { request, response } = message as UndiciMessage;
      const sub = take(request);
      if (!sub) return;
      try {
        const status = response?.statusCode ?? 0;
        const length = rawHeader(response?.headers, "content-length");
        sub.setHttpStatus(status, length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined);
        sub.flagStatus(status);
      } finally {
        sub.close();
      }
    });
    subscribe("undici:request:error", (message) => {
      const { request, error } = message as UndiciMessage;
      const sub = take(request);
      if (!sub) return;
      try {
        sub.addFaultFlag(); // no answer: refused, reset, timed out
        sub.addException(errorName(error), this.redact(errorMessage(error)), true);
      } finally {
        sub.close();
      }
    });
  }

  /**
   * A subsegment per call of an AWS SDK v3 client (a `build` middleware, outside the retries: one per
   * call, `aws.retries` counts the rest), and its id as the `Parent` of the request's `X-Amzn-Trace-Id`.
   */
  captureAWSv3Client<C>(client: C): C {
    const c = client as unknown as InstrumentableClient;
    let region: string | undefined;
    const regionOf = async (): Promise<string | undefined> => {
      if (region !== undefined) return region;
      const r = c.config?.region;
      const value = typeof r === "function" ? await (r as () => Promise<unknown>)() : r;
      region = typeof value === "string" ? value : undefined;
      return region;
    };
    c.middlewareStack.add(
      (next, context) => async (args) => {
        const parent = this.getSegment();
        if (!parent) return next(args);
        const sub = parent.addNewSubsegment((context.clientName ?? "AWS").replace(/Client$/, ""));
        sub.namespace = "aws";
        const operation = (context.commandName ?? "").replace(/Command$/, "");
        // The resource fields the X-Ray SDK recorded for DynamoDB and S3 (table; bucket, key, version).
        const input = (args.input ?? {}) as Record<string, unknown>;
        const text = (v: unknown) => (typeof v === "string" ? v : undefined);
        const resource = {
          table_name: text(input.TableName),
          consistent_read: typeof input.ConsistentRead === "boolean" ? input.ConsistentRead : undefined,
          bucket_name: text(input.Bucket),
          key: text(input.Key),
          version_id: text(input.VersionId),
        };
        const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
        if (headers) {
          for (const h of Object.keys(headers)) if (h.toLowerCase() === "x-amzn-trace-id") delete headers[h];
          headers["X-Amzn-Trace-Id"] = sub.traceHeader();
        }
        const record = async (meta: SdkMetadata | undefined, contentLength?: number) => {
          sub.setAws({
            operation,
            region: await regionOf().catch(() => undefined),
            request_id: meta?.requestId,
            retries: meta?.attempts !== undefined ? Math.max(0, meta.attempts - 1) : undefined,
            ...resource,
          });
          if (meta?.httpStatusCode !== undefined) sub.setHttpStatus(meta.httpStatusCode, contentLength);
        };
        try {
          const result = await next(args);
          try {
            const meta = (result.output as { $metadata?: SdkMetadata } | undefined)?.$metadata;
            const length = (result.response as { headers?: Record<string, string> } | undefined)?.headers?.[
              "content-length"
            ];
            await record(meta, length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined);
          } catch {
            // The call succeeded; what it reports is best effort.
          }
          return result;
        } catch (err) {
          try {
            const e = err as { name?: unknown; $metadata?: SdkMetadata; $retryable?: { throttling?: boolean } };
            await record(e.$metadata);
            const status = e.$metadata?.httpStatusCode;
            if (status === 429 || e.$retryable?.throttling === true || THROTTLING.test(errorName(err)))
              sub.addThrottleFlag();
            else if (status !== undefined && status >= 400 && status < 500) sub.addErrorFlag();
            else sub.addFaultFlag(); // 5xx, or no answer at all (network, timeout)
            sub.addException(errorName(err), this.redact(errorMessage(err)), status !== undefined);
          } catch {
            // Recording must not replace the SDK's error.
          }
          throw err;
        } finally {
          sub.close();
        }
      },
      { step: "build", name: "poAgentXRay", override: true },
    );
    return client;
  }
}

/** A header of undici's raw list (name, value, name, value, …). */
function rawHeader(headers: readonly (Buffer | string)[] | undefined, name: string): string | undefined {
  for (let i = 0; headers && i + 1 < headers.length; i += 2)
    if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
  return undefined;
}

function errorName(err: unknown): string {
  return err instanceof Error || (typeof err === "object" && err !== null && "name" in err)
    ? String((err as { name: unknown }).name)
    : typeof err;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

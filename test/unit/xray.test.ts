import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod/v3";
import { instrumented } from "../../lambdas/shared/aws/handler.js";
import {
  DaemonEmitter,
  daemonAddress,
  parseTraceHeader,
  type SubsegmentDocument,
  XRayTracer,
} from "../../lambdas/shared/aws/xray.js";
import { telemetry, tracer } from "../../lambdas/shared/observability.js";
import { FakeXRayDaemon } from "../../scripts/deployed/traces.js";
import { FakeJsonAws, type JsonReply } from "../support/fake-json-aws.js";

const ROOT = "1-6756a1b2-0123456789abcdef01234567";
const PARENT = "53995c3f42cd8ad8";
const LINEAGE = "Lineage=a87bd80c:0";
const header = (sampled: "0" | "1") => `Root=${ROOT};Parent=${PARENT};Sampled=${sampled};${LINEAGE}`;

/** Polls `done` every 5 ms until it holds; after `timeoutMs` fails naming what was awaited. */
async function until(done: () => boolean, awaited: () => string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${awaited()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A real UDP socket standing in for the X-Ray daemon (check:deployed's, scripts/deployed/traces.ts). */
const daemon = new FakeXRayDaemon<SubsegmentDocument>();
/** DynamoDB (and any other request) answering with the next scripted reply, else an empty 200. */
let ddbReplies: JsonReply[] = [];
const ddb = new FakeJsonAws(() => ddbReplies.shift() ?? { status: 200, body: {} });
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  await daemon.start();
  await ddb.start();
  // The ledger's shape: a DocumentClient over a client wrapped as runtime.ts wraps every client.
  const client = tracer.captureAWSv3Client(
    new DynamoDBClient({
      endpoint: ddb.endpoint,
      region: "eu-west-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 2,
    }),
  );
  doc = DynamoDBDocumentClient.from(client);
});

afterAll(async () => {
  await daemon.close();
  await ddb.close();
});

beforeEach(() => {
  vi.stubEnv("AWS_XRAY_DAEMON_ADDRESS", daemon.address);
  vi.stubEnv("CUSTOMER", "acme");
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.spyOn(console, "info").mockImplementation(() => {});
  vi.spyOn(console, "error").mockImplementation(() => {});
  daemon.clear();
  ddb.requests.length = 0;
  ddbReplies = [];
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** A handler as every po-agent Lambda builds one: a ledger read, a write, and a model call reported to telemetry. */
const probe = instrumented("probe", z.object({ runId: z.string(), turn: z.number() }), async (input) => {
  await Promise.all([
    doc.send(new GetCommand({ TableName: "ledger", Key: { pk: input.runId, sk: "run" }, ConsistentRead: true })),
    doc.send(new PutCommand({ TableName: "ledger", Item: { pk: input.runId, sk: "turn#1" } })),
  ]);
  telemetry.modelCall({
    runId: input.runId,
    customer: "acme",
    turn: input.turn,
    modelId: "claude-sonnet-5",
    usage: { input_tokens: 10, output_tokens: 2 },
    stopReason: "end_turn",
    durationMs: 40,
    costUsd: 0.001,
  });
  return "done";
});

describe("X-Ray subsegments of a sampled invocation", () => {
  it("sends the handler's, each AWS call's and the model call's subsegment, parented and annotated, once each", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    // Act
    const result = await probe({ runId: "acme-run-1", turn: 3 });
    const docs = await daemon.waitFor(4);
    // Assess
    expect(result).toBe("done");
    expect(daemon.malformed).toEqual([]);
    expect(daemon.headers.every((h) => h === '{"format":"json","version":1}')).toBe(true);
    expect(docs.map((d) => d.name).sort()).toEqual(["## probe", "DynamoDB", "DynamoDB", "model claude-sonnet-5"]);
    const handler = docs.find((d) => d.name === "## probe");
    expect(handler).toMatchObject({
      type: "subsegment",
      trace_id: ROOT,
      parent_id: PARENT,
      annotations: { runId: "acme-run-1", customer: "acme", turn: 3 },
    });
    expect(handler?.fault).toBeUndefined();
    for (const d of docs) {
      expect(d.id).toMatch(/^[0-9a-f]{16}$/);
      expect(d.trace_id).toBe(ROOT);
      expect(d.end_time).toBeGreaterThanOrEqual(d.start_time);
      if (d !== handler) expect(d.parent_id).toBe(handler?.id);
    }
    expect(new Set(docs.map((d) => d.id)).size).toBe(4);

    const calls = docs.filter((d) => d.name === "DynamoDB");
    expect(calls.map((c) => c.aws?.operation).sort()).toEqual(["GetItem", "PutItem"]);
    expect(calls.find((c) => c.aws?.operation === "GetItem")?.aws?.consistent_read).toBe(true);
    for (const c of calls) {
      expect(c).toMatchObject({
        namespace: "aws",
        aws: { region: "eu-west-1", table_name: "ledger", retries: 0 },
        http: { response: { status: 200 } },
      });
      expect(c.error ?? c.fault ?? c.throttle).toBeUndefined();
    }
    // Each request carried its own subsegment as the Parent of its trace header, Lineage passed on.
    expect(ddb.requests).toHaveLength(2);
    for (const r of ddb.requests) {
      const op = r.target.split(".")[1];
      const sub = calls.find((c) => c.aws?.operation === op);
      expect(r.headers["x-amzn-trace-id"]).toBe(`Root=${ROOT};Parent=${sub?.id};Sampled=1;${LINEAGE}`);
      expect(sub?.aws?.request_id).toBe(`REQ${ddb.requests.indexOf(r) + 1}`);
    }
    const model = docs.find((d) => d.name === "model claude-sonnet-5");
    expect(model?.annotations).toMatchObject({ runId: "acme-run-1", modelId: "claude-sonnet-5", turn: 3 });
    expect(model?.metadata?.default?.usage).toEqual({ input_tokens: 10, output_tokens: 2 });
  });

  it("flags a 4xx answer as an error, throttling as throttle, a 5xx as a fault after retries, and the handler's throw as a fault", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    const fail = (status: number, type: string) => ({ status, body: { __type: type, message: "no" } });
    const tx = instrumented("tx", z.object({ step: z.string() }), async (input) => {
      if (input.step === "conditional") {
        ddbReplies = [fail(400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException")];
      } else if (input.step === "throttled") {
        ddbReplies = [
          fail(400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
          fail(400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
        ];
      } else {
        ddbReplies = [
          fail(500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
          fail(500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
        ];
      }
      await doc.send(new PutCommand({ TableName: "ledger", Item: { pk: "x", sk: input.step } }));
    });
    // Act
    const errors: string[] = [];
    for (const step of ["conditional", "throttled", "server"]) {
      await tx({ step }).catch((e: Error) => errors.push(e.name));
    }
    const docs = await daemon.waitFor(6);
    // Assess: the SDK's errors reach the caller unchanged
    expect(errors).toEqual([
      "ConditionalCheckFailedException",
      "ProvisionedThroughputExceededException",
      "InternalServerError",
    ]);
    const calls = docs.filter((d) => d.name === "DynamoDB");
    expect(calls).toHaveLength(3);
    // Each call under the handler subsegment whose recorded exception is the call's error.
    const callOf = (errorName: string) => {
      const handler = docs.find((d) => d.name === "## tx" && d.cause?.exceptions[0]?.type === errorName);
      return calls.find((c) => c.parent_id === handler?.id);
    };
    const conditional = callOf("ConditionalCheckFailedException");
    const throttled = callOf("ProvisionedThroughputExceededException");
    const server = callOf("InternalServerError");
    expect(conditional).toMatchObject({ error: true, http: { response: { status: 400 } }, aws: { retries: 0 } });
    expect(conditional?.fault ?? conditional?.throttle).toBeUndefined();
    expect(conditional?.cause?.exceptions[0]).toMatchObject({ type: "ConditionalCheckFailedException", remote: true });
    expect(throttled).toMatchObject({ throttle: true, error: true, aws: { retries: 1 } });
    expect(server).toMatchObject({ fault: true, http: { response: { status: 500 } }, aws: { retries: 1 } });
    expect(server?.error).toBeUndefined();
    const handlers = docs.filter((d) => d.name === "## tx");
    expect(handlers).toHaveLength(3);
    for (const h of handlers) expect(h).toMatchObject({ fault: true, parent_id: PARENT });
  });
});

describe("S3 calls of a sampled invocation", () => {
  it("records the bucket, key and version of an object call, as the X-Ray SDK did", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    const s3 = tracer.captureAWSv3Client(
      new S3Client({
        endpoint: ddb.endpoint,
        forcePathStyle: true,
        region: "eu-west-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
      }),
    );
    const head = instrumented("head", z.object({}), async () => {
      await s3.send(new HeadObjectCommand({ Bucket: "po-agent-acme", Key: "incoming/a.json", VersionId: "v1" }));
    });
    // Act
    await head({});
    const docs = await daemon.waitFor(2);
    // Assess
    const call = docs.find((d) => d.name === "S3");
    expect(call).toMatchObject({
      namespace: "aws",
      parent_id: docs.find((d) => d.name === "## head")?.id,
      aws: { operation: "HeadObject", bucket_name: "po-agent-acme", key: "incoming/a.json", version_id: "v1" },
      http: { response: { status: 200 } },
    });
    expect(ddb.requests[0]?.headers["x-amzn-trace-id"]).toBe(`Root=${ROOT};Parent=${call?.id};Sampled=1;${LINEAGE}`);
  });
});

describe("fetch requests of a sampled invocation (the model API, MCP servers)", () => {
  it("sends a remote subsegment per request under the handler's, flagged by status, and names it in the request's trace header", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    ddbReplies = [
      { status: 200, body: { ok: true } },
      { status: 503, body: { error: "overloaded" } },
    ];
    const refused = `http://127.0.0.1:${await closedPort()}`;
    const calls = instrumented("model", z.object({}), async () => {
      const ok = await fetch(`${ddb.endpoint}/v1/messages?beta=true`, { method: "POST", body: "{}" });
      await ok.text();
      const busy = await fetch(`${ddb.endpoint}/v1/messages`, { method: "POST", body: "{}" });
      await busy.text();
      await fetch(refused).catch(() => undefined);
      return [ok.status, busy.status];
    });
    // Act
    const statuses = await calls({});
    const docs = await daemon.waitFor(4);
    // Assess
    expect(statuses).toEqual([200, 503]);
    const handler = docs.find((d) => d.name === "## model");
    const remote = docs.filter((d) => d.namespace === "remote");
    expect(remote).toHaveLength(3);
    for (const r of remote) expect(r).toMatchObject({ name: "127.0.0.1", parent_id: handler?.id, trace_id: ROOT });
    const [ok, busy, down] = remote.sort((a, b) => a.start_time - b.start_time);
    expect(ok?.http).toEqual({
      request: { method: "POST", url: `${ddb.endpoint}/v1/messages` },
      response: { status: 200, content_length: 11 },
    });
    expect(ok?.error ?? ok?.fault).toBeUndefined();
    expect(busy).toMatchObject({ fault: true, http: { response: { status: 503 } } });
    expect(down).toMatchObject({ fault: true, http: { request: { method: "GET" } } });
    expect(down?.cause?.exceptions[0]?.remote).toBe(true);
    expect(ddb.requests.map((r) => r.headers["x-amzn-trace-id"])).toEqual([
      `Root=${ROOT};Parent=${ok?.id};Sampled=1;${LINEAGE}`,
      `Root=${ROOT};Parent=${busy?.id};Sampled=1;${LINEAGE}`,
    ]);
  });
});

/** A sampled invocation of its own trace, run after one that must send nothing (sentBeforeMarker). */
const MARKER_ROOT = "1-6756a1b2-fedcba9876543210fedcba98";
const marker = instrumented("marker", z.object({}), async () => "marked");

/**
 * What the module tracer sent before now, for the invocations that must send nothing. Absence cannot be
 * waited for, only bounded: so a sampled invocation runs next, and its subsegment is waited for (at most 5 s,
 * a failure if it never comes, never a pass). It leaves by the same socket as anything the invocation under
 * test sent (the tracer's emitter keeps one) for the same loopback address, where a socket's datagrams are
 * queued to the receiver in the order sent (UDP itself promises no order; loopback keeps it in practice): once
 * the marker is in, such a datagram would be in too. What this cannot see is a datagram sent later than the
 * marker, by a timer, which the emitter never does (it sends when a subsegment closes).
 */
async function sentBeforeMarker(): Promise<SubsegmentDocument[]> {
  vi.stubEnv("_X_AMZN_TRACE_ID", `Root=${MARKER_ROOT};Parent=${PARENT};Sampled=1`);
  vi.stubEnv("POWERTOOLS_TRACE_ENABLED", "true");
  expect(await marker({})).toBe("marked");
  await until(
    () => daemon.docs.some((d) => d.trace_id === MARKER_ROOT),
    () => "the marker invocation's subsegment",
  );
  return daemon.docs.filter((d) => d.trace_id !== MARKER_ROOT);
}

describe("not sampled or not traced", () => {
  it("sends nothing and adds no header of its own when the invocation is not sampled", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("0"));
    // Act
    const result = await probe({ runId: "acme-run-2", turn: 1 });
    const sent = await sentBeforeMarker();
    // Assess
    expect(result).toBe("done");
    expect(sent).toEqual([]);
    expect(ddb.requests).toHaveLength(2);
    for (const r of ddb.requests) expect(String(r.headers["x-amzn-trace-id"] ?? "")).not.toContain("Sampled=1");
  });

  it("sends nothing and throws nothing without a trace header (locally, in tests)", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", undefined);
    // Act
    const result = await probe({ runId: "acme-run-3", turn: 1 });
    const sent = await sentBeforeMarker();
    // Assess
    expect(result).toBe("done");
    expect(sent).toEqual([]);
    expect(ddb.requests).toHaveLength(2);
  });

  it("sends nothing when POWERTOOLS_TRACE_ENABLED is false, even if sampled", async () => {
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    vi.stubEnv("POWERTOOLS_TRACE_ENABLED", "false");
    await probe({ runId: "acme-run-4", turn: 1 });
    expect(await sentBeforeMarker()).toEqual([]);
  });
});

describe("sending never breaks a handler", () => {
  it("drops a document it cannot send (no daemon at the address, unserializable metadata) without throwing", async () => {
    // Prepare: a tracer of its own, sending to an address where nothing can be delivered
    const emitter = new DaemonEmitter(() => "256.0.0.1:2000");
    const t = new XRayTracer({ emitter, traceHeader: () => header("1") });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    // Act
    const out = await t.inSubsegment("## lonely", async (sub) => {
      sub?.addMetadata("loop", circular);
      return 42;
    });
    await t.inSubsegment("## unreachable", async () => 1);
    // (the unreachable one fails in the socket's send callback, after inSubsegment returned)
    await until(
      () => emitter.dropped >= 2,
      () => `2 dropped documents (dropped: ${emitter.dropped})`,
    );
    // Assess
    expect(out).toBe(42);
    expect(emitter.dropped).toBe(2);
  });

  it("sends an oversized document without its metadata, bounds exception messages, and drops invalid annotation keys", async () => {
    // Prepare
    vi.stubEnv("_X_AMZN_TRACE_ID", header("1"));
    const t = new XRayTracer({ emitter: new DaemonEmitter() });
    // Act
    await t.inSubsegment("## big", async (sub) => {
      sub?.addMetadata("blob", "x".repeat(70_000));
      t.putAnnotation("runId", "acme-run-5");
      t.putAnnotation("not-indexable", "dropped");
      t.putAnnotation("ratio", Number.NaN);
    });
    const thrown = await t
      .inSubsegment("## long error", async () => {
        throw new Error("y".repeat(100_000));
      })
      .catch((e: Error) => e.message.length);
    const docs = await daemon.waitFor(2);
    // Assess
    expect(docs).toHaveLength(2);
    expect(docs[0]?.metadata).toBeUndefined();
    expect(docs[0]?.annotations).toEqual({ runId: "acme-run-5" });
    expect(thrown).toBe(100_000); // the caller's error is untouched
    expect(docs[1]).toMatchObject({ name: "## long error", fault: true });
    expect(docs[1]?.cause?.exceptions[0]?.message).toHaveLength(2000);
  });
});

describe("one invocation's subsegments stay in its trace", () => {
  it("work an invocation left running stays in its trace once the next invocation's header is set; a second close sends nothing", async () => {
    // Prepare: a tracer sending to memory, whose header changes as the runtime's does between invocations.
    const sent: SubsegmentDocument[] = [];
    let current = header("1");
    const t = new XRayTracer({ emitter: { send: (d) => sent.push(d) }, traceHeader: () => current });
    const NEXT_ROOT = "1-6756a1b3-bbbbbbbbbbbbbbbbbbbbbbbb";
    const NEXT_PARENT = "7f3c2a1b0e9d8c7b";

    // Act: the first invocation's handler leaves work behind, which resumes after the runtime has set the
    // next invocation's header (a frozen container thawed for the next event) and begins a subsegment; the
    // next invocation's own handler runs in a fresh context; then one subsegment is closed twice.
    let resume: () => void = () => {};
    const resumed = new Promise<void>((r) => {
      resume = r;
    });
    let leftover: Promise<void> = Promise.resolve();
    await t.inSubsegment("## first", async () => {
      leftover = resumed.then(() => t.getSegment()?.addNewSubsegment("left-over work").close());
    });
    current = `Root=${NEXT_ROOT};Parent=${NEXT_PARENT};Sampled=1`;
    resume();
    await leftover;
    await t.inSubsegment("## next", async () => {
      t.getSegment()?.addNewSubsegment("next work").close();
    });
    const twice = t.getSegment()?.addNewSubsegment("closed twice");
    twice?.close();
    twice?.close();

    // Assess: the left-over work under the first handler's subsegment, in the first trace; the next
    // invocation's subsegments in its own trace, under its own segment.
    const first = sent.find((d) => d.name === "## first");
    const next = sent.find((d) => d.name === "## next");
    expect(first).toMatchObject({ trace_id: ROOT, parent_id: PARENT });
    expect(sent.find((d) => d.name === "left-over work")).toMatchObject({ trace_id: ROOT, parent_id: first?.id });
    expect(next).toMatchObject({ trace_id: NEXT_ROOT, parent_id: NEXT_PARENT });
    expect(sent.find((d) => d.name === "next work")).toMatchObject({ trace_id: NEXT_ROOT, parent_id: next?.id });
    expect(sent.filter((d) => d.name === "closed twice")).toHaveLength(1);
  });
});

describe("trace header and daemon address", () => {
  it("reads Root, Parent, Sampled and keeps the other fields; rejects a header without a valid Root or Parent", () => {
    expect(parseTraceHeader(header("1"))).toEqual({ root: ROOT, parent: PARENT, sampled: true, extra: [LINEAGE] });
    expect(parseTraceHeader(`Root=${ROOT};Parent=${PARENT};Sampled=?`)?.sampled).toBe(false);
    expect(parseTraceHeader(`Root=${ROOT};Sampled=1`)).toBeUndefined();
    expect(parseTraceHeader("Root=abc;Parent=53995c3f42cd8ad8;Sampled=1")).toBeUndefined();
    expect(parseTraceHeader(undefined)).toBeUndefined();
  });

  it("takes host:port and the udp:/tcp: pair form, and falls back to 127.0.0.1:2000", () => {
    expect(daemonAddress("169.254.79.129:2000")).toEqual({ host: "169.254.79.129", port: 2000 });
    expect(daemonAddress("tcp:127.0.0.1:2001 udp:127.0.0.2:2002")).toEqual({ host: "127.0.0.2", port: 2002 });
    expect(daemonAddress(undefined)).toEqual({ host: "127.0.0.1", port: 2000 });
    expect(daemonAddress("nonsense")).toEqual({ host: "127.0.0.1", port: 2000 });
  });
});

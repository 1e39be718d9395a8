import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import type { AddressInfo } from "node:net";
import type { AwsCall } from "./recorder.js";

/** The fields of a subsegment document the check reads. */
export interface EmittedSubsegment {
  readonly name: string;
  readonly id: string;
  readonly trace_id: string;
  readonly parent_id: string;
  readonly type?: string;
  readonly start_time: number;
  readonly end_time?: number;
  readonly namespace?: string;
  readonly annotations?: Record<string, unknown>;
  readonly fault?: boolean;
  readonly aws?: { operation?: string };
}

/**
 * A UDP socket standing in for the X-Ray daemon Lambda runs beside a function: the bundles get its
 * address as `AWS_XRAY_DAEMON_ADDRESS`. Keeps every document with its header line, and every datagram
 * that is not one (the protocol header line, a newline, one JSON document). Also the daemon of the unit
 * tests of the emitter (test/unit/xray.test.ts, url-handlers-traced.test.ts), typed there by their `D`.
 */
export class FakeXRayDaemon<D extends { readonly name: string } = EmittedSubsegment> {
  readonly docs: D[] = [];
  /** The header line of each document, in the order of `docs`. */
  readonly headers: string[] = [];
  readonly malformed: string[] = [];
  private socket: Socket | undefined;
  address = "";

  async start(): Promise<void> {
    const socket = createSocket("udp4");
    socket.on("message", (msg) => {
      const text = msg.toString("utf8");
      const nl = text.indexOf("\n");
      try {
        const header = JSON.parse(text.slice(0, nl)) as { format?: unknown; version?: unknown };
        if (nl < 0 || header.format !== "json" || header.version !== 1) throw new Error("bad header");
        this.docs.push(JSON.parse(text.slice(nl + 1)) as D);
        this.headers.push(text.slice(0, nl));
      } catch {
        this.malformed.push(text.slice(0, 120));
      }
    });
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    this.socket = socket;
    this.address = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  }

  /**
   * The documents once at least `count` have arrived (UDP sends complete after the call that made them
   * returns), polling every 5 ms; after `timeoutMs` it fails naming what did arrive.
   */
  async waitFor(count: number, timeoutMs = 5_000): Promise<D[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.docs.length < count) {
      if (Date.now() > deadline)
        throw new Error(
          `waited ${timeoutMs} ms for ${count} datagrams (arrived: ${this.docs.map((d) => d.name).join(", ") || "none"})`,
        );
      await new Promise((r) => setTimeout(r, 5));
    }
    return [...this.docs];
  }

  /** Forgets what arrived (between tests). */
  clear(): void {
    this.docs.length = 0;
    this.headers.length = 0;
    this.malformed.length = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }
}

/** A fresh trace header as Lambda gives a sampled (or unsampled) invocation: a new Root, the function segment's id as Parent. */
export function newTraceHeader(sampled: boolean): { header: string; root: string; parent: string } {
  const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;
  const parent = randomBytes(8).toString("hex");
  return { header: `Root=${root};Parent=${parent};Sampled=${sampled ? 1 : 0}`, root, parent };
}

/** One invocation the check gave a sampled trace header. */
export interface TracedInvocation {
  readonly label: string;
  readonly root: string;
  readonly parent: string;
  readonly customer: string;
  /** The event's runId, when it had one at the top level (the handler annotates it). */
  readonly runId?: string;
  /** The handler subsegment's name, when the check knows it (the Function URL handlers). */
  readonly subsegment?: string;
  /** Whether the handler subsegment must be a fault (or must not), when the check knows. */
  readonly fault?: boolean;
  /** Another invocation shared its process (the trace header is per process): not checked. */
  readonly overlapped: boolean;
}

const fieldOf = (header: string | undefined, key: string) =>
  header
    ?.split(";")
    .find((f) => f.startsWith(`${key}=`))
    ?.slice(key.length + 1);

/**
 * What a sampled invocation of a deployed bundle must have sent: one `## <handler>` subsegment under
 * the function's segment (the header's Parent) with the customer (and runId) annotations, and one `aws`
 * subsegment per AWS call it made, each the Parent of the `X-Amzn-Trace-Id` that call carried. Nothing
 * may arrive for a trace the check did not sample. Each label of `required` must have had at least one
 * invocation checked (one that ran alone in its process), so a function the check stops sampling, or
 * only ever samples beside another call, is a problem rather than a silent pass.
 */
export function checkTraces(
  invocations: readonly TracedInvocation[],
  docs: readonly EmittedSubsegment[],
  calls: readonly AwsCall[],
  required: readonly string[] = [],
): { checked: number; subsegments: number; problems: string[] } {
  const problems: string[] = [];
  for (const label of required)
    if (!invocations.some((i) => i.label === label && !i.overlapped))
      problems.push(`${label}: no sampled invocation that ran alone in its process, so its trace was not checked`);
  const sampled = new Set(invocations.map((i) => i.root));
  for (const d of docs)
    if (!sampled.has(d.trace_id))
      problems.push(`subsegment "${d.name}" for trace ${d.trace_id}, which was not sampled`);
  let checked = 0;
  let subsegments = 0;
  for (const inv of invocations) {
    if (inv.overlapped) continue;
    checked++;
    const mine = docs.filter((d) => d.trace_id === inv.root);
    subsegments += mine.length;
    const where = `${inv.label} (trace ${inv.root})`;
    const handlers = mine.filter((d) => d.name.startsWith("## "));
    const handler = handlers[0];
    if (handlers.length !== 1 || handler?.parent_id !== inv.parent) {
      problems.push(`${where}: ${handlers.length} handler subsegments under the function segment, expected 1`);
      continue;
    }
    if (inv.subsegment !== undefined && handler.name !== inv.subsegment)
      problems.push(`${where}: handler subsegment "${handler.name}", expected "${inv.subsegment}"`);
    if (inv.fault !== undefined && (handler.fault === true) !== inv.fault)
      problems.push(
        `${where}: handler subsegment ${inv.fault ? "not a fault, expected one" : "a fault, expected none"}`,
      );
    if (handler.annotations?.customer !== inv.customer)
      problems.push(`${where}: handler subsegment annotated customer ${String(handler.annotations?.customer)}`);
    if (inv.runId !== undefined && handler.annotations?.runId !== inv.runId)
      problems.push(`${where}: handler subsegment annotated runId ${String(handler.annotations?.runId)}`);
    const ids = new Set(mine.map((d) => d.id));
    for (const d of mine) {
      if (d.type !== "subsegment" || !/^[0-9a-f]{16}$/.test(d.id) || !(d.end_time && d.end_time >= d.start_time))
        problems.push(`${where}: "${d.name}" is not a closed subsegment document`);
      if (d !== handler && !ids.has(d.parent_id)) problems.push(`${where}: "${d.name}" has a parent outside the trace`);
    }
    // Every AWS call of the invocation and its subsegment, matched through the header's Parent.
    const aws = new Map(mine.filter((d) => d.namespace === "aws").map((d) => [d.id, d]));
    const parents = new Set<string>();
    for (const call of calls.filter((c) => fieldOf(c.traceHeader, "Root") === inv.root)) {
      const parent = fieldOf(call.traceHeader, "Parent") ?? "";
      parents.add(parent);
      const sub = aws.get(parent);
      if (!sub) {
        problems.push(`${where}: ${call.action} carried Parent=${parent}, no aws subsegment has that id`);
        continue;
      }
      const prefix = call.action.split(":")[0] ?? "";
      if (
        ["dynamodb", "states", "secretsmanager"].includes(prefix) &&
        call.action !== `${prefix}:${sub.aws?.operation}`
      )
        problems.push(`${where}: ${call.action} recorded as operation ${sub.aws?.operation}`);
    }
    for (const [id, sub] of aws)
      if (!parents.has(id))
        problems.push(`${where}: aws subsegment ${sub.name} ${sub.aws?.operation} for no recorded call`);
  }
  return { checked, subsegments, problems };
}

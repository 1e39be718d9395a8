import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { RedactingLogFormatter } from "../../lambdas/shared/observability.js";
import {
  approvalBacklogOf,
  fanOut,
  METRIC,
  noopTelemetry,
  PowertoolsTelemetry,
  type SubsegmentPort,
  type Telemetry,
  type TracerPort,
} from "../../lambdas/shared/telemetry.js";

interface FakeSub extends SubsegmentPort {
  name: string;
  annotations: Record<string, unknown>;
  metadata: Record<string, unknown>;
  closed: boolean;
  errorFlag: boolean;
}

function fakeTracer(): TracerPort & { subs: FakeSub[] } {
  const subs: FakeSub[] = [];
  return {
    subs,
    getSegment: () => ({
      addNewSubsegment(name: string) {
        const s: FakeSub = {
          name,
          start_time: Date.now() / 1000,
          annotations: {},
          metadata: {},
          closed: false,
          errorFlag: false,
          addAnnotation(k, v) {
            s.annotations[k] = v;
          },
          addMetadata(k, v) {
            s.metadata[k] = v;
          },
          addErrorFlag() {
            s.errorFlag = true;
          },
          close() {
            s.closed = true;
          },
        };
        subs.push(s);
        return s;
      },
    }),
  };
}

/** Real Powertools Logger writing JSON lines into `lines`. */
function captureLogger(lines: Record<string, unknown>[]): Logger {
  // Dev mode makes Powertools write through the global console, which the test can capture.
  vi.stubEnv("POWERTOOLS_DEV", "true");
  const logger = new Logger({ serviceName: "po-agent", logFormatter: new RedactingLogFormatter() });
  vi.spyOn(console, "info").mockImplementation((l: string) => lines.push(JSON.parse(l)));
  vi.spyOn(console, "warn").mockImplementation((l: string) => lines.push(JSON.parse(l)));
  return logger;
}

function setup() {
  const tracer = fakeTracer();
  const metrics = new Metrics({ namespace: "PoAgent", serviceName: "po-agent" });
  const lines: Record<string, unknown>[] = [];
  const logger = captureLogger(lines);
  const t = new PowertoolsTelemetry({ logger, tracer, metrics });
  return { t, tracer, metrics, lines, logger };
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

const ref = { runId: "acme-abc", customer: "acme" };

describe("PowertoolsTelemetry", () => {
  it("records a model call as a closed X-Ray subsegment with model id, tokens and stop reason", () => {
    // Prepare
    const { t, tracer } = setup();
    const before = Date.now() / 1000;
    // Act
    t.modelCall({
      ...ref,
      turn: 2,
      modelId: "claude-sonnet-5",
      usage: { input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 800 },
      stopReason: "tool_use",
      durationMs: 1500,
      costUsd: 0.0042,
    });
    // Assess
    const sub = tracer.subs[0];
    expect(sub?.name).toBe("model claude-sonnet-5");
    expect(sub?.annotations).toEqual({
      runId: "acme-abc",
      turn: 2,
      modelId: "claude-sonnet-5",
      stopReason: "tool_use",
    });
    expect(sub?.metadata.usage).toEqual({ input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 800 });
    expect(sub?.closed).toBe(true);
    expect(sub?.start_time).toBeLessThanOrEqual(before - 1.4);
  });

  it("keeps a Lambda's own customer dimension without Powertools warning it was already added, and moves to another customer", () => {
    // Prepare: built as lambdas/shared/observability.ts builds it, the customer from the environment
    const warnings: string[] = [];
    const quiet = { debug() {}, info() {}, error() {}, warn: (m: unknown) => warnings.push(String(m)) };
    const build = (options?: { customerDimension: string }) => {
      const metrics = new Metrics({
        namespace: "PoAgent",
        serviceName: "po-agent",
        defaultDimensions: { customer: "acme" },
        logger: quiet,
      });
      return {
        metrics,
        t: new PowertoolsTelemetry({ logger: captureLogger([]), tracer: fakeTracer(), metrics }, options),
      };
    };
    const { metrics, t } = build({ customerDimension: "acme" });
    const emf = () => metrics.serializeMetrics() as unknown as Record<string, unknown>;
    // Act: the first metric of a cold start
    t.escalation({ ...ref, approvalId: "a1", tool: "save", rule: "over-limit" });
    // Assess
    expect(warnings).toEqual([]);
    expect(emf()).toMatchObject({ customer: "acme", [METRIC.Escalations]: 1 });
    metrics.clearMetrics();
    // Act: a metric for another customer still moves the dimension (Powertools warns of that change;
    // a Lambda serves one customer and never makes it)
    t.escalation({ ...ref, customer: "beta", approvalId: "a2", tool: "save", rule: "over-limit" });
    expect(emf()).toMatchObject({ customer: "beta", [METRIC.Escalations]: 1 });
    expect(warnings).toHaveLength(1);
    // Assess: told nothing about the port's default, the first metric sets it again and Powertools warns
    const unaware = build();
    unaware.t.escalation({ ...ref, approvalId: "a3", tool: "save", rule: "over-limit" });
    expect(warnings.filter((w) => w.includes('Dimension "customer" has already been added'))).toHaveLength(2);
  });

  it("emits EMF metrics with a customer dimension for model calls, tools, escalations and runs", () => {
    // Prepare
    const { t, metrics } = setup();
    // Act
    t.modelCall({
      ...ref,
      turn: 1,
      modelId: "m",
      usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 7 },
      stopReason: "end_turn",
      durationMs: 3,
      costUsd: 0.5,
    });
    t.toolCall({ ...ref, toolUseId: "t1", tool: "save", isError: true, durationMs: 12 });
    t.toolCall({ ...ref, toolUseId: "t2", tool: "save", isError: false, durationMs: 1, replayed: true });
    t.escalation({ ...ref, approvalId: "a1", tool: "save", rule: "over-limit" });
    t.retry({ ...ref, what: "model", reason: "paid call without a stored turn" });
    t.runFinished({
      ...ref,
      outcome: "failed",
      reason: "budget",
      turns: 4,
      durationMs: 90_000,
      waitedMs: 60_000,
      counters: { ...ZERO_COUNTERS, inputTokens: 100, outputTokens: 50, costUsd: 1.25 },
      budgetExceeded: "cost",
      awsCostUsd: 0.0003,
    });
    const emf = metrics.serializeMetrics() as unknown as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
    };
    // Assess
    const directive = emf._aws.CloudWatchMetrics[0];
    expect(directive?.Namespace).toBe("PoAgent");
    expect(directive?.Dimensions[0]).toEqual(expect.arrayContaining(["service", "customer"]));
    expect(emf.customer).toBe("acme");
    expect(emf[METRIC.ModelCalls]).toBe(1);
    expect(emf[METRIC.InputTokens]).toBe(10);
    expect(emf[METRIC.CacheWriteTokens]).toBe(7);
    expect(emf[METRIC.ModelCostUsd]).toBe(0.5);
    expect(emf[METRIC.ToolCalls]).toBe(1); // the replay is not counted again
    expect(emf[METRIC.ToolErrors]).toBe(1);
    expect(emf[METRIC.Escalations]).toBe(1);
    expect(emf[METRIC.Retries]).toBe(1);
    expect(emf[METRIC.RunsFailed]).toBe(1);
    expect(emf[METRIC.TurnsPerRun]).toBe(4);
    expect(emf[METRIC.RunTokens]).toBe(150);
    expect(emf[METRIC.RunCostUsd]).toBe(1.25);
    expect(emf[METRIC.RunActiveDuration]).toBe(30_000);
    expect(emf[METRIC.BudgetExceeded]).toBe(1);
    expect(emf[METRIC.RunAwsCostUsd]).toBe(0.0003);
  });

  it("tags following log lines with the run and PO number and keeps secrets out of them", () => {
    // Prepare
    const { t, lines, logger } = setup();
    // Act
    t.runContext({ ...ref, poNumber: "48291", turn: 3 });
    t.escalation({ ...ref, approvalId: "a1", tool: "save", rule: "ask priya.raman@acme-mfg.example" });
    logger.info("paying", { bankAccount: "DE89370400440532013000", content: "the whole PO text" });
    // Assess
    expect(lines[0]).toMatchObject({
      runId: "acme-abc",
      customer: "acme",
      poNumber: "48291",
      turn: 3,
      rule: "ask [email]",
    });
    expect(lines[1]).toMatchObject({ poNumber: "48291", bankAccount: "[redacted]", content: "[17 chars]" });
    expect(JSON.stringify(lines)).not.toMatch(/priya|DE89|whole PO/);
  });

  it("never throws into the core when a port fails", () => {
    // Prepare
    const lines: Record<string, unknown>[] = [];
    const broken = new PowertoolsTelemetry({
      logger: captureLogger(lines),
      tracer: {
        getSegment: () => {
          throw new Error("no segment");
        },
      },
      metrics: new Metrics({ namespace: "PoAgent" }),
    });
    // Act / Assess
    expect(() => broken.toolCall({ ...ref, toolUseId: "t", tool: "x", isError: false, durationMs: 1 })).not.toThrow();
    expect(lines.some((l) => l.message === "telemetry failed")).toBe(true);
  });
});

describe("fanOut and helpers", () => {
  it("calls every sink even when one throws", () => {
    const seen: string[] = [];
    const throwing: Telemetry = {
      ...noopTelemetry,
      runStarted: () => {
        throw new Error("x");
      },
    };
    const recording: Telemetry = { ...noopTelemetry, runStarted: (r) => seen.push(r.runId) };
    fanOut(throwing, recording).runStarted(ref);
    expect(seen).toEqual(["acme-abc"]);
  });

  it("measures the approval backlog by its oldest pending approval", () => {
    const now = new Date("2026-03-05T12:00:00Z");
    const out = approvalBacklogOf([{ createdAt: "2026-03-05T11:00:00Z" }, { createdAt: "2026-03-03T12:00:00Z" }], now);
    expect(out).toEqual({ pending: 2, oldestAgeSeconds: 2 * 86400 });
    expect(approvalBacklogOf([], now)).toEqual({ pending: 0, oldestAgeSeconds: 0 });
  });
});

describe("the Lambdas' telemetry, as lambdas/shared/observability.ts wires it", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it("carries the Lambda's CUSTOMER as the metrics' dimension, and the first metric of a cold start makes Powertools warn of nothing", async () => {
    // Prepare: a cold start of a Lambda for acme (the module built fresh with its environment); Powertools'
    // own console writes to stderr (global console in POWERTOOLS_DEV)
    vi.stubEnv("CUSTOMER", "acme");
    vi.resetModules();
    const said: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      said.push(String(chunk));
      return true;
    });
    vi.spyOn(console, "warn").mockImplementation((...args) => {
      said.push(args.map(String).join(" "));
    });
    const { metrics, telemetry } = await import("../../lambdas/shared/observability.js");
    const warned = () => said.filter((s) => s.includes('Dimension "customer" has already been added'));

    // Act: the first metric
    telemetry.escalation({ ...ref, approvalId: "a1", tool: "save", rule: "over-limit" });

    // Assess
    expect(warned()).toEqual([]);
    expect(metrics.serializeMetrics()).toMatchObject({ customer: "acme", [METRIC.Escalations]: 1 });
    // ... and the capture does see that warning: setting the dimension again makes it
    metrics.setDefaultDimensions({ customer: "acme" });
    expect(warned()).toHaveLength(1);
    metrics.clearMetrics();
  });
});

describe("metrics of two customers in one invocation", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("leave each with its own customer dimension: a switch publishes what the previous customer stored", () => {
    // Prepare: Powertools' EMF lines, as its console writes them to stdout
    const lines: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    const quiet = { debug() {}, info() {}, error() {}, warn() {} };
    const metrics = new Metrics({ namespace: "PoAgent", serviceName: "po-agent", logger: quiet });
    const t = new PowertoolsTelemetry({ logger: captureLogger([]), tracer: fakeTracer(), metrics });

    // Act: acme's run started, then beta's, before the handler flushes
    t.runStarted({ runId: "acme-1", customer: "acme" });
    t.runStarted({ runId: "beta-1", customer: "beta" });
    metrics.publishStoredMetrics();

    // Assess: one RunsStarted each, under its customer (not both under beta)
    const emf = lines
      .flatMap((l) => l.split("\n"))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf.map((e) => [e.customer, e[METRIC.RunsStarted]])).toEqual([
      ["acme", 1],
      ["beta", 1],
    ]);
  });
});

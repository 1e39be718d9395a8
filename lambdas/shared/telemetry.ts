import type { Counters } from "./ledger/records.js";
import type { Usage } from "./model/types.js";
import { redact } from "./redact.js";

/**
 * What the agent core reports about a run, independent of where it runs: X-Ray subsegments
 * (aws/xray.ts), Powertools EMF metrics and logs in Lambda, the trace store locally, nothing in unit tests.
 * The core calls it after the fact with durations it measured; no method may throw into the core.
 */
export interface Telemetry {
  /** Tags what follows (log lines, trace) with the run once the core has read it. */
  runContext(ref: RunRef): void;
  runStarted(ref: RunRef): void;
  modelCall(e: ModelCallEvent): void;
  toolCall(e: ToolCallEvent): void;
  escalation(e: EscalationEvent): void;
  retry(e: RetryEvent): void;
  runFinished(e: RunFinishedEvent): void;
  /** Pending approvals and the age of the oldest; emitted on a schedule for the backlog alarm. */
  approvalBacklog(e: ApprovalBacklogEvent): void;
}

export interface RunRef {
  runId: string;
  customer: string;
  poNumber?: string;
  turn?: number;
}

export interface ModelCallEvent extends RunRef {
  turn: number;
  modelId: string;
  usage: Usage;
  stopReason: string;
  durationMs: number;
  costUsd: number;
}

export interface ToolCallEvent extends RunRef {
  toolUseId: string;
  tool: string;
  isError: boolean;
  durationMs: number;
  /** Found in the ledger: no work was done (a retry or a restart). */
  replayed?: boolean;
}

export interface EscalationEvent extends RunRef {
  approvalId: string;
  tool: string;
  rule: string;
}

export interface RetryEvent extends RunRef {
  /** What was retried, e.g. `model` (a paid call whose turn was never stored) or `tool:save`. */
  what: string;
  reason: string;
}

export interface RunFinishedEvent extends RunRef {
  outcome: "saved" | "rejected" | "failed" | "handed_to_human";
  reason: string;
  turns: number;
  /** Wall clock from run opened to finished. */
  durationMs: number;
  /** Time spent waiting on humans (sum of approval createdAt→decidedAt); excluded from RunActiveDuration. */
  waitedMs?: number;
  counters: Counters;
  /** Set when the run ended because a budget was used up. */
  budgetExceeded?: "turns" | "tokens" | "cost";
  /** Step Functions + Lambda estimate (cost-estimate.ts), when known. */
  awsCostUsd?: number;
}

export interface ApprovalBacklogEvent {
  customer: string;
  pending: number;
  oldestAgeSeconds: number;
}

/** EMF metric names; lib/observability.ts builds the dashboard and alarms from the same names. */
export const METRIC = {
  RunsStarted: "RunsStarted",
  RunsFinished: "RunsFinished",
  RunsSaved: "RunsSaved",
  RunsRejected: "RunsRejected",
  RunsFailed: "RunsFailed",
  Escalations: "Escalations",
  TurnsPerRun: "TurnsPerRun",
  ModelCalls: "ModelCalls",
  ModelLatency: "ModelLatency",
  InputTokens: "InputTokens",
  OutputTokens: "OutputTokens",
  CacheReadTokens: "CacheReadTokens",
  CacheWriteTokens: "CacheWriteTokens",
  ModelCostUsd: "ModelCostUsd",
  ToolCalls: "ToolCalls",
  ToolErrors: "ToolErrors",
  ToolDuration: "ToolDuration",
  Retries: "Retries",
  RunDuration: "RunDuration",
  RunActiveDuration: "RunActiveDuration",
  RunTokens: "RunTokens",
  RunCostUsd: "RunCostUsd",
  RunAwsCostUsd: "RunAwsCostUsd",
  BudgetExceeded: "BudgetExceeded",
  PendingApprovals: "PendingApprovals",
  ApprovalBacklogAge: "ApprovalBacklogAge",
} as const;

/** Units as Powertools spells them (structurally the same strings as its MetricUnit). */
type Unit = "Count" | "Milliseconds" | "Seconds" | "None";

/** What this module uses of the tracer (aws/xray.ts) and of Powertools: real instances fit, tests pass small fakes. */
export interface SubsegmentPort {
  start_time: number;
  addAnnotation(key: string, value: string | number | boolean): void;
  addMetadata(key: string, value: unknown, namespace?: string): void;
  addErrorFlag(): void;
  close(): void;
}
export interface TracerPort {
  getSegment(): { addNewSubsegment(name: string): SubsegmentPort } | undefined;
}
export interface MetricsPort {
  addMetric(name: string, unit: Unit, value: number): unknown;
  setDefaultDimensions(dimensions: Record<string, string>): unknown;
  /** Powertools' flush; a port without one keeps what it stored (its dimension is then the last customer's). */
  hasStoredMetrics?(): boolean;
  publishStoredMetrics?(): unknown;
}
export interface LoggerPort {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  appendKeys(keys: Record<string, unknown>): void;
}

/** Reports nowhere: the default when nothing is injected. */
export const noopTelemetry: Telemetry = {
  runContext() {},
  runStarted() {},
  modelCall() {},
  toolCall() {},
  escalation() {},
  retry() {},
  runFinished() {},
  approvalBacklog() {},
};

/** X-Ray subsegment names allow letters, digits, whitespace and `_ . : / % & # = + \ - @`; max 200. */
function segmentName(name: string): string {
  return name.replace(/[^\p{L}\p{N}\s_.:/%&#=+\\\-@]/gu, "_").slice(0, 200);
}

/**
 * Lambda implementation: a closed X-Ray subsegment per model and tool call (start time moved back
 * by the measured duration), EMF metrics with a `customer` dimension, and one redacted log line each.
 */
export class PowertoolsTelemetry implements Telemetry {
  /** The customer the metrics port's default dimension names now. */
  private dimensionFor: string | undefined;

  /**
   * `customerDimension`: the customer the metrics port was built with as its default dimension (a
   * Lambda's own, from its environment). Setting it again would make Powertools warn, on the first
   * metric of every cold start, that the dimension "has already been added".
   */
  constructor(
    private readonly ports: { logger: LoggerPort; tracer: TracerPort; metrics: MetricsPort },
    options: { customerDimension?: string | undefined } = {},
  ) {
    this.dimensionFor = options.customerDimension;
  }

  runContext(ref: RunRef): void {
    this.safely(() => {
      const keys: Record<string, unknown> = { runId: ref.runId, customer: ref.customer };
      if (ref.poNumber) keys.poNumber = ref.poNumber;
      if (ref.turn !== undefined) keys.turn = ref.turn;
      this.ports.logger.appendKeys(keys);
    });
  }

  runStarted(ref: RunRef): void {
    this.safely(() => {
      this.count(ref.customer, METRIC.RunsStarted);
      this.ports.logger.info("run started", { runId: ref.runId });
    });
  }

  modelCall(e: ModelCallEvent): void {
    this.safely(() => {
      this.subsegment(`model ${e.modelId}`, e.durationMs, (s) => {
        s.addAnnotation("runId", e.runId);
        s.addAnnotation("turn", e.turn);
        s.addAnnotation("modelId", e.modelId);
        s.addAnnotation("stopReason", e.stopReason);
        s.addMetadata("usage", e.usage);
        s.addMetadata("costUsd", e.costUsd);
      });
      const m = this.metrics(e.customer);
      m.addMetric(METRIC.ModelCalls, "Count", 1);
      m.addMetric(METRIC.ModelLatency, "Milliseconds", e.durationMs);
      m.addMetric(METRIC.InputTokens, "Count", e.usage.input_tokens);
      m.addMetric(METRIC.OutputTokens, "Count", e.usage.output_tokens);
      m.addMetric(METRIC.CacheReadTokens, "Count", e.usage.cache_read_input_tokens ?? 0);
      m.addMetric(METRIC.CacheWriteTokens, "Count", e.usage.cache_creation_input_tokens ?? 0);
      m.addMetric(METRIC.ModelCostUsd, "None", e.costUsd);
      this.ports.logger.info("model call", {
        turn: e.turn,
        modelId: e.modelId,
        stopReason: e.stopReason,
        durationMs: e.durationMs,
        usage: e.usage,
        costUsd: e.costUsd,
      });
    });
  }

  toolCall(e: ToolCallEvent): void {
    this.safely(() => {
      this.subsegment(`tool ${e.tool}`, e.durationMs, (s) => {
        s.addAnnotation("runId", e.runId);
        s.addAnnotation("tool", e.tool);
        s.addAnnotation("toolUseId", e.toolUseId);
        s.addAnnotation("isError", e.isError);
        s.addAnnotation("replayed", e.replayed === true);
        if (e.isError) s.addErrorFlag();
      });
      if (e.replayed) return;
      const m = this.metrics(e.customer);
      m.addMetric(METRIC.ToolCalls, "Count", 1);
      m.addMetric(METRIC.ToolErrors, "Count", e.isError ? 1 : 0);
      m.addMetric(METRIC.ToolDuration, "Milliseconds", e.durationMs);
      this.ports.logger.info("tool call", {
        tool: e.tool,
        toolUseId: e.toolUseId,
        isError: e.isError,
        durationMs: e.durationMs,
      });
    });
  }

  escalation(e: EscalationEvent): void {
    this.safely(() => {
      this.count(e.customer, METRIC.Escalations);
      this.ports.logger.info("escalated to a human", { approvalId: e.approvalId, tool: e.tool, rule: e.rule });
    });
  }

  retry(e: RetryEvent): void {
    this.safely(() => {
      this.count(e.customer, METRIC.Retries);
      this.ports.logger.warn("retry", { what: e.what, reason: e.reason });
    });
  }

  runFinished(e: RunFinishedEvent): void {
    this.safely(() => {
      const m = this.metrics(e.customer);
      const c = e.counters;
      m.addMetric(METRIC.RunsFinished, "Count", 1);
      m.addMetric(METRIC.RunsSaved, "Count", e.outcome === "saved" ? 1 : 0);
      m.addMetric(METRIC.RunsRejected, "Count", e.outcome === "rejected" ? 1 : 0);
      m.addMetric(METRIC.RunsFailed, "Count", e.outcome === "failed" ? 1 : 0);
      m.addMetric(METRIC.TurnsPerRun, "Count", e.turns);
      m.addMetric(METRIC.RunDuration, "Milliseconds", e.durationMs);
      m.addMetric(METRIC.RunActiveDuration, "Milliseconds", Math.max(0, e.durationMs - (e.waitedMs ?? 0)));
      m.addMetric(METRIC.RunTokens, "Count", c.inputTokens + c.outputTokens);
      m.addMetric(METRIC.RunCostUsd, "None", c.costUsd);
      m.addMetric(METRIC.BudgetExceeded, "Count", e.budgetExceeded ? 1 : 0);
      if (e.awsCostUsd !== undefined) m.addMetric(METRIC.RunAwsCostUsd, "None", e.awsCostUsd);
      this.ports.logger.info("run finished", {
        outcome: e.outcome,
        reason: e.reason,
        turns: e.turns,
        durationMs: e.durationMs,
        counters: c,
        ...(e.budgetExceeded ? { budgetExceeded: e.budgetExceeded } : {}),
      });
    });
  }

  approvalBacklog(e: ApprovalBacklogEvent): void {
    this.safely(() => {
      const m = this.metrics(e.customer);
      m.addMetric(METRIC.PendingApprovals, "Count", e.pending);
      m.addMetric(METRIC.ApprovalBacklogAge, "Seconds", e.oldestAgeSeconds);
    });
  }

  private metrics(customer: string): MetricsPort {
    if (this.dimensionFor !== customer) {
      // The default dimension applies when the metrics are serialized: what the previous customer stored
      // leaves now, under its own customer, not under this one.
      if (this.ports.metrics.hasStoredMetrics?.()) this.ports.metrics.publishStoredMetrics?.();
      this.ports.metrics.setDefaultDimensions({ customer });
      this.dimensionFor = customer;
    }
    return this.ports.metrics;
  }

  private count(customer: string, name: string): void {
    this.metrics(customer).addMetric(name, "Count", 1);
  }

  private subsegment(name: string, durationMs: number, fill: (s: SubsegmentPort) => void): void {
    const parent = this.ports.tracer.getSegment();
    if (!parent) return;
    const s = parent.addNewSubsegment(segmentName(name));
    s.start_time = (Date.now() - Math.max(0, durationMs)) / 1000;
    try {
      fill(s);
    } finally {
      s.close();
    }
  }

  /** Telemetry never breaks a run: a failure to report is logged (redacted) and dropped. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.ports.logger.warn("telemetry failed", { error: redact(err) as Record<string, unknown> });
      } catch {
        // Nothing left to report to.
      }
    }
  }
}

/** Calls every sink (e.g. Powertools and a local trace store); one failing sink does not stop the others. */
export function fanOut(...sinks: Telemetry[]): Telemetry {
  const each =
    <K extends keyof Telemetry>(k: K) =>
    (e: Parameters<Telemetry[K]>[0]) => {
      for (const s of sinks) {
        try {
          (s[k] as (x: typeof e) => void)(e);
        } catch {
          // A sink must not break the run.
        }
      }
    };
  return {
    runContext: each("runContext"),
    runStarted: each("runStarted"),
    modelCall: each("modelCall"),
    toolCall: each("toolCall"),
    escalation: each("escalation"),
    retry: each("retry"),
    runFinished: each("runFinished"),
    approvalBacklog: each("approvalBacklog"),
  };
}

/** Age of the oldest pending approval; what the scheduled backlog check reports. */
export function approvalBacklogOf(
  pending: readonly { createdAt: string }[],
  now: Date,
): { pending: number; oldestAgeSeconds: number } {
  const oldest = pending.reduce((min, a) => Math.min(min, Date.parse(a.createdAt)), now.getTime());
  return { pending: pending.length, oldestAgeSeconds: Math.max(0, Math.round((now.getTime() - oldest) / 1000)) };
}

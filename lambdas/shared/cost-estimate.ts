import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { z } from "zod/v3";
import type { Counters } from "./ledger/records.js";

/**
 * AWS list prices for US East (N. Virginia), checked on AWS_PRICE_DATE against the public pricing
 * pages of Step Functions, Lambda, DynamoDB, S3, CloudWatch and X-Ray. Free tiers (4,000 transitions,
 * 400,000 GB-s, 5 GB of logs, 100,000 traces a month per account) and volume tiers are ignored: the
 * estimate is what one more run costs a busy account, an upper bound. Not counted: SES (only when an
 * approval mails), data transfer (in-region, free), Secrets Manager API calls (cached per container).
 */
export const AWS_PRICE_DATE = "2026-11-25";

export const AWS_PRICES = {
  /** Step Functions Standard, USD per state transition ($0.025 per 1,000; each retry is one more). */
  stepFunctionsPerTransition: 0.025 / 1000,
  /** Lambda on arm64 (Graviton), USD per GB-second, first pricing tier. */
  lambdaArm64PerGbSecond: 0.0000133334,
  /** Lambda, USD per request ($0.20 per million). */
  lambdaPerRequest: 0.2 / 1_000_000,
  /** DynamoDB on-demand, USD per write request unit ($0.625 per million). */
  dynamodbPerWriteUnit: 0.625 / 1_000_000,
  /** DynamoDB on-demand, USD per read request unit ($0.125 per million). */
  dynamodbPerReadUnit: 0.125 / 1_000_000,
  /** S3 Standard PUT, COPY, POST, LIST: $0.005 per 1,000 requests. */
  s3PerWriteRequest: 0.005 / 1000,
  /** S3 Standard GET, HEAD and other requests: $0.0004 per 1,000. */
  s3PerReadRequest: 0.0004 / 1000,
  /** S3 Standard storage, USD per GB-month (first 50 TB); a run's objects are priced for one month. */
  s3PerGbMonth: 0.023,
  /** CloudWatch Logs ingestion (standard and vended logs, first 10 TB), USD per GB. */
  logsPerGbIngested: 0.5,
  /** X-Ray, USD per trace recorded ($5.00 per million). */
  xrayPerTrace: 5 / 1_000_000,
} as const;

const GB = 1024 ** 3;

/**
 * What one Lambda invocation reports about itself (lambdas/shared/usage-meter.ts): measured in the
 * process, returned beside the handler's result as `awsUsage`, so it is in the execution history.
 */
export const InvocationUsage = z.object({
  memoryMb: z.number(),
  durationMs: z.number(),
  dynamodbReadUnits: z.number(),
  dynamodbWriteUnits: z.number(),
  s3WriteRequests: z.number(),
  s3ReadRequests: z.number(),
  s3BytesWritten: z.number(),
  s3BytesRead: z.number(),
  logBytes: z.number(),
});
export type InvocationUsage = z.infer<typeof InvocationUsage>;

/** The key of a handler's result that carries its InvocationUsage (dropped by every ResultSelector). */
export const USAGE_KEY = "awsUsage";

/** What one run used on AWS, as counted from its execution history (or the local engine's). */
export interface AwsUsage {
  /** State transitions of the execution (states entered, plus one per retry). */
  stateTransitions: number;
  /** One entry per Lambda invocation of the run. */
  lambdaInvocations: readonly { durationMs: number; memoryMb: number }[];
  dynamodb?: { readUnits: number; writeUnits: number };
  s3?: { writeRequests: number; readRequests: number; bytesWritten: number; bytesRead: number };
  /** Bytes ingested by CloudWatch Logs: the functions' own lines and the state machine's (level ALL). */
  logBytes?: number;
  xrayTraces?: number;
  /** Where the figures come from: the execution history, or the run's shape when the history was unreadable. */
  source?: "history" | "shape";
}

export const AwsCostEstimate = z.object({
  stepFunctionsUsd: z.number(),
  lambdaUsd: z.number(),
  dynamodbUsd: z.number().default(0),
  s3Usd: z.number().default(0),
  logsUsd: z.number().default(0),
  xrayUsd: z.number().default(0),
  totalUsd: z.number(),
  stateTransitions: z.number(),
  lambdaInvocations: z.number(),
  lambdaGbSeconds: z.number(),
  dynamodbReadUnits: z.number().default(0),
  dynamodbWriteUnits: z.number().default(0),
  s3Requests: z.number().default(0),
  s3BytesWritten: z.number().default(0),
  logBytes: z.number().default(0),
  xrayTraces: z.number().default(0),
  source: z.enum(["history", "shape"]).default("shape"),
  priceDate: z.string(),
});
export type AwsCostEstimate = z.infer<typeof AwsCostEstimate>;

/** Dollars for one run. Lambda bills whole milliseconds, rounded up. */
export function estimateAwsCost(usage: AwsUsage): AwsCostEstimate {
  let gbSeconds = 0;
  for (const inv of usage.lambdaInvocations) {
    gbSeconds += (inv.memoryMb / 1024) * (Math.ceil(Math.max(0, inv.durationMs)) / 1000);
  }
  const p = AWS_PRICES;
  const ddb = usage.dynamodb ?? { readUnits: 0, writeUnits: 0 };
  const s3 = usage.s3 ?? { writeRequests: 0, readRequests: 0, bytesWritten: 0, bytesRead: 0 };
  const logBytes = usage.logBytes ?? 0;
  const xrayTraces = usage.xrayTraces ?? 0;
  const stepFunctionsUsd = usage.stateTransitions * p.stepFunctionsPerTransition;
  const lambdaUsd = gbSeconds * p.lambdaArm64PerGbSecond + usage.lambdaInvocations.length * p.lambdaPerRequest;
  const dynamodbUsd = ddb.readUnits * p.dynamodbPerReadUnit + ddb.writeUnits * p.dynamodbPerWriteUnit;
  const s3Usd =
    s3.writeRequests * p.s3PerWriteRequest +
    s3.readRequests * p.s3PerReadRequest +
    (s3.bytesWritten / GB) * p.s3PerGbMonth;
  const logsUsd = (logBytes / GB) * p.logsPerGbIngested;
  const xrayUsd = xrayTraces * p.xrayPerTrace;
  return {
    stepFunctionsUsd,
    lambdaUsd,
    dynamodbUsd,
    s3Usd,
    logsUsd,
    xrayUsd,
    totalUsd: stepFunctionsUsd + lambdaUsd + dynamodbUsd + s3Usd + logsUsd + xrayUsd,
    stateTransitions: usage.stateTransitions,
    lambdaInvocations: usage.lambdaInvocations.length,
    lambdaGbSeconds: gbSeconds,
    dynamodbReadUnits: ddb.readUnits,
    dynamodbWriteUnits: ddb.writeUnits,
    s3Requests: s3.writeRequests + s3.readRequests,
    s3BytesWritten: s3.bytesWritten,
    logBytes,
    xrayTraces,
    source: usage.source ?? "shape",
    priceDate: AWS_PRICE_DATE,
  };
}

/**
 * States the execution still enters after the Task that writes the cost record (so not yet in the
 * history it reads): Finalize → IsFailedOutcome → Done | RunFailed; RecordFailure → Failed. Checked
 * against statemachines/agent.asl.json by test/infra/cost-truth.test.ts.
 */
export const TRANSITIONS_AFTER = { Finalize: 2, RecordFailure: 1 } as const;

/** Bytes Lambda itself writes per invocation (START, END and REPORT lines), beside the function's own. */
export const LAMBDA_PLATFORM_LOG_BYTES = 350;
const DEFAULT_MEMORY_MB = 256;

/**
 * Counts what an execution used from its history (GetExecutionHistory's events, oldest first, read
 * while the execution runs): one transition per state entered plus one per retry (a Task attempt
 * scheduled again inside the same state entry), one Lambda invocation per TaskScheduled of a Lambda
 * resource, each priced at the memory and duration it reported (its `awsUsage`) or, for an attempt
 * that failed, timed by its Started→Failed events at the memory its function reported elsewhere.
 * DynamoDB, S3 and log bytes are the invocations' own reports; the state machine's log lines (level
 * ALL with execution data) are priced at the size of its events; one X-Ray trace per execution.
 * `extraTransitions` are states still to come (TRANSITIONS_AFTER); an invocation still running (the
 * caller's own) is timed to `now`.
 */
export function usageFromHistory(
  events: readonly HistoryEvent[],
  opts: { extraTransitions?: number; now?: Date; ownUsage?: InvocationUsage } = {},
): AwsUsage {
  let entered = 0;
  let taskEntries = 0;
  let scheduled = 0;
  let sfnLogBytes = 0;
  type Attempt = { fn: string; startedAt?: number; usage?: InvocationUsage; endedAt?: number };
  const invocations: Attempt[] = [];
  // Parallel Map iterations interleave their events: each links to the one before it by previousEventId.
  const byEvent = new Map<number, Attempt>();
  const memoryOf = new Map<string, number>();
  for (const e of events) {
    sfnLogBytes += JSON.stringify(e).length;
    const type = String(e.type ?? "");
    if (type.endsWith("StateEntered")) {
      entered++;
      if (type === "TaskStateEntered") taskEntries++;
      continue;
    }
    const at = e.timestamp ? new Date(e.timestamp).getTime() : undefined;
    const prior = e.previousEventId !== undefined ? byEvent.get(e.previousEventId) : undefined;
    if (type === "TaskScheduled" && e.taskScheduledEventDetails?.resourceType === "lambda") {
      scheduled++;
      const attempt: Attempt = { fn: functionNameIn(e.taskScheduledEventDetails.parameters) };
      invocations.push(attempt);
      if (e.id !== undefined) byEvent.set(e.id, attempt);
    } else if (type === "TaskStarted" && prior) {
      prior.startedAt = at;
      if (e.id !== undefined) byEvent.set(e.id, prior);
    } else if ((type === "TaskSucceeded" || type === "TaskSubmitted") && prior) {
      prior.endedAt = at;
      prior.usage = usageIn(e.taskSucceededEventDetails?.output ?? e.taskSubmittedEventDetails?.output);
      if (prior.usage) memoryOf.set(prior.fn, prior.usage.memoryMb);
    } else if ((type === "TaskFailed" || type === "TaskTimedOut" || type === "TaskStartFailed") && prior) {
      prior.endedAt = at ?? prior.startedAt;
    }
  }
  const now = (opts.now ?? new Date()).getTime();
  let still = 0;
  const lambdaInvocations = invocations.map((inv) => {
    if (inv.usage) return { durationMs: inv.usage.durationMs, memoryMb: inv.usage.memoryMb };
    const running = inv.endedAt === undefined;
    if (running) still++;
    const own = running ? opts.ownUsage : undefined;
    const durationMs = own ? own.durationMs : Math.max(0, (inv.endedAt ?? now) - (inv.startedAt ?? inv.endedAt ?? now));
    return { durationMs, memoryMb: own?.memoryMb ?? memoryOf.get(inv.fn) ?? DEFAULT_MEMORY_MB };
  });
  const reports = invocations.flatMap((i) => (i.usage ? [i.usage] : []));
  if (still > 0 && opts.ownUsage) reports.push(opts.ownUsage);
  const sum = (f: (u: InvocationUsage) => number) => reports.reduce((n, u) => n + f(u), 0);
  return {
    stateTransitions: entered + Math.max(0, scheduled - taskEntries) + (opts.extraTransitions ?? 0),
    lambdaInvocations,
    dynamodb: { readUnits: sum((u) => u.dynamodbReadUnits), writeUnits: sum((u) => u.dynamodbWriteUnits) },
    s3: {
      writeRequests: sum((u) => u.s3WriteRequests),
      readRequests: sum((u) => u.s3ReadRequests),
      bytesWritten: sum((u) => u.s3BytesWritten),
      bytesRead: sum((u) => u.s3BytesRead),
    },
    logBytes: sum((u) => u.logBytes) + lambdaInvocations.length * LAMBDA_PLATFORM_LOG_BYTES + sfnLogBytes,
    xrayTraces: 1,
    source: "history",
  };
}

/** Adds two usages (a retried run: its earlier executions and the current one). */
export function addUsage(a: AwsUsage, b: AwsUsage): AwsUsage {
  return {
    stateTransitions: a.stateTransitions + b.stateTransitions,
    lambdaInvocations: [...a.lambdaInvocations, ...b.lambdaInvocations],
    dynamodb: {
      readUnits: (a.dynamodb?.readUnits ?? 0) + (b.dynamodb?.readUnits ?? 0),
      writeUnits: (a.dynamodb?.writeUnits ?? 0) + (b.dynamodb?.writeUnits ?? 0),
    },
    s3: {
      writeRequests: (a.s3?.writeRequests ?? 0) + (b.s3?.writeRequests ?? 0),
      readRequests: (a.s3?.readRequests ?? 0) + (b.s3?.readRequests ?? 0),
      bytesWritten: (a.s3?.bytesWritten ?? 0) + (b.s3?.bytesWritten ?? 0),
      bytesRead: (a.s3?.bytesRead ?? 0) + (b.s3?.bytesRead ?? 0),
    },
    logBytes: (a.logBytes ?? 0) + (b.logBytes ?? 0),
    xrayTraces: (a.xrayTraces ?? 0) + (b.xrayTraces ?? 0),
    source: a.source === "history" && b.source === "history" ? "history" : "shape",
  };
}

function functionNameIn(parameters: string | undefined): string {
  try {
    return String((JSON.parse(parameters ?? "{}") as { FunctionName?: unknown }).FunctionName ?? "");
  } catch {
    return ""; // the service's own JSON; an unreadable one only loses the function name
  }
}

function usageIn(output: string | undefined): InvocationUsage | undefined {
  if (!output) return undefined;
  try {
    const payload = (JSON.parse(output) as { Payload?: Record<string, unknown> }).Payload;
    const parsed = InvocationUsage.safeParse(payload?.[USAGE_KEY]);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The per-run cost record kept in the ledger: model tokens by kind and dollars, plus the AWS figures. */
export const RunCostRecord = z.object({
  runId: z.string(),
  customer: z.string(),
  tokens: z.object({ input: z.number(), output: z.number(), cacheRead: z.number(), cacheWrite: z.number() }),
  modelUsd: z.number(),
  aws: AwsCostEstimate,
  totalUsd: z.number(),
});
export type RunCostRecord = z.infer<typeof RunCostRecord>;

export function runCostRecord(input: {
  runId: string;
  customer: string;
  counters: Counters;
  aws: AwsUsage;
}): RunCostRecord {
  const aws = estimateAwsCost(input.aws);
  const c = input.counters;
  return {
    runId: input.runId,
    customer: input.customer,
    tokens: {
      input: c.inputTokens,
      output: c.outputTokens,
      cacheRead: c.cacheReadTokens,
      cacheWrite: c.cacheWriteTokens,
    },
    modelUsd: c.costUsd,
    aws,
    totalUsd: c.costUsd + aws.totalUsd,
  };
}

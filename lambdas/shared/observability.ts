import { LogFormatter, Logger, LogItem } from "@aws-lambda-powertools/logger";
import type { LogAttributes, UnformattedAttributes } from "@aws-lambda-powertools/logger/types";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { XRayTracer } from "./aws/xray.js";
import { redact, redactText } from "./redact.js";
import { PowertoolsTelemetry } from "./telemetry.js";

const SERVICE = process.env.POWERTOOLS_SERVICE_NAME ?? "po-agent";

/** EMF namespace and the service dimension every metric carries; lib/observability.ts reads the same values. */
export const METRICS_NAMESPACE = process.env.POWERTOOLS_METRICS_NAMESPACE ?? "PoAgent";
export const SERVICE_NAME = SERVICE;

/**
 * Powertools' own layout with every value passed through `redact`: whatever a caller logs,
 * e-mail addresses, bank details, secrets and document content never reach CloudWatch.
 */
export class RedactingLogFormatter extends LogFormatter {
  formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    const ctx = attributes.lambdaContext;
    const base: LogAttributes = {
      level: attributes.logLevel,
      message: redactText(attributes.message),
      timestamp: this.formatTimestamp(attributes.timestamp),
      service: attributes.serviceName,
      cold_start: ctx?.coldStart,
      function_name: ctx?.functionName,
      function_request_id: ctx?.awsRequestId,
      sampling_rate: attributes.sampleRateValue,
      xray_trace_id: attributes.xRayTraceId,
    };
    return new LogItem({ attributes: base }).addAttributes(redact(additional) as LogAttributes);
  }
}

/**
 * One instrumentation style everywhere: Logger, tracer and Metrics are created once here and
 * imported by every handler. Service name and namespace come from POWERTOOLS_* variables set by CDK;
 * every metric carries a `customer` dimension (the stack's customer) next to Powertools' `service`.
 * Logger and Metrics are Powertools; the tracer is our own X-Ray emitter (aws/xray.ts: the X-Ray SDK
 * under Powertools Tracer is in maintenance mode and cost 30-50 ms of every cold start), exception
 * messages redacted like log lines.
 */
export const logger = new Logger({ serviceName: SERVICE, logFormatter: new RedactingLogFormatter() });
export const tracer = new XRayTracer({ redact: redactText });
tracer.traceFetch();
export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: SERVICE,
  ...(process.env.CUSTOMER ? { defaultDimensions: { customer: process.env.CUSTOMER } } : {}),
});

/** The keys every log line of one invocation carries. Only ids and numbers: nothing to redact. */
export interface RunLogKeys {
  runId?: string;
  customer?: string;
  poNumber?: string;
  turn?: number;
}

const RUN_KEYS = ["runId", "customer", "poNumber", "turn"] as const;

/** Tags the logger (every following line) and the trace (searchable annotations) with the run. */
export function tagRun(keys: RunLogKeys): void {
  const present = Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined && v !== ""));
  logger.appendKeys(present);
  for (const [k, v] of Object.entries(present)) tracer.putAnnotation(k, v as string | number);
}

/** Drops the run keys at the end of an invocation: a warm container serves the next run clean. */
export function untagRun(): void {
  logger.removeKeys([...RUN_KEYS]);
}

/** The Telemetry every Lambda hands to the agent core (AgentDeps.telemetry). */
export const telemetry = new PowertoolsTelemetry(
  { logger, tracer, metrics },
  { customerDimension: process.env.CUSTOMER },
);

import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";

/**
 * One instrumentation style everywhere: Logger, Tracer and Metrics are created once here and
 * imported by every handler. Service name and namespace come from POWERTOOLS_* variables set by CDK.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "po-agent" });
export const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "po-agent" });
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? "PoAgent",
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "po-agent",
});

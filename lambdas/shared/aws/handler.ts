import type { Context } from "aws-lambda";
import type { z } from "zod";
import { logger, metrics, tracer } from "../observability.js";

/**
 * The one handler wrapper: parse the event with zod at the edge, tag logs and the trace with
 * the run, publish metrics, and let errors through by name (Step Functions matches on it).
 */
export function instrumented<S extends z.ZodTypeAny, R>(
  name: string,
  schema: S,
  core: (input: z.infer<S>) => Promise<R>,
): (event: unknown, context?: Context) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    const input = schema.parse(event) as z.infer<S>;
    const runId = (input as { runId?: string }).runId;
    if (runId) {
      logger.appendKeys({ runId });
      tracer.putAnnotation("runId", runId);
    }
    const segment = tracer.getSegment();
    const sub = segment?.addNewSubsegment(`## ${name}`);
    if (sub) tracer.setSegment(sub);
    try {
      const result = await core(input);
      logger.info(`${name} done`);
      return result;
    } catch (err) {
      logger.error(`${name} failed`, err as Error);
      sub?.addError(err as Error);
      throw err;
    } finally {
      sub?.close();
      if (segment) tracer.setSegment(segment);
      metrics.publishStoredMetrics();
      if (runId) logger.removeKeys(["runId"]);
    }
  };
}

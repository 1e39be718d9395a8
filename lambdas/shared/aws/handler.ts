import type { Context } from "aws-lambda";
import type { z } from "zod/v3";
import { logger, metrics, tagRun, tracer, untagRun } from "../observability.js";
import { withUsage } from "../usage-meter.js";

/** Run keys an event may carry at the edge; the core adds `poNumber` once it has read the run. */
function keysOf(input: unknown): { runId?: string; turn?: number } {
  const i = (input ?? {}) as { runId?: unknown; turn?: unknown; step?: { turn?: unknown } };
  const turn = typeof i.turn === "number" ? i.turn : typeof i.step?.turn === "number" ? i.step.turn : undefined;
  return { ...(typeof i.runId === "string" ? { runId: i.runId } : {}), ...(turn !== undefined ? { turn } : {}) };
}

/**
 * The one handler wrapper: parse the event with zod at the edge, tag every log line and the trace
 * with the run (runId, customer, turn; poNumber via Telemetry.runContext), publish metrics, and let
 * errors through by name (Step Functions matches on it).
 */
export function instrumented<S extends z.ZodTypeAny, R>(
  name: string,
  schema: S,
  core: (input: z.infer<S>) => Promise<R>,
): (event: unknown, context?: Context) => Promise<R> {
  const inner = invocation(name, schema, core);
  // What the invocation used rides beside its result into the execution history (every state's
  // ResultSelector drops it), where Finalize counts the run's cost from it (cost-estimate.ts).
  return (event, context) => withUsage(() => inner(event, context));
}

function invocation<S extends z.ZodTypeAny, R>(
  name: string,
  schema: S,
  core: (input: z.infer<S>) => Promise<R>,
): (event: unknown, context?: Context) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    try {
      // The handler's subsegment (sampled invocations only) parents every AWS, model and tool call of it
      // and carries the run's annotations; a throw marks it a fault with the (redacted) exception.
      return await tracer.inSubsegment(`## ${name}`, async () => {
        const input = schema.parse(event) as z.infer<S>;
        tagRun({ ...keysOf(input), customer: process.env.CUSTOMER });
        const result = await core(input);
        logger.info(`${name} done`);
        return result;
      });
    } catch (err) {
      logger.error(`${name} failed`, err as Error);
      throw err;
    } finally {
      metrics.publishStoredMetrics();
      untagRun();
    }
  };
}

/** The parts of a Function URL answer the wrapper reads (payload format 2.0, structured or not). */
type UrlAnswer = { statusCode?: number } | string;

export interface InstrumentedUrlOptions<E, R> {
  /**
   * The answer a thrown error gets once it is logged and traced, for a handler whose framework answered
   * errors itself before (the callback's hono: a 500 page). Without it the error is rethrown: Lambda
   * reports it as a function error, and the Function URL answers the caller with its own error page.
   */
  answerError?(err: unknown, event: E): Promise<R>;
}

/**
 * The wrapper for a Function URL handler: what `instrumented` gives a Step Functions task (the Lambda
 * context on every log line, the `## <name>` subsegment parenting every AWS call, the customer on log
 * lines and trace, an error line for a throw, metrics flushed), without zod (the event is an HTTP request,
 * which the handler judges and answers) and without the usage beside the result (the result is the HTTP
 * answer, and no execution history counts it). The answer's status goes on the subsegment (4xx error,
 * 5xx fault); the request's path does not, since an approval link's path is its signed token.
 */
export function instrumentedUrl<E, R extends UrlAnswer>(
  name: string,
  core: (event: E) => Promise<R>,
  opts: InstrumentedUrlOptions<E, R> = {},
): (event: E, context?: Context) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    try {
      return await tracer.inSubsegment(`## ${name}`, async (sub) => {
        tagRun({ customer: process.env.CUSTOMER });
        const answer = await core(event);
        const status = typeof answer === "string" ? 200 : (answer.statusCode ?? 200);
        sub?.setHttpStatus(status);
        sub?.flagStatus(status);
        return answer;
      });
    } catch (err) {
      logger.error(`${name} failed`, err as Error);
      if (opts.answerError) return await opts.answerError(err, event);
      throw err;
    } finally {
      metrics.publishStoredMetrics();
      untagRun();
    }
  };
}

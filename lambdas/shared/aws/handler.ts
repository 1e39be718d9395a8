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

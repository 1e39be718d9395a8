import type { z } from "zod";
import type { BuiltInLane, Effect, Prefix } from "../catalogue.js";
import type { ToolContext, ToolOutput, ToolSpec } from "./types.js";

/**
 * How a built-in tool is declared: one file `tools/<lane>/<name>.ts` exports its `spec` (this) and its
 * `run`, and one line of `tools/builtins.ts` lists it. The spec is everything the catalogue, the CDK
 * grants, the guard and the model know of the tool; it is light by rule, so that the orchestrator
 * (which shows the model every spec) bundles no tool's implementation:
 *
 * - a tool file imports statically only zod, `./define.js`, `./schemas.js` and types;
 * - everything `run` needs beyond that it loads with `await import(...)` inside `run`: esbuild drops
 *   a dynamic import with the unused `run` from the orchestrator's bundle, and inlines it in the
 *   bundle of the lane's Lambda, which uses `run` (test/infra/catalogue.test.ts bundles the specs and
 *   fails on any implementation module in them).
 */
export interface BuiltInToolSpec<N extends string = string, I = unknown> extends ToolSpec<I> {
  readonly name: N;
  /** The lane whose Lambda runs it (lambdas/shared/catalogue.ts LANES); its file lives in `tools/<lane>/`. */
  readonly lane: BuiltInLane;
  /** Bucket prefixes its code reads: the lane Lambda's IAM read grants follow. @default - none */
  readonly reads?: readonly Prefix[];
  /** Bucket prefixes its code writes: the lane Lambda's IAM write grants follow. @default - none */
  readonly writes?: readonly Prefix[];
}

/** A built-in tool's spec, its input type inferred from the zod schema. */
export function toolSpec<const N extends string, S extends z.ZodType<unknown, z.ZodTypeDef, unknown>>(spec: {
  name: N;
  lane: BuiltInLane;
  effect: Effect;
  reads?: readonly Prefix[];
  writes?: readonly Prefix[];
  description: string;
  input: S;
}): BuiltInToolSpec<N, z.infer<S>> {
  return spec as BuiltInToolSpec<N, z.infer<S>>;
}

/** The type of a tool file's `run`, from its spec. */
export type RunOf<S> = S extends ToolSpec<infer I> ? (input: I, ctx: ToolContext) => Promise<ToolOutput> : never;

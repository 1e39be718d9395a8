import type { z } from "zod/v3";
import type { BuiltInLane, Effect, Prefix } from "../catalogue.js";
import type { ToolContext, ToolOutput, ToolSpec } from "./types.js";

/**
 * How a built-in tool is declared: one file `tools/<lane>/<name>.ts` exports its `spec` (this) and its
 * `run`, and one line of `tools/builtins.ts` lists it. The spec is everything the catalogue, the CDK
 * grants, the guard and the model know of the tool; it must stay light, so that the orchestrator
 * (which shows the model every spec) and every other reader of the catalogue bundle no tool's code:
 *
 * - a tool file imports only zod, `../define.js`, `../schemas.js`, schema modules (po/model,
 *   ledger/records) and types; no `import()` (with code splitting esbuild emits its chunk in every
 *   bundle that reads the specs, used or not);
 * - `run(input, ctx, lib)` gets the code it runs as `lib`: its lane's `tools/lib/<lane>.ts`, imported
 *   by the lane's module (tools/<lane>.ts) only, so it is in the lane's Lambda and nowhere else. A
 *   tool file names it as a type (`import type * as Lib from "../lib/<lane>.js"`).
 *
 * test/infra/catalogue.test.ts bundles the catalogue and fails on any implementation module in it.
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

/** The type of a tool file's `run`, from its spec and the lane's code it is handed (tools/lib/<lane>.ts). */
export type RunOf<S, Lib = unknown> =
  S extends ToolSpec<infer I> ? (input: I, ctx: ToolContext, lib: Lib) => Promise<ToolOutput> : never;

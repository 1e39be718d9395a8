import { z } from "zod/v3";
import { type BuiltInLane, TOOLS, type ToolName, toolsOfLane } from "../catalogue.js";
import { ToolCallRef } from "../steps.js";
import type { Tool, ToolContext, ToolOutput } from "./types.js";

/**
 * The event a lane's Lambda accepts: a call of one of that lane's tools (from the catalogue), so a
 * tool routed to the lane's state is never refused at the edge and no other tool gets in.
 */
export function laneCallInput(lane: BuiltInLane) {
  const names = toolsOfLane(lane);
  if (names.length === 0) throw new Error(`lane ${lane} has no tools (lambdas/shared/catalogue.ts)`);
  return z.object({
    runId: z.string(),
    // `lane` is absent on a call from an execution still running on a definition from before lanes.
    call: ToolCallRef.extend({ name: z.enum(names as [ToolName, ...ToolName[]]), lane: z.literal(lane).optional() }),
  });
}

/** What a tool file's module is, as far as a lane's Lambda needs: its `run`, handed the lane's code. */
type ToolModule = { run: (input: unknown, ctx: ToolContext, lib: unknown) => Promise<ToolOutput> };

/**
 * A lane's tools as its Lambda runs them: each catalogue tool of the lane, with its spec and a `run`
 * that loads `tools/<lane>/<name>.ts` on the first call and hands it `lib`, the lane's code
 * (tools/lib/<lane>.ts). `load` is the lane module's own
 * `import(`./<lane>/${name}.ts`)`: esbuild bundles every file of that folder (and no other lane's)
 * into the lane's Lambda; in tests and the local runtime it is a plain dynamic import.
 */
export function laneTools(
  lane: BuiltInLane,
  load: (name: string) => Promise<unknown>,
  lib: unknown = {},
): readonly Tool[] {
  const names = toolsOfLane(lane);
  if (names.length === 0) throw new Error(`lane ${lane} has no tools (lambdas/shared/tools/builtins.ts)`);
  return names.map((name): Tool => {
    let module: Promise<ToolModule> | undefined;
    return {
      ...(TOOLS[name] as unknown as Tool),
      run: async (input, ctx) => {
        module ??= load(name)
          .then((m) => toolModule(lane, name, m))
          .catch((err: unknown) => {
            module = undefined; // tried again by the next call, not cached as a failure
            throw err;
          });
        return (await module).run(input, ctx, lib);
      },
    };
  });
}

function toolModule(lane: BuiltInLane, name: ToolName, loaded: unknown): ToolModule {
  const m = loaded as Partial<ToolModule> & { spec?: { name?: string } };
  if (typeof m.run !== "function" || m.spec?.name !== name) {
    throw new Error(`tools/${lane}/${name}.ts must export the spec of ${name} and its run (tools/define.ts)`);
  }
  return { run: m.run };
}

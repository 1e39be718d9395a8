import { z } from "zod/v3";
import { type RunOf, toolSpec } from "../define.js";
import type * as Lib from "../lib/document.js";

export const spec = toolSpec({
  name: "fetch_context",
  lane: "document",
  effect: "read",
  reads: ["context"],
  description: "A passage of the email thread in full by its cited id: m14:L3-7, an attachment m2/a1, a message m14.",
  input: z.object({ id: z.string().min(1).max(200) }).strict(),
});

/** Reads the run's prepared thread context (written by extract); the lookup is context/tool.ts's. */
export const run: RunOf<typeof spec, typeof Lib> = async (input, ctx, lib) => {
  const { fetchContextRun } = lib;
  return fetchContextRun((c) => c.loadPreparedContext())(input, ctx);
};

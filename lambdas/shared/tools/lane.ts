import { z } from "zod";
import { type BuiltInLane, type ToolName, toolsOfLane } from "../catalogue.js";
import { ToolCallRef } from "../steps.js";

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

import { z } from "zod/v3";

/** What the orchestrator hands the state machine; the Route state branches on `type`. */
export const ToolCallRef = z.object({
  toolUseId: z.string(),
  name: z.string(),
  /**
   * The lane whose Lambda runs the call (lambdas/shared/catalogue.ts `laneOfTool`): the state machine's
   * PickTool switches on it, never on the name. Written by the orchestrator on every step it returns
   * (resumed runs included); optional only in the schema, so an execution still running on a definition
   * from before lanes (which routes by name) can hand its calls to today's lane Lambdas.
   */
  lane: z.string().optional(),
  /** Set when the call runs on a human's approval; the tool re-checks the binding. */
  approvalId: z.string().optional(),
});
export type ToolCallRef = z.infer<typeof ToolCallRef>;

export const Outcome = z.enum(["saved", "rejected", "awaiting_approval", "failed"]);
export type Outcome = z.infer<typeof Outcome>;

export const Step = z.discriminatedUnion("type", [
  z.object({ type: z.literal("tools"), turn: z.number().int(), calls: z.array(ToolCallRef) }),
  z.object({ type: z.literal("approval"), turn: z.number().int(), approvalId: z.string() }),
  z.object({
    type: z.literal("done"),
    turn: z.number().int(),
    outcome: z.enum(["saved", "rejected", "failed", "handed_to_human"]),
    reason: z.string(),
  }),
  z.object({ type: z.literal("budget_exceeded"), turn: z.number().int(), reason: z.string() }),
]);
export type Step = z.infer<typeof Step>;

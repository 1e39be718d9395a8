import { z } from "zod";

/** What the orchestrator hands the state machine; the Route state branches on `type`. */
export const ToolCallRef = z.object({
  toolUseId: z.string(),
  name: z.string(),
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

import { z } from "zod/v3";
import { toolSpec } from "../define.js";
import { Ref } from "../schemas.js";

/** No `run`: the orchestrator turns the call into an approval request (its lane has no Lambda). */
export const spec = toolSpec({
  name: "escalate_to_human",
  lane: "approval",
  effect: "read",
  description: "Ask a human what the rules leave open, with the PO reference; the run waits.",
  input: z
    .object({
      reason: z.string().min(1).max(2000),
      artifactId: Ref.artifactId.optional(),
      version: Ref.version.optional(),
    })
    .strict(),
});

/**
 * Crash points for durability tests of the local runtime. Off unless PO_AGENT_FAULTS=1, and
 * refused inside AWS Lambda so a stray variable can never kill production work.
 */
export type CrashPoint = "after-turn-stored" | "after-model-answer" | "after-tool-effect";

const enabled = process.env.PO_AGENT_FAULTS === "1" && !process.env.AWS_LAMBDA_FUNCTION_NAME;

/** `PO_AGENT_CRASH=after-turn-stored:2` kills the process right after turn 2 is checkpointed. */
const spec = enabled ? parseSpec(process.env.PO_AGENT_CRASH) : undefined;

function parseSpec(value: string | undefined): { point: CrashPoint; at: number } | undefined {
  if (!value) return undefined;
  const [point, at] = value.split(":");
  if (point !== "after-turn-stored" && point !== "after-model-answer" && point !== "after-tool-effect") {
    throw new Error(
      `PO_AGENT_CRASH: unknown crash point "${point}" (after-turn-stored, after-model-answer, after-tool-effect)`,
    );
  }
  return { point, at: Number(at ?? "1") };
}

let toolEffects = 0;

/** A seeded plan that decides crashes (the durability benchmark installs one; see local/faults.ts). */
export interface CrashPlan {
  shouldCrash(point: CrashPoint): boolean;
}

let plan: CrashPlan | undefined;

/** Installs a crash plan for this process. Refused inside Lambda. */
export function installCrashPlan(next: CrashPlan | undefined): void {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) throw new Error("fault injection is refused inside AWS Lambda");
  plan = next;
}

/** Kills the process (SIGKILL: no cleanup, like a power cut) when the configured point is reached. */
export function crashPoint(point: CrashPoint, turn?: number): void {
  if (plan?.shouldCrash(point)) process.kill(process.pid, "SIGKILL");
  if (!spec || spec.point !== point) return;
  if (point !== "after-tool-effect" && turn === spec.at) process.kill(process.pid, "SIGKILL");
  if (point === "after-tool-effect" && ++toolEffects === spec.at) process.kill(process.pid, "SIGKILL");
}

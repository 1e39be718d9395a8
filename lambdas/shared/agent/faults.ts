/**
 * Crash points for durability tests of the local runtime. Off unless PO_AGENT_FAULTS=1, and
 * refused inside AWS Lambda so a stray variable can never kill production work.
 */
export type CrashPoint = "after-turn-stored" | "after-tool-effect";

const enabled = process.env.PO_AGENT_FAULTS === "1" && !process.env.AWS_LAMBDA_FUNCTION_NAME;

/** `PO_AGENT_CRASH=after-turn-stored:2` kills the process right after turn 2 is checkpointed. */
const spec = enabled ? parseSpec(process.env.PO_AGENT_CRASH) : undefined;

function parseSpec(value: string | undefined): { point: CrashPoint; at: number } | undefined {
  if (!value) return undefined;
  const [point, at] = value.split(":");
  if (point !== "after-turn-stored" && point !== "after-tool-effect") {
    throw new Error(`PO_AGENT_CRASH: unknown crash point "${point}" (after-turn-stored, after-tool-effect)`);
  }
  return { point, at: Number(at ?? "1") };
}

let toolEffects = 0;

/** Kills the process (SIGKILL: no cleanup, like a power cut) when the configured point is reached. */
export function crashPoint(point: CrashPoint, turn?: number): void {
  if (!spec || spec.point !== point) return;
  if (point === "after-turn-stored" && turn === spec.at) process.kill(process.pid, "SIGKILL");
  if (point === "after-tool-effect" && ++toolEffects === spec.at) process.kill(process.pid, "SIGKILL");
}

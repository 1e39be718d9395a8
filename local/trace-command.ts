import { parseArgs } from "node:util";
import { mergeTrace, type RunBundle, renderTimeline, TraceStore } from "./trace.js";

export interface TraceIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface TraceCommandOptions {
  dataDir: string;
  /**
   * The ledger's view of a run (turns, tool calls, approvals) to complete the trace file.
   * @default - the trace file alone
   */
  loadRun?: (runId: string) => Promise<RunBundle | undefined>;
  /** Run ids the ledger knows, for prefix lookup of runs without a trace file. @default - none */
  listRunIds?: () => Promise<string[]>;
}

/** Thrown for a mistake the user can fix; the CLI prints it as one line (like cli.ts UsageError). */
export class TraceUsageError extends Error {
  override readonly name: string = "TraceUsageError";
}

/**
 * `po-agent trace <runId|prefix> [--json]`: the run's timeline with durations, tokens and cost,
 * from `<dataDir>/traces/<runId>.jsonl` completed with the ledger. Returns the exit code.
 */
export async function traceCommand(args: string[], io: TraceIo, opts: TraceCommandOptions): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const wanted = positionals[0];
  if (!wanted) throw new TraceUsageError("po-agent trace needs a run id (or a unique prefix): po-agent trace <runId>");
  const store = new TraceStore(opts.dataDir);
  const known = new Set([...store.runIds(), ...((await opts.listRunIds?.()) ?? [])]);
  const runId = resolveRunId(wanted, [...known]);
  const bundle = await opts.loadRun?.(runId);
  const events = mergeTrace(store.read(runId), bundle);
  if (events.length === 0 && !bundle) throw new TraceUsageError(`no trace and no ledger record for run ${runId}`);
  if (values.json) {
    io.out(JSON.stringify({ runId, run: bundle?.run, events }));
    return 0;
  }
  io.out(renderTimeline(events, bundle?.run));
  return 0;
}

/** An exact id wins; otherwise exactly one known id must start with `wanted`. */
export function resolveRunId(wanted: string, known: readonly string[]): string {
  if (known.includes(wanted)) return wanted;
  const matches = known.filter((id) => id.startsWith(wanted));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length > 1) {
    throw new TraceUsageError(
      `run id prefix "${wanted}" matches ${matches.length} runs: ${matches.slice(0, 5).join(", ")}`,
    );
  }
  return wanted;
}

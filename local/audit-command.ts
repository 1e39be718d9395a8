import { parseArgs } from "node:util";
import type { AuditRecord } from "../lambdas/shared/ledger/records.js";

/** Where the audit log is read from: the ledger of a stack this process opened, or a running console. */
export interface AuditSource {
  getAudit(runId: string): Promise<AuditRecord[]>;
}

/** Runs `fn` with an audit source and releases it after (opening a stack, or attaching to a running one). */
export type WithAuditSource = <T>(fn: (source: AuditSource) => Promise<T>) => Promise<T>;

export interface AuditIo {
  out(line: string): void;
  err(line: string): void;
}

const USAGE = "usage: po-agent audit <runId> [--json]";

/**
 * `po-agent audit <runId> [--json]`: the run's append-only audit log, oldest first: every guard
 * decision, approval request, link click, decision, reminder and escalation, with who, when, what
 * and why. Returns the exit code: 0 printed, 1 no entries for that run, 2 usage error.
 */
export async function auditCommand(args: string[], io: AuditIo, withSource: WithAuditSource): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { runId, json } = parsed;
  const entries = await withSource((source) => source.getAudit(runId));
  if (json) {
    io.out(JSON.stringify(entries));
    return entries.length > 0 ? 0 : 1;
  }
  if (entries.length === 0) {
    io.err(`no audit entries for run ${runId} (see \`po-agent runs\` for run ids)`);
    return 1;
  }
  io.out(`audit log of ${runId}: ${entries.length} entries`);
  for (const line of formatAudit(entries)) io.out(line);
  return 0;
}

function parse(args: string[]): { runId: string; json: boolean } {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const [runId, ...rest] = positionals;
  if (!runId) throw new Error("audit needs a run id");
  if (rest.length > 0) throw new Error(`unexpected arguments: ${rest.join(" ")}`);
  return { runId, json: values.json === true };
}

/** One line per entry: `time  actor  action  key=value ...`, columns aligned, values on one line. */
export function formatAudit(entries: readonly AuditRecord[]): string[] {
  const sorted = [...entries].sort((a, b) => a.at.localeCompare(b.at));
  const actorWidth = Math.max(5, ...sorted.map((e) => e.actor.length));
  const actionWidth = Math.max(6, ...sorted.map((e) => e.action.length));
  const header = `${"when".padEnd(24)}  ${"who".padEnd(actorWidth)}  ${"what".padEnd(actionWidth)}  why / details`;
  return [
    header,
    ...sorted.map(
      (e) => `${e.at.padEnd(24)}  ${e.actor.padEnd(actorWidth)}  ${e.action.padEnd(actionWidth)}  ${details(e.detail)}`,
    ),
  ];
}

function details(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${oneLine(typeof v === "string" ? v : JSON.stringify(v))}`)
    .join(" ");
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return /\s/.test(flat) ? JSON.stringify(flat) : flat;
}

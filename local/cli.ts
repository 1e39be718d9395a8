import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadCustomers } from "../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { ApprovalError, ConfigError } from "../lambdas/shared/errors.js";
import type { RunRecord } from "../lambdas/shared/ledger/records.js";
import { auditCommand } from "./audit-command.js";
import { type ControlBackend, ControlRefusedError, HttpBackend, InProcessBackend } from "./backend.js";
import { extractCommand } from "./extract-command.js";
import { StoreCorruptError } from "./integrity.js";
import { serveMcpStdio } from "./mcp-server.js";
import { DataDirBusyError, readOwner } from "./owner.js";
import { BatchProgress } from "./progress.js";
import { IntakeError, LocalStack, type RunEvent } from "./stack.js";
import { TraceUsageError, traceCommand } from "./trace-command.js";

/** A mistake the user can fix: printed as one line, no stack trace, exit code 1. */
export class UsageError extends Error {
  override readonly name: string = "UsageError";
}

const HELP = `po-agent — autonomous purchase-order agent (local mode)

Usage:
  po-agent start [--once] [--samples DIR] [--port N]   start the local stack, process every sample, show runs
  po-agent run <file> --customer <name> [--json]       process one document and print its outcome
  po-agent approve <approvalId> [--comment TEXT]       approve a waiting run (same path as the email link)
  po-agent reject <approvalId> --reason TEXT           reject a waiting run
  po-agent retry <runId>                               retry a failed run, reusing its stored turns and tool results
  po-agent runs [--json]                               list runs with their state
  po-agent audit <runId> [--json]                      the run's audit log: guard decisions, approvals, clicks, escalations
  po-agent trace <runId|prefix> [--json]               a run's timeline: states, model and tool calls, tokens, cost
  po-agent extract <file> [--customer <name>] [--json] read one document: format, normalized PO, findings (no run)
  po-agent mcp                                          serve po-agent over MCP on stdin/stdout (for other agents)
  po-agent help

Options for every command:
  --data-dir DIR    local state (DynamoDB, S3, signing key)   default: .po-agent
  --customers DIR   customer configs (*.yaml)                 default: customers

Model: with ANTHROPIC_API_KEY set, customers run on Claude; without it, on the offline reference model.`;

export interface RunSummary {
  runId: string;
  customer: string;
  document: string;
  outcome: "saved" | "rejected" | "awaiting_approval" | "failed" | "handed_to_human" | "split";
  reason: string;
  modelCalls: number;
  toolCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** True when token figures are offline estimates (the reference model), not billed usage. */
  tokensEstimated: boolean;
  durationMs: number;
}

export function summarize(run: RunRecord): RunSummary {
  const outcome = run.status === "running" ? "failed" : run.status;
  return {
    runId: run.runId,
    customer: run.customer,
    document: run.document.key,
    outcome,
    reason:
      run.status === "running"
        ? "the run did not finish"
        : (run.reason ?? (outcome === "awaiting_approval" ? "waiting for a human approval" : "")),
    modelCalls: run.counters.modelCalls,
    toolCalls: run.counters.toolCalls,
    inputTokens: run.counters.inputTokens,
    outputTokens: run.counters.outputTokens,
    costUsd: Number(run.counters.costUsd.toFixed(6)),
    tokensEstimated: run.counters.estimatedTurns > 0,
    durationMs: run.durationMs ?? Date.now() - Date.parse(run.createdAt),
  };
}

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * Text from documents (PO numbers, vendor names, reasons) reaches the terminal: escape control and
 * bidirectional-override characters so a document cannot recolour, retitle or reorder what is shown.
 */
export function terminalSafe(line: string): string {
  return line.replace(UNSAFE_ON_TERMINAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE_ON_TERMINAL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const defaultIo: Io = {
  out: (line) => process.stdout.write(`${terminalSafe(line)}\n`),
  err: (line) => process.stderr.write(`${terminalSafe(line)}\n`),
};

/**
 * The live owner of this data dir, if any: CLI commands talk to it instead of opening the store.
 * An owner that does not answer is named in one line (its pid), never raced for the store.
 */
async function attached(dataDir: string, customers: () => string[]): Promise<HttpBackend | undefined> {
  const owner = readOwner(dataDir);
  if (!owner) return undefined;
  const busy = `${dataDir} is in use by po-agent ${owner.command} (pid ${owner.pid})`;
  if (!owner.httpUrl || !owner.key) throw new UsageError(`${busy}, which is still starting; try again in a moment`);
  const remote = new HttpBackend(owner.httpUrl, owner.key, customers());
  if (await remote.answers()) return remote;
  throw new UsageError(`${busy}, which does not answer at ${owner.httpUrl}; stop it or use another --data-dir`);
}

/**
 * Runs `fn` against the data dir's backend: the owner's control API when a po-agent process owns
 * it, else a stack this command opens (and closes) itself. Commands are written once against it.
 */
async function withBackend<T>(
  globals: Globals,
  fn: (backend: ControlBackend) => Promise<T>,
  onEvent?: (e: RunEvent) => void,
): Promise<T> {
  const remote = await attached(globals.dataDir, () => {
    try {
      return loadConfigs(globals.customersDir).map((c) => c.name);
    } catch {
      return [];
    }
  });
  if (remote) return fn(remote);
  const stack = await LocalStack.start({
    dataDir: globals.dataDir,
    customers: loadConfigs(globals.customersDir),
    command: "cli",
    onEvent: (e) => {
      if (e.type === "warning" && !onEvent) globals.warn?.(`po-agent: warning: ${e.message}`);
      onEvent?.(e);
    },
  });
  const backend = new InProcessBackend(stack, true);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

function loadConfigs(dir: string): CustomerConfig[] {
  if (!existsSync(dir)) throw new UsageError(`customers folder not found: ${dir}`);
  return loadCustomers(dir);
}

function shortId(runId: string): string {
  return runId.length > 24 ? `${runId.slice(0, 24)}…` : runId;
}

/** Prints run progress as it happens: one line per state change, approval URLs in full. */
export function progressPrinter(io: Io, docs: Map<string, string>): (e: RunEvent) => void {
  return (e) => {
    const label = (runId: string) => `${docs.get(runId) ?? shortId(runId)}`;
    switch (e.type) {
      case "started":
        docs.set(e.runId, `[${e.customer}] ${basename(e.document)}`);
        io.out(`${label(e.runId)}: started run ${e.runId}`);
        break;
      case "state":
        if (["Orchestrate", "RunTools", "WaitForApproval", "Finalize", "RecordFailure"].includes(e.state)) {
          io.out(`${label(e.runId)}: ${e.state}`);
        }
        break;
      case "awaiting_approval":
        io.out(`${label(e.runId)}: WAITING for approval ${e.approvalId} from ${e.approver}`);
        io.out(`    approve: ${e.approveUrl}`);
        io.out(`    reject:  ${e.rejectUrl}`);
        io.out(`    or: npx po-agent approve ${e.approvalId}`);
        break;
      case "finished":
        io.out(`${label(e.runId)}: ${e.status.toUpperCase()}${e.reason ? ` — ${e.reason}` : ""}`);
        break;
      case "skipped":
        io.out(`[${e.customer}] ${basename(e.document)}: skipped — ${e.reason}`);
        break;
      case "warning":
        io.err(`po-agent: warning: ${e.message}`);
        break;
    }
  };
}

function sampleFiles(samplesDir: string, customers: CustomerConfig[]): { customer: string; path: string }[] {
  if (!existsSync(samplesDir) || !statSync(samplesDir).isDirectory()) {
    throw new UsageError(`samples folder not found: ${samplesDir} (expected samples/<customer>/<files>)`);
  }
  const files: { customer: string; path: string }[] = [];
  for (const c of customers) {
    const dir = join(samplesDir, c.name);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      const path = join(dir, f);
      if (statSync(path).isFile() && !f.startsWith(".") && !f.toLowerCase().endsWith(".md"))
        files.push({ customer: c.name, path });
    }
  }
  if (files.length === 0)
    throw new UsageError(
      `no samples found under ${samplesDir}/<customer>/ for ${customers.map((c) => c.name).join(", ")}`,
    );
  return files;
}

async function cmdStart(args: string[], io: Io, globals: Globals): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { once: { type: "boolean" }, samples: { type: "string" }, port: { type: "string" } },
    strict: true,
  });
  const port = parsePort(values.port);
  const customers = loadConfigs(globals.customersDir);
  const samples = sampleFiles(resolve(values.samples ?? "samples"), customers);
  const busy = readOwner(globals.dataDir);
  if (busy) throw new DataDirBusyError(busy, globals.dataDir);
  const docs = new Map<string, string>();
  const progress = new BatchProgress(io, samples.length);
  const printer = progressPrinter(io, docs);
  const stack = await LocalStack.start({
    dataDir: globals.dataDir,
    customers,
    httpPort: port,
    command: "start",
    parseInWorker: true,
    onEvent: (e) => {
      printer(e);
      progress.onEvent(e);
    },
  });
  const stop = async () => {
    await stack.close();
  };
  io.out("po-agent local stack");
  io.out(`  console: ${stack.consoleUrl}`);
  io.out(`  approval links and the CLI: ${stack.httpUrl}/ (the console URL carries this start's key)`);
  io.out(
    `  S3 ${stack.services.s3Endpoint}  DynamoDB ${stack.services.dynamodbEndpoint}  SES inbox ${stack.services.sesEndpoint}`,
  );
  for (const c of customers) io.out(`  model for ${c.name}: ${stack.models.get(c.name)?.note}`);
  io.out(`  state kept in ${resolve(globals.dataDir)}`);
  const resumed = await stack.resumeRuns();
  if (resumed.length) io.out(`resuming ${resumed.length} unfinished run(s) from the ledger`);
  const submitted = new Set<string>();
  for (const s of samples) {
    submitted.add(await stack.submit(s.customer, s.path, readFileSync(s.path)));
  }
  io.out(`dropped ${samples.length} sample(s) into the intake buckets`);
  await new Promise((r) => setTimeout(r, 200));
  await stack.waitAllSettled();
  const runs = await stack.ledger.listRuns();
  printRunsTable(runs, io);
  io.out("");
  for (const line of progress.summary(runs.filter((r) => submitted.has(r.runId)))) io.out(line);
  if (values.once) {
    await stop();
    return 0;
  }
  io.out(`\nwaiting for approvals and new documents; open ${stack.consoleUrl} — Ctrl-C to stop`);
  await new Promise<void>((resolveStop) => {
    const onSignal = () => {
      io.out("\nstopping; unfinished runs resume on the next start");
      resolveStop();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  await stop();
  return 0;
}

function printRunsTable(runs: RunRecord[], io: Io): void {
  io.out("");
  io.out(`${"RUN".padEnd(34)} ${"CUSTOMER".padEnd(11)} ${"DOCUMENT".padEnd(34)} ${"STATE".padEnd(18)} REASON`);
  const row = (r: RunRecord, id: string) =>
    io.out(
      `${id.padEnd(34)} ${r.customer.padEnd(11)} ${basename(r.document.key).padEnd(34)} ${r.status.padEnd(18)} ${r.reason ?? ""}`,
    );
  // A multi-PO document: its parent run, then each child (one per PO) indented under it.
  const ids = new Set(runs.map((r) => r.runId));
  for (const r of runs) {
    if (r.parentRunId && ids.has(r.parentRunId)) continue;
    row(r, r.runId);
    for (const c of runs.filter((x) => x.parentRunId === r.runId))
      row(c, `  └ #${c.document.position ?? "?"} ${c.runId}`);
  }
}

async function cmdRun(args: string[], io: Io, globals: Globals): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { customer: { type: "string" }, json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const file = positionals[0];
  if (!file) throw new UsageError("po-agent run needs a file: po-agent run <file> --customer <name>");
  if (!values.customer) throw new UsageError("po-agent run needs --customer <name>");
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`file not found: ${file}`);
  const customers = loadConfigs(globals.customersDir);
  const customer = values.customer;
  if (!customers.some((c) => c.name === customer)) {
    throw new UsageError(`unknown customer "${customer}"; known: ${customers.map((c) => c.name).join(", ")}`);
  }
  const body = readFileSync(file);
  const log = values.json ? { out: (l: string) => io.err(l), err: io.err } : io;
  const run = await withBackend(
    globals,
    async (backend) => {
      const note = backend.describe(customer);
      if (note) log.out(note);
      const runId = await backend.submit(customer, basename(file), body);
      return backend.waitSettled(runId);
    },
    progressPrinter(log, new Map()),
  );
  if (!run) throw new Error("the run left no record in the ledger");
  const summary = summarize(run);
  if (values.json) io.out(JSON.stringify(summary));
  else {
    io.out(`${summary.outcome.toUpperCase()}: ${summary.reason}`);
    io.out(
      `run ${summary.runId} · ${summary.modelCalls} model calls · ${summary.toolCalls} tool calls · ${summary.inputTokens}+${summary.outputTokens} tokens${summary.tokensEstimated ? " (estimated)" : ""} · $${summary.costUsd.toFixed(4)} · ${summary.durationMs} ms`,
    );
  }
  return summary.outcome === "failed" ? 3 : 0;
}

async function cmdDecide(decision: "approved" | "rejected", args: string[], io: Io, globals: Globals): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { comment: { type: "string" }, reason: { type: "string" }, json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const approvalId = positionals[0];
  const verb = decision === "approved" ? "approve" : "reject";
  if (!approvalId) throw new UsageError(`po-agent ${verb} needs an approval id (see po-agent runs or the console)`);
  if (decision === "rejected" && !values.reason) throw new UsageError("po-agent reject needs --reason TEXT");
  const comment = values.reason ?? values.comment;
  const run = await withBackend(
    globals,
    async (backend) => {
      const result = await backend.decide(approvalId, {
        decision,
        by: process.env.USER ?? "operator",
        channel: "cli",
        ...(comment !== undefined ? { comment } : {}),
      });
      if (!result.decided)
        throw new UsageError(`approval ${approvalId} was already ${result.status.replace("_", " ")}`);
      io.out(`${approvalId} ${decision}; run ${result.runId} continues`);
      return backend.waitSettled(result.runId);
    },
    progressPrinter(io, new Map()),
  );
  if (run) io.out(`run ${run.runId}: ${run.status}${run.reason ? ` — ${run.reason}` : ""}`);
  return 0;
}

/** `po-agent retry <runId>`: an operator retries a failed run; every stored turn and tool result is reused. */
async function cmdRetry(args: string[], io: Io, globals: Globals): Promise<number> {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  const runId = positionals[0];
  if (!runId) throw new UsageError("po-agent retry needs a run id (see po-agent runs)");
  const operator = process.env.USER ?? "operator";
  const run = await withBackend(
    globals,
    async (backend) => {
      const retried = await backend.retry(runId, operator);
      io.out(
        `run ${runId} retried as ${retried.executionName} (${retried.turnsReused} model turns and ${retried.toolResultsReused} tool results reused)`,
      );
      return backend.waitSettled(runId);
    },
    progressPrinter(io, new Map()),
  );
  if (run) io.out(`run ${run.runId}: ${run.status}${run.reason ? ` — ${run.reason}` : ""}`);
  return run?.status === "failed" ? 3 : 0;
}

async function cmdRuns(args: string[], io: Io, globals: Globals): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean" } }, strict: true });
  const runs = await withBackend(globals, (backend) => backend.listRuns());
  if (values.json) io.out(JSON.stringify(runs.map(summarize)));
  else if (runs.length === 0) io.out("no runs yet: try `npm start` or `npx po-agent run <file> --customer <name>`");
  else printRunsTable(runs, io);
  return 0;
}

function cmdTrace(args: string[], io: Io, globals: Globals): Promise<number> {
  return withBackend(globals, (backend) =>
    traceCommand(args, io, {
      dataDir: globals.dataDir,
      listRunIds: async () => (await backend.listRuns()).map((r) => r.runId),
      loadRun: (runId) => backend.runBundle(runId),
    }),
  );
}

/** `--port N`: an integer 0–65535 (0 = any free port). */
function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new UsageError(`--port needs a port number 0-65535, got "${value.slice(0, 40)}"`);
  }
  return Number(value);
}

interface Globals {
  dataDir: string;
  customersDir: string;
  /** Where warnings about the data dir go (one line each). */
  warn?: (line: string) => void;
}

/** Splits the global options off the command's own. */
function globalsFrom(argv: string[]): { globals: Globals; rest: string[] } {
  const rest: string[] = [];
  const globals: Globals = { dataDir: ".po-agent", customersDir: "customers" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--data-dir" || a === "--customers") {
      const v = argv[++i];
      if (!v) throw new UsageError(`${a} needs a value`);
      if (a === "--data-dir") globals.dataDir = v;
      else globals.customersDir = v;
    } else rest.push(a);
  }
  if (existsSync(globals.dataDir) && !statSync(globals.dataDir).isDirectory()) {
    throw new UsageError(
      `--data-dir ${globals.dataDir} is a file, not a folder; point it at a folder (it is created if missing)`,
    );
  }
  return { globals, rest };
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  try {
    const { globals, rest } = globalsFrom(argv);
    globals.warn = io.err;
    const [command, ...args] = rest;
    switch (command) {
      case "start":
        return await cmdStart(args, io, globals);
      case "run":
        return await cmdRun(args, io, globals);
      case "approve":
        return await cmdDecide("approved", args, io, globals);
      case "reject":
        return await cmdDecide("rejected", args, io, globals);
      case "retry":
        return await cmdRetry(args, io, globals);
      case "runs":
        return await cmdRuns(args, io, globals);
      case "trace":
        return await cmdTrace(args, io, globals);
      case "audit":
        return await auditCommand(args, io, (fn) => withBackend(globals, fn));
      case "extract":
        return await extractCommand(args, io, globals.customersDir);
      case "mcp": {
        // One process owns a data dir: a second owner would fight the first for the store.
        const owner = readOwner(globals.dataDir);
        if (owner) throw new DataDirBusyError(owner, globals.dataDir);
        const { closed } = await serveMcpStdio({ dataDir: globals.dataDir, customersDir: globals.customersDir });
        await closed;
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(HELP);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(
          `unknown command "${command}" (commands: start, run, approve, reject, retry, runs, audit, trace, extract, mcp, help)`,
        );
    }
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof ConfigError ||
      err instanceof TraceUsageError ||
      err instanceof DataDirBusyError ||
      err instanceof IntakeError ||
      err instanceof ApprovalError ||
      err instanceof StoreCorruptError ||
      err instanceof ControlRefusedError
    ) {
      io.err(`po-agent: ${err.message}`);
      return 1;
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`po-agent: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

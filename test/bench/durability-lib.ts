import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { runIdFor } from "../../lambdas/shared/agent/core.js";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { sha256 } from "../../lambdas/shared/ledger/ledger.js";
import { LocalStack } from "../../local/stack.js";
import { FAULT_KINDS, type FaultKind, type FaultRates, mulberry32 } from "../support/faults.js";

/**
 * The durability benchmark: the same POs three times — fault-free, under seeded faults and
 * random SIGKILLs of the local runtime with the ledger, and the same with the ledger's replay
 * switched off (restart from the beginning). Every figure is counted from what happened.
 */
export interface PlannedDocument {
  customer: string;
  name: string;
  path: string;
  special?: "event_twice" | "upload_twice" | "same_name_other_bytes";
}

export interface WorkerConfig {
  dataDir: string;
  customersDir: string;
  seed: number;
  faults: boolean;
  baseline: boolean;
  rates: FaultRates;
  billingLog: string;
  faultLog: string;
  /** Every saved-order object written (PutObject under processed/, as it left the S3 client). */
  effectLog: string;
  /** Emulator errors that ended a life (an upload s3rver kept answering with a 5xx). */
  emulatorLog: string;
  documents: PlannedDocument[];
}

/** The worker's exit code when the emulator, not the runtime, stopped it (EX_TEMPFAIL). */
export const EMULATOR_EXIT = 75;

/** Every fault kind the worker can inject, at rates that let 200 POs finish in a few minutes. */
export const DEFAULT_RATES: FaultRates = {
  model_429: 0.04,
  model_529: 0.03,
  model_500: 0.02,
  model_connection_reset: 0.02,
  model_timeout: 0.02,
  model_invalid_tool_input: 0.03,
  model_unknown_tool: 0.03,
  model_prompt_too_long: 0.02,
  crash_after_tool_effect: 0.006,
  crash_after_model_answer: 0.006,
  dynamodb_throttle: 0.01,
  s3_missing_object: 0.02,
};

export interface DurabilityOptions {
  pos: number;
  seed: number;
  rates?: FaultRates;
  /** Mean milliseconds between external SIGKILLs of the runtime. */
  killEveryMs?: number;
  /** Run the no-ledger baseline too. */
  baseline?: boolean;
  /** Stop killing after this many external kills (the test suite keeps its run short). */
  maxKills?: number;
  log?: (line: string) => void;
}

interface PhaseResult {
  runsFinished: number;
  runsLost: number;
  duplicateSideEffects: number;
  orderWrites: number;
  modelCalls: number;
  tokens: number;
  redundantModelCalls: number;
  redundantModelCallsFromCrashes: number;
  redundantTokens: number;
  restarts: number;
  emulatorRestarts: number;
  faults: Record<FaultKind, number>;
  wallMs: number;
}

export interface DurabilityReport {
  pos: number;
  seed: number;
  runsFinished: number;
  runsLost: number;
  /** Order objects written more than once (PutObject calls per key beyond the first). */
  duplicateSideEffects: number;
  /** Order objects written (PutObject calls under processed/). */
  orderWrites: number;
  modelCalls: number;
  faultFreeModelCalls: number;
  /** Paid calls for a turn the ledger had already stored: what the ledger exists to prevent. */
  redundantModelCallsFromCrashes: number;
  /** Paid calls repeated because the process died after the answer arrived and before it was stored. */
  repeatedCallsLostInFlight: number;
  redundantTokens: number;
  baselineRedundantTokens: number;
  baselineRedundantTokensRatio: number;
  restarts: number;
  baselineRestarts: number;
  /** Lives ended by an emulator error (s3rver answering 5xx on an upload), with-ledger and baseline. */
  emulatorRestarts: number;
  baselineEmulatorRestarts: number;
  faultsInjected: Record<FaultKind, number>;
  wallMs: number;
}

/** Builds `pos` distinct PO documents from the samples, with the special upload cases among them. */
export function generateDocuments(dir: string, pos: number, seed: number): PlannedDocument[] {
  const random = mulberry32(seed);
  mkdirSync(dir, { recursive: true });
  const templates = [
    { customer: "acme", file: "samples/acme/01-packaging-saved.json" },
    { customer: "customer37", file: "samples/customer37/01-auto-approve-monday.json" },
    { customer: "acme", file: "samples/acme/03-controls-needs-approval.json" },
  ];
  const docs: PlannedDocument[] = [];
  for (let i = 0; i < pos; i++) {
    const roll = random();
    // Mostly POs that save, some that wait for a human, a few unreadable ones.
    const t = templates[roll < 0.75 ? (i % 2 === 0 ? 0 : 1) : roll < 0.92 ? 2 : 0] ?? templates[0];
    const po = JSON.parse(readFileSync(t?.file ?? "", "utf8")) as Record<string, unknown>;
    const name = `po-${String(i).padStart(4, "0")}.json`;
    const path = join(dir, name);
    if (roll >= 0.97) writeFileSync(path, `${JSON.stringify({ ...po, poNumber: `DUR-${seed}-${i}` }).slice(0, 90)}`);
    else writeFileSync(path, JSON.stringify({ ...po, poNumber: `DUR-${seed}-${i}` }, null, 2));
    const special = i % 37 === 5 ? "event_twice" : i % 41 === 7 ? "upload_twice" : undefined;
    docs.push({ customer: t?.customer ?? "acme", name, path, ...(special ? { special } : {}) });
    if (i % 53 === 11) {
      // A different document under a name already used.
      const other = join(dir, `${name}.v2`);
      writeFileSync(other, JSON.stringify({ ...po, poNumber: `DUR-${seed}-${i}-v2` }, null, 2));
      docs.push({ customer: t?.customer ?? "acme", name, path: other, special: "same_name_other_bytes" });
    }
  }
  return docs;
}

function spawnWorker(
  configPath: string,
  restart: number,
): { ready: Promise<void>; done: Promise<number | null>; kill(): void } {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/bench/durability-worker.ts", configPath, String(restart)],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    },
  );
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const ready = new Promise<void>((resolve) => {
    child.stdout.on("data", (c: Buffer) => {
      if (c.toString().includes("ready")) resolve();
    });
  });
  const done = new Promise<number | null>((resolve) => {
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal === null && stderr)
        process.stderr.write(`worker ${restart} exited ${code}: ${stderr}\n`);
      resolve(signal ? null : code);
    });
  });
  return { ready, done, kill: () => child.kill("SIGKILL") };
}

interface BillingLine {
  at: number;
  customer: string;
  sha: string;
  turn: number;
  tokens: number;
}

/** One saved-order object written: bucket and key as the PutObject call named them. */
export interface ObjectWrite {
  bucket: string;
  key: string;
}

/**
 * Reports every PutObject under `prefix` (saved orders) that the client completed, from a
 * middleware on the client: what left the process, not what the agent says it did.
 */
export function recordObjectWrites(s3: S3Client, onWrite: (w: ObjectWrite) => void, prefix = "processed/"): void {
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const input = args.input as { Bucket?: string; Key?: string };
      if (context.commandName === "PutObjectCommand" && input.Key?.startsWith(prefix)) {
        onWrite({ bucket: input.Bucket ?? "", key: input.Key });
      }
      return out;
    },
    { step: "initialize", name: "durabilityObjectWrites" },
  );
}

/** Writes of an object beyond its first: a saved order's side effect repeated. */
export function duplicateWrites(writes: readonly ObjectWrite[]): number {
  const perKey = new Map<string, number>();
  for (const w of writes) perKey.set(`${w.bucket}/${w.key}`, (perKey.get(`${w.bucket}/${w.key}`) ?? 0) + 1);
  return [...perKey.values()].reduce((n, c) => n + c - 1, 0);
}

const readLines = <T>(file: string): T[] =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as T)
    : [];

async function runPhase(
  root: string,
  name: string,
  docs: PlannedDocument[],
  opts: {
    seed: number;
    faults: boolean;
    baseline: boolean;
    rates: FaultRates;
    killEveryMs: number;
    maxKills: number;
    log: (l: string) => void;
  },
): Promise<PhaseResult> {
  const started = Date.now();
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const config: WorkerConfig = {
    dataDir: join(dir, "data"),
    customersDir: "customers",
    seed: opts.seed,
    faults: opts.faults,
    baseline: opts.baseline,
    rates: opts.rates,
    billingLog: join(dir, "billing.jsonl"),
    faultLog: join(dir, "faults.jsonl"),
    effectLog: join(dir, "effects.jsonl"),
    emulatorLog: join(dir, "emulator-errors.jsonl"),
    documents: docs,
  };
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config));
  const random = mulberry32(opts.seed + 17);
  let restarts = 0;
  let emulatorRestarts = 0;
  let kills = 0;
  for (let life = 0; ; life++) {
    if (life > 200) throw new Error(`${name}: the runtime did not finish after 200 restarts`);
    const worker = spawnWorker(configPath, life);
    let timer: NodeJS.Timeout | undefined;
    if (opts.faults && opts.killEveryMs > 0 && kills < opts.maxKills) {
      // Exponential times after the runtime is up: kills land mid-run, during resume and at shutdown.
      const delay = Math.max(100, Math.round(-Math.log(1 - random()) * opts.killEveryMs));
      void worker.ready.then(() => {
        timer = setTimeout(() => {
          kills++;
          worker.kill();
        }, delay);
      });
    }
    const code = await worker.done;
    clearTimeout(timer);
    if (code === 0) break;
    if (code === EMULATOR_EXIT) {
      emulatorRestarts++;
      opts.log(`${name}: life ${life} ended on an emulator error (see ${config.emulatorLog}); starting the next`);
      continue;
    }
    if (code !== null) throw new Error(`${name}: worker exited with code ${code}`);
    restarts++;
  }
  opts.log(
    `${name}: finished after ${restarts} restart(s) (${kills} external kills, ${emulatorRestarts} emulator errors) in ${Date.now() - started} ms`,
  );

  // Count what happened, from the ledger and the logs.
  const stack = await LocalStack.start({ dataDir: config.dataDir, customers: loadCustomers("customers") });
  try {
    const runs = await stack.ledger.listRuns();
    const byId = new Map(runs.map((r) => [r.runId, r]));
    const distinct = new Map<string, PlannedDocument>();
    for (const d of docs) distinct.set(runIdFor(d.customer, sha256(readFileSync(d.path))), d);
    let runsLost = 0;
    let runsFinished = 0;
    // A document that could not be read at all has no content hash: its failure is recorded
    // under the document's key (RecordFailure) and counts as finished, reason kept.
    const unreadable = new Set(
      runs
        .filter((r) => r.status === "failed" && r.document.sha256 === "")
        .map((r) => `${r.customer}:${r.document.key}`),
    );
    for (const [runId, doc] of distinct) {
      const run = byId.get(runId);
      if (!run && unreadable.has(`${doc.customer}:incoming/${doc.name}`)) {
        runsFinished++;
        continue;
      }
      if (!run || run.status === "running") {
        runsLost++;
        opts.log(`${name}: lost ${runId} (${run ? `status ${run.status}, turn ${run.turn}` : "no run record"})`);
      } else runsFinished++;
    }
    // The effect itself: every order object the runtime wrote, counted on its S3 client.
    const writes = readLines<ObjectWrite>(config.effectLog);
    const duplicateSideEffects = duplicateWrites(writes);
    const billing = readLines<BillingLine>(config.billingLog);
    const turnsStoredAt = new Map<string, number>();
    for (const run of runs) {
      for (const t of await stack.ledger.getTurns(run.runId)) {
        turnsStoredAt.set(`${run.customer}:${run.document.sha256.slice(0, 12)}:${t.turn}`, Date.parse(t.createdAt));
      }
    }
    const seen = new Set<string>();
    let redundantModelCalls = 0;
    let redundantModelCallsFromCrashes = 0;
    let redundantTokens = 0;
    for (const b of billing.sort((x, y) => x.at - y.at)) {
      const key = `${b.customer}:${b.sha}:${b.turn}`;
      if (seen.has(key)) {
        redundantModelCalls++;
        redundantTokens += b.tokens;
        // Re-paid although the ledger already held this turn: a replay that should have been free.
        const storedAt = turnsStoredAt.get(key);
        if (!opts.baseline && storedAt !== undefined && storedAt < b.at) redundantModelCallsFromCrashes++;
      }
      seen.add(key);
    }
    const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    for (const f of readLines<{ kind: FaultKind }>(config.faultLog)) faults[f.kind]++;
    faults.process_kill += kills;
    return {
      runsFinished,
      runsLost,
      duplicateSideEffects,
      orderWrites: writes.length,
      modelCalls: billing.length,
      tokens: billing.reduce((n, b) => n + b.tokens, 0),
      redundantModelCalls,
      redundantModelCallsFromCrashes,
      redundantTokens,
      restarts,
      emulatorRestarts,
      faults,
      wallMs: Date.now() - started,
    };
  } finally {
    await stack.close();
  }
}

export async function runDurability(options: DurabilityOptions): Promise<DurabilityReport> {
  const log = options.log ?? (() => {});
  const root = mkdtempSync(join(tmpdir(), "po-agent-durability-"));
  try {
    const docs = generateDocuments(join(root, "docs"), options.pos, options.seed);
    const rates = options.rates ?? DEFAULT_RATES;
    const killEveryMs = options.killEveryMs ?? 6000;
    const common = {
      seed: options.seed,
      rates,
      killEveryMs,
      maxKills: options.maxKills ?? Math.max(3, Math.ceil(options.pos / 8)),
      log,
    };
    const faultFree = await runPhase(root, "fault-free", docs, { ...common, faults: false, baseline: false });
    const ours = await runPhase(root, "with-ledger", docs, { ...common, faults: true, baseline: false });
    const base =
      options.baseline === false
        ? undefined
        : await runPhase(root, "no-ledger", docs, { ...common, faults: true, baseline: true });
    const baselineRedundantTokens = base?.redundantTokens ?? 0;
    return {
      pos: options.pos,
      seed: options.seed,
      runsFinished: ours.runsFinished,
      runsLost: ours.runsLost,
      duplicateSideEffects: ours.duplicateSideEffects,
      orderWrites: ours.orderWrites,
      modelCalls: ours.modelCalls,
      faultFreeModelCalls: faultFree.modelCalls,
      redundantModelCallsFromCrashes: ours.redundantModelCallsFromCrashes,
      repeatedCallsLostInFlight: ours.redundantModelCalls - ours.redundantModelCallsFromCrashes,
      redundantTokens: ours.redundantTokens,
      baselineRedundantTokens,
      // Against at least one token, so a perfect run (no redundant token at all) still gives a number.
      baselineRedundantTokensRatio: Number((baselineRedundantTokens / Math.max(1, ours.redundantTokens)).toFixed(1)),
      restarts: ours.restarts,
      baselineRestarts: base?.restarts ?? 0,
      emulatorRestarts: ours.emulatorRestarts,
      baselineEmulatorRestarts: base?.emulatorRestarts ?? 0,
      faultsInjected: ours.faults,
      wallMs: faultFree.wallMs + ours.wallMs + (base?.wallMs ?? 0),
    };
  } finally {
    if (process.env.PO_AGENT_KEEP_BENCH) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

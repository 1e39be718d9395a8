/**
 * One life of the local runtime for the durability benchmark: start the stack (with seeded faults),
 * resume what the ledger says is unfinished, submit what was never submitted, wait until every run
 * has settled, exit 0. The driver kills it at random moments and starts it again.
 *   node --import tsx test/bench/durability-worker.ts <config.json> <restart>
 */
import { appendFileSync, readFileSync } from "node:fs";
import { runIdFor } from "../../lambdas/shared/agent/core.js";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { sha256 } from "../../lambdas/shared/ledger/ledger.js";
import { LocalStack } from "../../local/stack.js";
import { FaultInjector, type FaultKind } from "../support/faults.js";
import { EMULATOR_EXIT, recordObjectWrites, type WorkerConfig } from "./durability-lib.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const [configPath, restartArg] = process.argv.slice(2);
if (!configPath) throw new Error("usage: durability-worker.ts <config.json> <restart>");
const config = JSON.parse(readFileSync(configPath, "utf8")) as WorkerConfig;
const restart = Number(restartArg ?? "0");

const log = (file: string, entry: unknown) => appendFileSync(file, `${JSON.stringify(entry)}\n`);

/**
 * An upload to the emulator, retried on a 5xx: s3rver keeps objects as plain files that a SIGKILL
 * can leave half-written, and answers InternalError until the key is rewritten. When the error
 * persists, the life ends with EMULATOR_EXIT (logged with its key and message) and the driver starts
 * the next one, counting it apart from the kills: an emulator fault is not the runtime's.
 */
async function submitRetrying(customer: string, name: string, bytes: Uint8Array): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await stack.submit(customer, name, bytes);
      return;
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ?? 0;
      if (status < 500) throw err;
      if (attempt >= 5) {
        log(config.emulatorLog, { restart, customer, name, status, error: `${e.name}: ${e.message}` });
        await stack.close().catch(() => {});
        process.exit(EMULATOR_EXIT);
      }
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}
const faults = config.faults ? new FaultInjector(config.seed * 1000 + restart, config.rates, config.seed) : undefined;
if (faults) {
  // Every injected fault is logged as it fires: a killed process cannot report at exit.
  const fire = faults.fire.bind(faults);
  const fireFor = faults.fireFor.bind(faults);
  faults.fire = (kind: FaultKind) => {
    const hit = fire(kind);
    if (hit) log(config.faultLog, { kind, restart });
    return hit;
  };
  faults.fireFor = (kind: FaultKind, key: string) => {
    const hit = fireFor(kind, key);
    if (hit) log(config.faultLog, { kind, restart, key });
    return hit;
  };
}

const stack = await LocalStack.start({
  dataDir: config.dataDir,
  customers: loadCustomers(config.customersDir),
  retryIntervalMs: 0,
  modelRetry: { maxAttempts: 4, baseDelayMs: 2, maxDelayMs: 20, maxRetryAfterMs: 20 },
  faults,
  onModelAnswer: (customer, request, response) => {
    const first = request.messages[0]?.content.find((b) => b.type === "text");
    const sha = /sha256 ([0-9a-f]{12})/.exec(first?.type === "text" ? first.text : "")?.[1] ?? "?";
    log(config.billingLog, {
      at: Date.now(),
      customer,
      sha,
      turn: request.messages.filter((m) => m.role === "assistant").length + 1,
      tokens: response.usage.input_tokens + response.usage.output_tokens,
    });
  },
});

// Count the side effect itself: each saved-order object written (appended at once: a kill loses no line).
recordObjectWrites(stack.s3, (w) => log(config.effectLog, { ...w, restart }));

// Tell the driver the runtime is up: its kill clock starts now, not while Node is still loading.
process.stdout.write("ready\n");

if (config.baseline) {
  // No ledger replay: an unfinished run starts again from its first turn.
  for (const run of await stack.ledger.listRuns(["running"])) await stack.ledger.resetRun(run.runId);
}
await stack.resumeRuns();

for (const doc of config.documents) {
  const bytes = readFileSync(doc.path);
  const runId = runIdFor(doc.customer, sha256(bytes));
  if (await stack.ledger.getRun(runId)) {
    // Uploaded before a kill and started by the restart's intake recovery: its event is still
    // delivered a second time, as EventBridge may (the run exists, so this must change nothing).
    if (faults && doc.special === "event_twice") {
      log(config.faultLog, { kind: "s3_event_twice", restart });
      await stack.redeliver(doc.customer, doc.name);
    }
    continue;
  }
  await submitRetrying(doc.customer, doc.name, bytes);
  if (faults && doc.special === "event_twice") {
    log(config.faultLog, { kind: "s3_event_twice", restart });
    await stack.redeliver(doc.customer, doc.name);
  }
  if (faults && doc.special === "upload_twice") {
    log(config.faultLog, { kind: "same_document_twice", restart });
    await submitRetrying(doc.customer, `copy-of-${doc.name}`, bytes);
  }
  if (faults && doc.special === "same_name_other_bytes")
    log(config.faultLog, { kind: "different_document_same_name", restart });
  // Let the S3 event reach the engine before the next upload under a possibly identical name.
  await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, 100));
await stack.waitAllSettled(600_000);
await stack.close();
process.exit(0);

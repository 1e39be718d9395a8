import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { markStoreOpen } from "../../local/integrity.js";
import { openClients } from "../../local/runtime.js";
import { startServices } from "../../local/services.js";
import { tempDir } from "../support/stack.js";

/**
 * dynalite writes an update as three LevelDB writes (old index entry deleted, new one put, then the
 * item). Here the item's write fails after the index writes, as a kill between them leaves it: the
 * run stays "running" in the table but its status index says "saved", so `listRuns(["running"])`,
 * which the restart resumes from, cannot see it. After the unclean stop, the start repairs the
 * index (local/reindex.ts) and the run is found again where the table says it is.
 */
type Store = {
  getItemDb(name: string): { put(key: string, item: Record<string, unknown>, cb: (e?: Error) => void): void };
};
const requireHere = createRequire(import.meta.url);
const dynaliteDb = requireHere(join(requireHere.resolve("dynalite"), "..", "db", "index.js")) as {
  create(options: unknown): Store;
};
const originalCreate = dynaliteDb.create;
/** Item writes whose status becomes this value fail after their index writes (the "kill"). */
let dieOnStatus: string | undefined;

let dataDir: string;
beforeAll(() => {
  dataDir = tempDir("reindex");
  dynaliteDb.create = (options: unknown) => {
    const store = originalCreate(options);
    const getItemDb = store.getItemDb.bind(store);
    store.getItemDb = (name: string) => {
      const itemDb = getItemDb(name);
      const put = itemDb.put.bind(itemDb);
      itemDb.put = (key, item, cb) => {
        const status = (item.status as { S?: string } | undefined)?.S;
        if (dieOnStatus !== undefined && status === dieOnStatus) {
          // Answered as dynalite answers its own failures (a 500), so only this request fails.
          const died = Object.assign(new Error("the process died between the index writes and the item write"), {
            statusCode: 500,
            body: { __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "died (injected)" },
          });
          cb(died);
          return;
        }
        put(key, item, cb);
      };
      return itemDb;
    };
    return store;
  };
});
afterAll(() => {
  dynaliteDb.create = originalCreate;
  rmSync(dataDir, { recursive: true, force: true });
});

async function open() {
  const services = await startServices({ dataDir, buckets: ["po-agent-acme"] });
  const clients = await openClients(services, dataDir, undefined);
  return { services, ledger: clients.ledger, dynamodb: clients.dynamodb };
}

const ids = (runs: { runId: string }[]) => runs.map((r) => r.runId);

describe("the local ledger's status index after a kill mid-update", () => {
  it("a run the index lost is listed as running again after the restart", async () => {
    // Prepare: a running run, then an update to "saved" that dies after dynalite's index writes
    const first = await open();
    await first.ledger.openRun({
      runId: "run-a",
      customer: "acme",
      document: { bucket: "po-agent-acme", key: "incoming/a.json", sha256: "a", size: 1 },
      executionId: "exec-a",
      status: "running",
      turn: 1,
      counters: { ...ZERO_COUNTERS },
    });
    dieOnStatus = "saved";
    await expect(first.ledger.updateRun("run-a", { status: "saved" })).rejects.toThrow();
    dieOnStatus = undefined;
    const broken = {
      running: ids(await first.ledger.listRuns(["running"])),
      saved: ids(await first.ledger.listRuns(["saved"])),
      table: (await first.ledger.getRun("run-a"))?.status,
    };
    first.dynamodb.destroy();
    await first.services.close();
    markStoreOpen(join(dataDir, "dynamodb")); // what a killed process leaves: the store was never closed

    // Act
    const second = await open();
    const repaired = {
      running: ids(await second.ledger.listRuns(["running"])),
      saved: ids(await second.ledger.listRuns(["saved"])),
      table: (await second.ledger.getRun("run-a"))?.status,
    };
    second.dynamodb.destroy();
    await second.services.close();

    // Assess: the emulator really lost the run from the index, and the start found it again
    expect(broken).toEqual({ running: [], saved: ["run-a"], table: "running" });
    expect(repaired).toEqual({ running: ["run-a"], saved: [], table: "running" });
  }, 60_000);
});

import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { markStoreOpen } from "../../local/integrity.js";
import { reindexLedger } from "../../local/reindex.js";
import { openClients, TABLE_NAME } from "../../local/runtime.js";
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
    // Prepare
    const broken = await loseFromIndex("run-a");
    markStoreOpen(join(dataDir, "dynamodb")); // what a killed process leaves: the store was never closed

    // Act
    const repaired = await statusOf("run-a");

    // Assess: the emulator really lost the run from the index, and the start found it again
    expect(broken).toEqual({ running: [], saved: ["run-a"], table: "running" });
    expect(repaired).toEqual({ running: ["run-a"], saved: [], table: "running" });
  }, 60_000);

  it("a kill during the repair itself does not hide the run from the next start", async () => {
    // Prepare: the lost run, then a repair that dies after its first write (the record put under the stale keys)
    await loseFromIndex("run-b");
    const cut = await open();
    let puts = 0;
    const send = cut.dynamodb.send.bind(cut.dynamodb) as (c: unknown) => Promise<unknown>;
    (cut.dynamodb as unknown as { send: (c: unknown) => Promise<unknown> }).send = async (command) => {
      if (command instanceof PutItemCommand && ++puts === 2) throw new Error("killed during the repair");
      return send(command);
    };
    await expect(reindexLedger(cut.dynamodb, TABLE_NAME, ["RUNSTATUS#running", "RUNSTATUS#saved"])).rejects.toThrow(
      /killed during the repair/,
    );
    cut.dynamodb.destroy();
    await cut.services.close();
    markStoreOpen(join(dataDir, "dynamodb"));

    // Act
    const after = await statusOf("run-b");

    // Assess
    expect(after).toEqual({ running: expect.arrayContaining(["run-b"]), saved: [], table: "running" });
  }, 60_000);
});

/** Opens a running run, then lets its update to "saved" die after dynalite's index writes. */
async function loseFromIndex(runId: string) {
  const first = await open();
  await first.ledger.openRun({
    runId,
    customer: "acme",
    document: { bucket: "po-agent-acme", key: `incoming/${runId}.json`, sha256: runId, size: 1 },
    executionId: `exec-${runId}`,
    status: "running",
    turn: 1,
    counters: { ...ZERO_COUNTERS },
  });
  dieOnStatus = "saved";
  await expect(first.ledger.updateRun(runId, { status: "saved" })).rejects.toThrow();
  dieOnStatus = undefined;
  return whereListedThenClose(first, runId);
}

/** Starts again (repairing when the last stop was unclean) and reads where the run is listed. */
async function statusOf(runId: string) {
  return whereListedThenClose(await open(), runId);
}

/** Where the status index lists the run and what the table says, then the stack is closed. */
async function whereListedThenClose(opened: Awaited<ReturnType<typeof open>>, runId: string) {
  const listed = async (status: "running" | "saved") =>
    ids(await opened.ledger.listRuns([status])).filter((r) => r === runId);
  const state = {
    running: await listed("running"),
    saved: await listed("saved"),
    table: (await opened.ledger.getRun(runId))?.status,
  };
  opened.dynamodb.destroy();
  await opened.services.close();
  return state;
}

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { LocalStack } from "../../local/stack.js";

/**
 * The durability promise, across real process deaths: a `po-agent run` killed with SIGKILL at a
 * checkpoint and started again finishes the run without paying a model call twice or saving twice.
 */
const SAMPLE = "samples/acme/01-packaging-saved.json";

function cli(dataDir: string, crash?: string) {
  return spawnSync(
    process.execPath,
    ["--import", "tsx", "local/main.ts", "run", SAMPLE, "--customer", "acme", "--json", "--data-dir", dataDir],
    {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, ...(crash ? { PO_AGENT_FAULTS: "1", PO_AGENT_CRASH: crash } : {}) },
    },
  );
}

async function inspect(dataDir: string, runId: string) {
  const stack = await LocalStack.start({ dataDir, customers: loadCustomers("customers") });
  try {
    return {
      run: await stack.ledger.getRun(runId),
      turns: await stack.ledger.getTurns(runId),
      audit: await stack.ledger.getAudit(runId),
      order: await stack.ledger.getOrder("acme", "ACM-PO-22817"),
    };
  } finally {
    await stack.close();
  }
}

describe("a run killed mid-way and restarted", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("resumes after a kill between model turns without calling the model again for stored turns", async () => {
    // Prepare: the first process dies right after turn 2 is checkpointed.
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-restart-"));
    dirs.push(dataDir);
    const killed = cli(dataDir, "after-turn-stored:2");
    expect(killed.signal).toBe("SIGKILL");

    // Act: start again, as a user would.
    const second = cli(dataDir);

    // Assess
    expect(second.status).toBe(0);
    const summary = JSON.parse(second.stdout.trim().split("\n").pop() ?? "{}") as {
      runId: string;
      outcome: string;
      modelCalls: number;
    };
    expect(summary.outcome).toBe("saved");
    const { run, turns, audit } = await inspect(dataDir, summary.runId);
    // extract; validate + transform; erp.lookup_vendor + erp.check_budget; save; the outcome.
    expect(turns.length).toBe(5);
    // Every model call paid for is a stored turn: nothing was paid twice.
    expect(run?.counters.modelCalls).toBe(turns.length);
    expect(summary.modelCalls).toBe(turns.length);
    expect(audit.filter((a) => a.action === "order.saved")).toHaveLength(1);
  });

  it("does not save twice when killed after the save's side effect but before its checkpoint", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-restart-"));
    dirs.push(dataDir);
    // extract, validate, transform, the two ERP lookups, then save: the 6th tool effect is the save.
    const killed = cli(dataDir, "after-tool-effect:6");
    expect(killed.signal).toBe("SIGKILL");

    const second = cli(dataDir);

    expect(second.status).toBe(0);
    const summary = JSON.parse(second.stdout.trim().split("\n").pop() ?? "{}") as { runId: string; outcome: string };
    expect(summary.outcome).toBe("saved");
    const { run, turns, audit, order } = await inspect(dataDir, summary.runId);
    expect(order?.runId).toBe(summary.runId);
    expect(audit.filter((a) => a.action === "order.saved")).toHaveLength(1);
    expect(run?.counters.modelCalls).toBe(turns.length);
  });
});

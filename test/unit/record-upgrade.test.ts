import { describe, expect, it } from "vitest";
import { finalize } from "../../lambdas/shared/agent/finalize.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { RECORD_VERSIONS } from "../../lambdas/shared/ledger/records.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { fixtureWorld, loadLedgerFixture } from "../support/ledger-fixture.js";

/**
 * A run parked on an approval for weeks must survive a change of record versions: the fixture is
 * acme 03 waiting for a human, every record as an older build stored it (schemaVersion 1, turns
 * and tool calls without a counter delta, audit lines apart). It is decided and run to its end.
 */
const dump = loadLedgerFixture("v1/parked-on-approval.json");

describe("a run parked on an approval in the old record shape", () => {
  it("reads upgraded, and once approved finishes saved with one order written and every paid call counted once", async () => {
    // Prepare
    expect(dump.turns?.every((t) => t.schemaVersion === 1 && t.delta === undefined)).toBe(true);
    const { ledger, s3, deps } = fixtureWorld(dump, loadCustomerFile("customers/acme.yaml"), { tools: ALL_TOOLS });
    const run = dump.runs?.[0] ?? {};
    const runId = String(run.runId);
    const approvalId = String(run.pendingApprovalId);
    const paidBefore = Number((run.counters as { modelCalls: number }).modelCalls);

    // Act: the human approves (weeks later, after the upgrade), then the execution resumes
    const parked = await orchestrate(deps, { runId });
    expect(await ledger.decideApproval(approvalId, "approved", "priya.raman@acme-mfg.example", "ok")).toBe(true);
    await ledger.updateRun(runId, { status: "running" }, { onlyIfStatusIn: ["awaiting_approval"] });
    let step = await orchestrate(deps, { runId });
    for (let i = 0; i < 20 && step.type === "tools"; i++) {
      for (const call of step.calls) await runTool(deps, { runId, call });
      step = await orchestrate(deps, { runId });
    }
    const outcome = await finalize(deps, { runId, step });

    // Assess
    expect(parked).toMatchObject({ type: "approval", approvalId });
    expect(outcome.outcome).toBe("saved");
    expect(s3.puts.filter((p) => p.includes("/processed/"))).toHaveLength(1);
    const turns = await ledger.getTurns(runId);
    expect(turns.every((t) => t.schemaVersion === RECORD_VERSIONS.turn)).toBe(true);
    expect(turns.length).toBeGreaterThan(dump.turns?.length ?? 0);
    const after = await ledger.getRun(runId);
    expect(paidBefore).toBe(dump.turns?.length);
    expect(after?.counters.modelCalls).toBe(turns.length);
    const audit = await ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "run.opened")).toHaveLength(1);
    expect(audit.filter((a) => a.action === "order.saved")).toHaveLength(1);
  });
});

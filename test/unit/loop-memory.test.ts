import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { finalize } from "../../lambdas/shared/agent/finalize.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type { Step } from "../../lambdas/shared/steps.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { memoryS3 } from "./memory-s3.js";

const customer = loadCustomerFile("customers/acme.yaml");
const BUCKET = "acme-intake";

function setup(ledger = new MemoryLedger()) {
  const s3 = memoryS3();
  const deps: AgentDeps = {
    ledger,
    documents: new DocumentStore(s3.client),
    customer,
    bucket: BUCKET,
    model: { client: new ReferenceModelClient(), modelId: "reference" },
    tools: ALL_TOOLS,
  };
  return { s3, ledger, deps };
}

/** Drives a run the way the state machine does: Orchestrate, the tools it asks for, until the end. */
async function drive(deps: AgentDeps, runId: string): Promise<Step> {
  for (let i = 0; i < 20; i++) {
    const step = await orchestrate(deps, { runId });
    if (step.type !== "tools") return step;
    for (const call of step.calls) await runTool(deps, { runId, call });
  }
  throw new Error("the run did not end in 20 steps");
}

describe("the agent loop on the in-memory ledger (no emulator)", () => {
  it("runs acme 01 with the reference model to a saved order: one object, every paid call counted once", async () => {
    // Prepare
    const { s3, ledger, deps } = setup();
    const key = "incoming/01-packaging-saved.json";
    s3.objects.set(`${BUCKET}/${key}`, readFileSync("samples/acme/01-packaging-saved.json"));

    // Act
    const { runId, status } = await ingest(deps, { bucket: BUCKET, key, executionId: "exec-1" });
    const end = await drive(deps, runId);
    const outcome = await finalize(deps, { runId, step: end });

    // Assess: the effect itself (the order object) and the ledger's records
    expect(status).toBe("new");
    expect(outcome.outcome).toBe("saved");
    const orderPuts = s3.puts.filter((p) => p.startsWith(`${BUCKET}/processed/`));
    expect(orderPuts).toEqual([`${BUCKET}/processed/ACM-PO-22817.json`]);
    const run = await ledger.getRun(runId);
    const turns = await ledger.getTurns(runId);
    const tools = await ledger.getToolCalls(runId);
    expect(run?.status).toBe("saved");
    expect(run?.counters.modelCalls).toBe(turns.length);
    expect(run?.counters.toolCalls).toBe(tools.length);
    expect(new Set(run?.folded)).toEqual(
      new Set([
        ...turns.map((t) => `TURN#${String(t.turn).padStart(4, "0")}`),
        ...tools.map((c) => `TOOL#${c.toolUseId}#${c.argsHash}`),
      ]),
    );
    const audit = await ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "order.saved")).toHaveLength(1);
    expect(audit.filter((a) => a.action === "tool.executed")).toHaveLength(tools.length);
    expect(audit[0]?.action).toBe("run.opened");
  });

  it("replays a finished run from the ledger without paying the model or writing again", async () => {
    // Prepare: a finished run
    const { s3, ledger, deps } = setup();
    const key = "incoming/01-packaging-saved.json";
    s3.objects.set(`${BUCKET}/${key}`, readFileSync("samples/acme/01-packaging-saved.json"));
    const { runId } = await ingest(deps, { bucket: BUCKET, key, executionId: "exec-1" });
    await drive(deps, runId);
    const puts = s3.puts.length;
    const paid = (await ledger.getRun(runId))?.counters.modelCalls;
    let modelCalls = 0;
    const counting: AgentDeps = {
      ...deps,
      model: {
        modelId: "reference",
        client: {
          provider: "reference" as const,
          create: (...args: Parameters<ReferenceModelClient["create"]>) => {
            modelCalls++;
            return new ReferenceModelClient().create(...args);
          },
        },
      },
    };

    // Act: every step again, as a retried execution would
    const turns = await ledger.getTurns(runId);
    for (const t of turns) {
      for (const d of t.dispositions) {
        if (d.kind === "run") await runTool(counting, { runId, call: { toolUseId: d.toolUseId, name: d.name } });
      }
    }
    const again = await drive(counting, runId);

    // Assess
    expect(again.type).toBe("done");
    expect(modelCalls).toBe(0);
    expect(s3.puts.length).toBe(puts);
    expect((await ledger.getRun(runId))?.counters.modelCalls).toBe(paid);
  });

  it("catches up the run's counters when a step's record was stored but the run update was lost", async () => {
    // Prepare: the run record's update fails once, right after the first turn is stored
    const ledger = new MemoryLedger();
    let failures = 1;
    const fold = ledger.foldRun.bind(ledger);
    ledger.foldRun = async (...args) => {
      if (failures-- > 0) throw new Error("the process died before the run record was updated");
      return fold(...args);
    };
    const { s3, deps } = setup(ledger);
    const key = "incoming/01-packaging-saved.json";
    s3.objects.set(`${BUCKET}/${key}`, readFileSync("samples/acme/01-packaging-saved.json"));
    const { runId } = await ingest(deps, { bucket: BUCKET, key, executionId: "exec-1" });

    // Act
    await expect(orchestrate(deps, { runId })).rejects.toThrow(/process died/);
    const stranded = await ledger.getRun(runId);
    const end = await drive(deps, runId);
    await finalize(deps, { runId, step: end });

    // Assess: the stored turn was counted exactly once, by a later step
    expect(stranded?.counters.modelCalls).toBe(0);
    const run = await ledger.getRun(runId);
    expect(run?.status).toBe("saved");
    expect(run?.counters.modelCalls).toBe((await ledger.getTurns(runId)).length);
  });
});

import { readFileSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvalClock, requestApproval } from "../../lambdas/shared/agent/approvals.js";
import { guardCall } from "../../lambdas/shared/agent/guard.js";
import { approvalIdFor } from "../../lambdas/shared/approval/binding.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";
import { type EventLog, type LambdaRoute, LocalEngine, substitute } from "../../local/engine.js";
import { LocalStack } from "../../local/stack.js";
import { artifactOf, refOf, stateWith } from "../support/artifacts.js";
import { realCustomer, samplePo, tempDir } from "../support/stack.js";

/**
 * The approval lifecycle on the real state machine definition: first wait, reminder, escalation to
 * the next approver, reminder, then "approval timed out", with waits of one second taken from the
 * customer config through TimeoutSecondsPath. Services (DynamoDB, SES) are the local emulators.
 */
const ASL = readFileSync(new URL("../../statemachines/agent.asl.json", import.meta.url), "utf8");
const NAMES = [
  "Ingest",
  "Orchestrate",
  "Extract",
  "Validate",
  "Transform",
  "Save",
  "RequestApproval",
  "ApprovalTimeout",
  "Finalize",
  "RecordFailure",
  "McpTool",
] as const;
const arnOf = (fn: string) => `arn:aws:lambda:us-east-1:000000000000:function:PoAgent-test-${fn}`;
const DEFINITION = substitute(ASL, Object.fromEntries(NAMES.map((fn) => [`${fn}FunctionArn`, arnOf(fn)])));

const base = realCustomer("customer37");
// One second to the reminder, two to the escalation.
const customer: CustomerConfig = {
  ...base,
  approvalPolicy: { ...base.approvalPolicy, reminderAfterHours: 1 / 3600, escalateAfterHours: 2 / 3600 },
};

let stack: LocalStack;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir("approval-lifecycle");
  stack = await LocalStack.start({ dataDir, customers: [customer], retryIntervalMs: 0 });
});
afterAll(async () => {
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function pendingApproval(runId: string, approvers: string[]) {
  const po = samplePo("customer37", "03-over-limit-wednesday.json");
  const artifact = artifactOf(runId, po);
  const verdict = guardCall(customer, "save", refOf(artifact), stateWith(artifact));
  if (verdict.kind !== "approval") throw new Error("expected an approval");
  const approvalId = approvalIdFor(runId, "toolu_1", "save", verdict.argsHash);
  await stack.ledger.openRun({
    runId,
    customer: customer.name,
    document: { bucket: "b", key: "k", sha256: "s", size: 1 },
    executionId: runId,
    status: "running",
    turn: 1,
    counters: { ...ZERO_COUNTERS },
  });
  await stack.ledger.putApproval({
    approvalId,
    runId,
    customer: customer.name,
    turn: 1,
    call: { toolUseId: "toolu_1", name: "save", input: refOf(artifact) },
    callHash: verdict.argsHash,
    reason: verdict.request.reason,
    rule: verdict.request.rule,
    approvers,
    summary: verdict.request.summary,
    status: "pending",
    emailedTo: [],
    usedNonces: [],
  });
  return approvalId;
}

describe("approval lifecycle: reminder → escalation → expiry", () => {
  it("reminds, escalates to the next approver, then ends 'approval timed out', visible in history and audit", async () => {
    // Prepare: a run waiting on alice, with carol next in the chain.
    const runId = "customer37-lifecycle-1";
    const approvalId = await pendingApproval(runId, ["alice", "carol"]);
    const deps = stack.deps(customer);
    let orchestrations = 0;
    const routes: Record<string, LambdaRoute> = {
      [arnOf("Ingest")]: async () => ({ runId, status: "new" }),
      [arnOf("Orchestrate")]: async () => {
        orchestrations += 1;
        if (orchestrations === 1) return { type: "approval", turn: 1, approvalId };
        const status = (await stack.ledger.getApproval(approvalId))?.status;
        return {
          type: "done",
          turn: 2,
          outcome: "rejected",
          reason: status === "timed_out" ? "approval timed out" : `${status}`,
        };
      },
      [arnOf("RequestApproval")]: async (p) => requestApproval(deps, p as Parameters<typeof requestApproval>[1]),
      [arnOf("ApprovalTimeout")]: async (p) => approvalClock(deps, p as Parameters<typeof approvalClock>[1]),
      [arnOf("Finalize")]: async (p) => ({
        outcome: "rejected",
        reason: (p as { step: { reason: string } }).step.reason,
      }),
    };
    for (const fn of ["Extract", "Validate", "Transform", "Save", "McpTool", "RecordFailure"]) {
      routes[arnOf(fn)] = async () => ({ unexpected: fn });
    }
    const history: EventLog[] = [];
    const engine = new LocalEngine({
      definition: DEFINITION,
      routes,
      retryIntervalOverrides: 0,
      onEvent: (_, e) => history.push(e),
    });

    // Act
    const result = await engine.startExecution({
      name: "lifecycle-1",
      input: { detail: { bucket: { name: "b" }, object: { key: "k", "version-id": "v1" } } },
    }).result;

    // Assess: the outcome
    expect(result.status).toBe("SUCCEEDED");
    expect(result.output).toMatchObject({ result: { outcome: "rejected", reason: "approval timed out" } });
    expect(await stack.ledger.getApproval(approvalId)).toMatchObject({
      status: "timed_out",
      emailedTo: ["alice", "carol"],
    });

    // The run's history: four waits, each ended by its deadline, each deadline a clock step.
    const entered = history.filter((e) => e.type === "StateEntered").map((e) => ("state" in e ? e.state.name : ""));
    expect(entered.filter((n) => n === "WaitForApproval")).toHaveLength(4);
    expect(entered.filter((n) => n === "ApprovalTimedOut")).toHaveLength(4);
    expect(entered.filter((n) => n === "StartApprovalClock")).toHaveLength(1);

    // The audit log: who, what, in order.
    const audit = (await stack.ledger.getAudit(runId)).map((a) => [a.action, a.detail.approver ?? a.detail.to ?? ""]);
    expect(audit).toEqual([
      ["approval.clock_started", ""],
      ["approval.requested", "alice"],
      ["approval.reminder_sent", "alice"],
      ["approval.escalated", "carol"],
      ["approval.requested", "carol"],
      ["approval.reminder_sent", "carol"],
      ["approval.timed_out", ""],
    ]);
    const timedOut = (await stack.ledger.getAudit(runId)).find((a) => a.action === "approval.timed_out");
    expect(timedOut?.detail.reason).toBe("approval timed out");

    // The inbox: a request and a reminder for each approver, readable HTML and a text part.
    const store = (await (await fetch(`${stack.services.sesEndpoint}/store`)).json()) as {
      emails: { subject: string; body: { html: string; text: string }; destination: { to: string[] } }[];
    };
    const mails = store.emails.map((m) => [m.destination.to[0], m.subject.startsWith("Reminder:")]);
    expect(mails).toEqual([
      ["alice.moreno@prairiestate.example", false],
      ["alice.moreno@prairiestate.example", true],
      ["carol.nguyen@prairiestate.example", false],
      ["carol.nguyen@prairiestate.example", true],
    ]);
    for (const m of store.emails) {
      expect(m.body.html).toContain("/approvals/");
      expect(m.body.text).toMatch(/Approve: http/);
    }
  }, 30_000);

  it("decides nothing more once a human decided: the clock returns done", async () => {
    // Prepare
    const runId = "customer37-lifecycle-2";
    const approvalId = await pendingApproval(runId, ["alice"]);
    await stack.ledger.decideApproval(approvalId, "approved", "alice@x", undefined);

    // Act
    const out = await approvalClock(stack.deps(customer), { runId, approvalId, event: "deadline", stage: 1 });

    // Assess
    expect(out).toMatchObject({ action: "done" });
    expect((await stack.ledger.getApproval(approvalId))?.status).toBe("approved");
  });
});

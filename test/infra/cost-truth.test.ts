import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import {
  AWS_PRICES,
  estimateAwsCost,
  TRANSITIONS_AFTER,
  USAGE_KEY,
  usageFromHistory,
} from "../../lambdas/shared/cost-estimate.js";
import { LocalStack } from "../../local/stack.js";
import { LAMBDA_TASK_STATES } from "../../local/trace.js";
import { FaultInjector } from "../support/faults.js";

const ASL = JSON.parse(readFileSync("statemachines/agent.asl.json", "utf8")) as {
  States: Record<string, { Type: string; Next?: string; Default?: string; Choices?: { Next: string }[] }>;
};

/** An AWS history as GetExecutionHistory returns it (event shapes from the API reference). */
function history(): { events: HistoryEvent[]; add(e: Omit<HistoryEvent, "id" | "timestamp">, at?: number): number } {
  const events: HistoryEvent[] = [];
  return {
    events,
    add(e, at = events.length) {
      const id = events.length + 1;
      events.push({ ...e, id, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, at * 100)) } as HistoryEvent);
      return id;
    },
  };
}

const usage = (memoryMb: number, extra: Partial<Record<string, number>> = {}) => ({
  memoryMb,
  durationMs: 40,
  dynamodbReadUnits: 2,
  dynamodbWriteUnits: 3,
  s3WriteRequests: 1,
  s3ReadRequests: 1,
  s3BytesWritten: 2048,
  s3BytesRead: 100,
  logBytes: 500,
  ...extra,
});

/** One Lambda Task state entered once, attempted `attempts` times (all but the last failing). */
function lambdaTask(h: ReturnType<typeof history>, name: string, attempts: number, memoryMb = 256): void {
  h.add({ type: "TaskStateEntered", stateEnteredEventDetails: { name } });
  for (let i = 1; i <= attempts; i++) {
    const scheduled = h.add({
      type: "TaskScheduled",
      taskScheduledEventDetails: {
        resourceType: "lambda",
        resource: "invoke",
        region: "us-east-1",
        parameters: JSON.stringify({ FunctionName: `arn:aws:lambda:us-east-1:1:function:${name}`, Payload: {} }),
      },
    });
    const started = h.add({
      type: "TaskStarted",
      previousEventId: scheduled,
      taskStartedEventDetails: { resourceType: "lambda", resource: "invoke" },
    });
    if (i < attempts) {
      h.add({
        type: "TaskFailed",
        previousEventId: started,
        taskFailedEventDetails: { resourceType: "lambda", resource: "invoke", error: "TransientError", cause: "x" },
      });
    } else {
      const output = JSON.stringify({ StatusCode: 200, Payload: { ok: true, [USAGE_KEY]: usage(memoryMb) } });
      h.add({
        type: "TaskSucceeded",
        previousEventId: started,
        taskSucceededEventDetails: { resourceType: "lambda", resource: "invoke", output },
      });
    }
  }
  h.add({ type: "TaskStateExited", stateExitedEventDetails: { name } });
}

describe("cost truth: usage counted from the execution history", () => {
  it("counts states entered plus one per retry, and one invocation per attempt", () => {
    // Prepare: Ingest, a Choice, Orchestrate; the faulty one retries Orchestrate twice
    const build = (orchestrateAttempts: number) => {
      const h = history();
      h.add({ type: "ExecutionStarted" });
      lambdaTask(h, "Ingest", 1);
      h.add({ type: "ChoiceStateEntered", stateEnteredEventDetails: { name: "IsDuplicate" } });
      h.add({ type: "ChoiceStateExited", stateExitedEventDetails: { name: "IsDuplicate" } });
      lambdaTask(h, "Orchestrate", orchestrateAttempts, 512);
      return h.events;
    };
    // Act
    const clean = usageFromHistory(build(1));
    const faulty = usageFromHistory(build(3));
    // Assess: 3 states entered; each retry one more transition and one more invocation
    expect(clean.stateTransitions).toBe(3);
    expect(faulty.stateTransitions).toBe(5);
    expect(clean.lambdaInvocations).toHaveLength(2);
    expect(faulty.lambdaInvocations).toHaveLength(4);
    // a failed attempt is timed by its events (100 ms apart here) at the memory its function reported
    expect(faulty.lambdaInvocations.filter((i) => i.memoryMb === 512)).toHaveLength(3);
    expect(faulty.lambdaInvocations[1]).toEqual({ durationMs: 100, memoryMb: 512 });
    // DynamoDB/S3/log figures are the invocations' own reports, summed
    expect(clean.dynamodb).toEqual({ readUnits: 4, writeUnits: 6 });
    expect(clean.s3).toEqual({ writeRequests: 2, readRequests: 2, bytesWritten: 4096, bytesRead: 200 });
    expect(clean.xrayTraces).toBe(1);
    expect(clean.source).toBe("history");
  });

  it("pairs interleaved parallel attempts by previousEventId", () => {
    // Prepare: two Map iterations whose events interleave; the second (validate) reports 1024 MiB
    const h = history();
    h.add({ type: "MapStateEntered", stateEnteredEventDetails: { name: "RunTools" } });
    h.add({ type: "TaskStateEntered", stateEnteredEventDetails: { name: "ValidateTool" } });
    h.add({ type: "TaskStateEntered", stateEnteredEventDetails: { name: "TransformTool" } });
    const sched = (fn: string) =>
      h.add({
        type: "TaskScheduled",
        taskScheduledEventDetails: {
          resourceType: "lambda",
          resource: "invoke",
          region: "us-east-1",
          parameters: JSON.stringify({ FunctionName: fn }),
        },
      });
    const a = sched("validate");
    const b = sched("transform");
    const sa = h.add({
      type: "TaskStarted",
      previousEventId: a,
      taskStartedEventDetails: { resourceType: "lambda", resource: "invoke" },
    });
    const sb = h.add({
      type: "TaskStarted",
      previousEventId: b,
      taskStartedEventDetails: { resourceType: "lambda", resource: "invoke" },
    });
    const out = (m: number) => JSON.stringify({ Payload: { [USAGE_KEY]: usage(m, { durationMs: m }) } });
    h.add({
      type: "TaskSucceeded",
      previousEventId: sb,
      taskSucceededEventDetails: { resourceType: "lambda", resource: "invoke", output: out(256) },
    });
    h.add({
      type: "TaskSucceeded",
      previousEventId: sa,
      taskSucceededEventDetails: { resourceType: "lambda", resource: "invoke", output: out(1024) },
    });
    // Act
    const u = usageFromHistory(h.events);
    // Assess
    expect(u.stateTransitions).toBe(3);
    expect(u.lambdaInvocations).toEqual([
      { durationMs: 1024, memoryMb: 1024 },
      { durationMs: 256, memoryMb: 256 },
    ]);
  });

  it("times the caller's own running invocation with its meter and adds the states still to come", () => {
    const h = history();
    h.add({ type: "TaskStateEntered", stateEnteredEventDetails: { name: "Finalize" } });
    const s = h.add({
      type: "TaskScheduled",
      taskScheduledEventDetails: { resourceType: "lambda", resource: "invoke", region: "us-east-1", parameters: "{}" },
    });
    h.add({
      type: "TaskStarted",
      previousEventId: s,
      taskStartedEventDetails: { resourceType: "lambda", resource: "invoke" },
    });
    const own = usage(256, { durationMs: 77, dynamodbWriteUnits: 9 });
    const u = usageFromHistory(h.events, { extraTransitions: TRANSITIONS_AFTER.Finalize, ownUsage: own });
    expect(u.stateTransitions).toBe(1 + TRANSITIONS_AFTER.Finalize);
    expect(u.lambdaInvocations).toEqual([{ durationMs: 77, memoryMb: 256 }]);
    expect(u.dynamodb?.writeUnits).toBe(9);
  });

  it("prices every service at the stated list prices", () => {
    const est = estimateAwsCost({
      stateTransitions: 10,
      lambdaInvocations: [{ durationMs: 1000, memoryMb: 1024 }],
      dynamodb: { readUnits: 8, writeUnits: 4 },
      s3: { writeRequests: 2, readRequests: 5, bytesWritten: 1024 ** 3, bytesRead: 0 },
      logBytes: 1024 ** 3,
      xrayTraces: 1,
      source: "history",
    });
    expect(est.dynamodbUsd).toBeCloseTo(8 * 0.125e-6 + 4 * 0.625e-6, 15);
    expect(est.s3Usd).toBeCloseTo(2 * 0.005e-3 + 5 * 0.0004e-3 + 0.023, 12);
    expect(est.logsUsd).toBeCloseTo(0.5, 12);
    expect(est.xrayUsd).toBeCloseTo(AWS_PRICES.xrayPerTrace, 15);
    expect(est.totalUsd).toBeCloseTo(
      est.stepFunctionsUsd + est.lambdaUsd + est.dynamodbUsd + est.s3Usd + est.logsUsd + est.xrayUsd,
      15,
    );
  });

  it("TRANSITIONS_AFTER matches the definition: the states entered after Finalize and after RecordFailure", () => {
    // The longest path of states entered after a state, following Next/Default/Choices.
    const statesAfter = (name: string): number => {
      const s = ASL.States[name];
      const next = [s?.Next, s?.Default, ...(s?.Choices ?? []).map((c) => c.Next)].filter(
        (n): n is string => typeof n === "string",
      );
      return next.length === 0 ? 0 : Math.max(...next.map((n) => 1 + statesAfter(n)));
    };
    expect(statesAfter("Finalize")).toBe(TRANSITIONS_AFTER.Finalize);
    expect(statesAfter("RecordFailure")).toBe(TRANSITIONS_AFTER.RecordFailure);
  });
});

/** Fails the first write of model turn 1 once, before the SDK's retries: Orchestrate's Retry runs it again. */
class FailFirstTurnWrite extends FaultInjector {
  injected = 0;
  constructor() {
    super(1, {});
  }
  override throttleDynamo(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: { sk?: unknown } }).Item;
        const sk = typeof item?.sk === "string" ? item.sk : (item?.sk as { S?: string } | undefined)?.S;
        if (sk === "TURN#0001" && this.injected === 0) {
          this.injected++;
          throw Object.assign(new Error("injected"), {
            name: "InternalServerError",
            $metadata: { httpStatusCode: 500 },
          });
        }
        return next(args);
      },
      { step: "serialize", name: "testFailFirstTurnWrite" },
    );
  }
}

describe("cost truth on the local engine: the run's record equals its execution's events", () => {
  let dirs: string[] = [];
  let stacks: LocalStack[] = [];
  afterEach(async () => {
    for (const s of stacks) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    stacks = [];
    dirs = [];
  });

  const runOnce = async (faults?: FailFirstTurnWrite) => {
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-cost-"));
    dirs.push(dataDir);
    const stack = await LocalStack.start({
      dataDir,
      customers: loadCustomers("customers"),
      retryIntervalMs: 0,
      ...(faults ? { faults } : {}),
    });
    stacks.push(stack);
    const path = join("samples", "acme", "01-packaging-saved.json");
    const runId = await stack.submit("acme", path, readFileSync(path));
    const run = await stack.waitSettled(runId);
    const trace = stack.traces.read(runId);
    // Independently of the history adapter: the engine's own state events.
    const entered = trace.filter((e) => e.type === "state_entered");
    const retried = trace.filter((e) => e.type === "state_retried");
    const lambdaEntries = entered.filter((e) => e.type === "state_entered" && LAMBDA_TASK_STATES.has(e.state));
    return { run, transitions: entered.length + retried.length, invocations: lambdaEntries.length + retried.length };
  };

  it("a run with a retried fault shows exactly its extra transition and invocation", async () => {
    // Act
    const clean = await runOnce();
    const faults = new FailFirstTurnWrite();
    const faulty = await runOnce(faults);
    // Assess
    expect(faults.injected).toBe(1);
    expect(faulty.run?.reason).toBe(clean.run?.reason);
    expect(clean.run?.status).toBe("saved");
    expect(faulty.run?.status).toBe("saved");
    const c = clean.run?.cost?.aws;
    const f = faulty.run?.cost?.aws;
    expect(c?.source).toBe("history");
    expect(f?.source).toBe("history");
    // the figures are the events' counts, not a formula
    expect(c?.stateTransitions).toBe(clean.transitions);
    expect(c?.lambdaInvocations).toBe(clean.invocations);
    expect(f?.stateTransitions).toBe(faulty.transitions);
    expect(f?.lambdaInvocations).toBe(faulty.invocations);
    expect(f?.stateTransitions).toBe((c?.stateTransitions ?? 0) + 1);
    expect(f?.lambdaInvocations).toBe((c?.lambdaInvocations ?? 0) + 1);
    // the functions' own DynamoDB and S3 calls are in it (the saved order is an S3 put)
    expect(c?.dynamodbWriteUnits).toBeGreaterThan(0);
    expect(c?.s3Requests).toBeGreaterThan(0);
    expect(c?.logBytes).toBeGreaterThan(0);
    expect(c?.xrayTraces).toBe(1);
  }, 120_000);
});

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import {
  InvalidOutput,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  TaskDoesNotExist,
} from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { type EventLog, type LambdaRoute, LocalEngine, substitute } from "../../local/engine.js";
import { closeServer, listen, urlOf } from "../../local/ports.js";
import { createSfnApiHandler } from "../../local/sfn-api.js";

const ASL = readFileSync(new URL("../../statemachines/agent.asl.json", import.meta.url), "utf8");
const FUNCTIONS = [
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
type FunctionKey = (typeof FUNCTIONS)[number];

const arnOf = (fn: FunctionKey): string => `arn:aws:lambda:us-east-1:000000000000:function:PoAgent-test-${fn}`;
const DEFINITION = substitute(ASL, Object.fromEntries(FUNCTIONS.map((fn) => [`${fn}FunctionArn`, arnOf(fn)])));
const INPUT = { detail: { bucket: { name: "intake" }, object: { key: "po-1.pdf", "version-id": "v1" } } };

interface Calls {
  [fn: string]: unknown[];
}

/** Routes that record every payload; `overrides` replace the defaults per function. */
function makeRoutes(overrides: Partial<Record<FunctionKey, LambdaRoute>>): {
  routes: Record<string, LambdaRoute>;
  calls: Calls;
} {
  const calls: Calls = {};
  const defaults: Record<FunctionKey, LambdaRoute> = {
    Ingest: async () => ({ runId: "run-1", status: "started" }),
    Orchestrate: async () => ({ type: "done", turn: 1, outcome: "saved", reason: "ok" }),
    Extract: async (p) => ({ toolUseId: toolUseIdOf(p), isError: false }),
    Validate: async (p) => ({ toolUseId: toolUseIdOf(p), isError: false }),
    Transform: async (p) => ({ toolUseId: toolUseIdOf(p), isError: false }),
    Save: async (p) => ({ toolUseId: toolUseIdOf(p), isError: false }),
    McpTool: async (p) => ({ toolUseId: toolUseIdOf(p), isError: false }),
    RequestApproval: async () => ({ sent: true }),
    // The approval clock: a long first wait; any deadline ends the request.
    ApprovalTimeout: async (p) => {
      const { approvalId, event, stage = 0 } = p as { approvalId: string; event: string; stage?: number };
      return event === "start"
        ? { approvalId, action: "wait", stage: 0, waitSeconds: 3600 }
        : { approvalId, action: "done", stage, waitSeconds: 1 };
    },
    Finalize: async () => ({ outcome: "saved", reason: "ok" }),
    RecordFailure: async () => ({ recorded: true }),
  };
  const routes: Record<string, LambdaRoute> = {};
  for (const fn of FUNCTIONS) {
    const route = overrides[fn] ?? defaults[fn];
    routes[arnOf(fn)] = async (payload) => {
      calls[fn] = [...(calls[fn] ?? []), payload];
      return route(payload);
    };
  }
  return { routes, calls };
}

function toolUseIdOf(payload: unknown): string {
  const call = (payload as { call?: { toolUseId?: string } }).call;
  return call?.toolUseId ?? "?";
}

function scripted(steps: unknown[]): LambdaRoute {
  let i = 0;
  return async () => {
    const step = steps[Math.min(i, steps.length - 1)];
    i += 1;
    return step;
  };
}

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let engines: LocalEngine[] = [];
function newEngine(routes: Record<string, LambdaRoute>, extra: { onEvent?: (arn: string, e: EventLog) => void } = {}) {
  const engine = new LocalEngine({ definition: DEFINITION, routes, retryIntervalOverrides: 0, ...extra });
  engines.push(engine);
  return engine;
}

afterEach(() => {
  for (const engine of engines) engine.abortAll();
  engines = [];
});

describe("LocalEngine on agent.asl.json", () => {
  it("runs tools in parallel, waits for the approval callback, then succeeds", async () => {
    // Prepare: both tool routes block until the other has started, so a sequential Map would fail.
    let running = 0;
    let peak = 0;
    let releaseTools: () => void = () => {};
    const bothStarted = new Promise<void>((resolve) => {
      releaseTools = resolve;
    });
    const tool: LambdaRoute = async (payload) => {
      running += 1;
      peak = Math.max(peak, running);
      if (running === 2) releaseTools();
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("tools ran serially")), 2_000),
      );
      await Promise.race([bothStarted, timeout]);
      running -= 1;
      return { toolUseId: toolUseIdOf(payload), isError: false };
    };
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([
        {
          type: "tools",
          turn: 1,
          calls: [
            { toolUseId: "t1", name: "extract", lane: "document" },
            { toolUseId: "t2", name: "validate", lane: "check" },
          ],
        },
        { type: "approval", turn: 2, approvalId: "a1" },
        { type: "done", turn: 3, outcome: "saved", reason: "ok" },
      ]),
      Extract: tool,
      Validate: tool,
    });
    const engine = newEngine(routes);

    // Act
    const execution = engine.startExecution({ name: "po-1", input: INPUT });
    let settled = false;
    void execution.result.then(() => {
      settled = true;
    });
    await waitFor(() => (calls.RequestApproval?.length ?? 0) === 1, "the approval request");
    await new Promise((resolve) => setTimeout(resolve, 50));

    // Assess: waiting on a minted token, visible as a pending task.
    expect(settled).toBe(false);
    expect(peak).toBe(2);
    expect(calls.Extract).toEqual([{ runId: "run-1", call: { toolUseId: "t1", name: "extract", lane: "document" } }]);
    expect(calls.Validate).toEqual([{ runId: "run-1", call: { toolUseId: "t2", name: "validate", lane: "check" } }]);
    const approval = calls.RequestApproval?.[0] as { runId: string; approvalId: string; taskToken: string };
    expect(approval).toMatchObject({ runId: "run-1", approvalId: "a1" });
    expect(approval.taskToken).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(engine.pendingTasks()).toEqual([
      {
        taskToken: approval.taskToken,
        executionArn: execution.executionArn,
        stateName: "WaitForApproval",
        payload: approval,
      },
    ]);

    // Act: the approver decides.
    engine.sendTaskSuccess(approval.taskToken, JSON.stringify({ decision: "approved" }));
    const result = await execution.result;

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(result.output).toMatchObject({
      run: { runId: "run-1", status: "started" },
      decision: { decision: "approved" },
      result: { outcome: "saved", reason: "ok" },
    });
    expect(calls.Ingest).toEqual([
      {
        bucket: "intake",
        key: "po-1.pdf",
        versionId: "v1",
        executionId: execution.executionArn,
        // `$$.StateMachine.Id`: a multi-PO document starts its child executions on the same machine.
        stateMachineArn: "arn:aws:states:us-east-1:000000000000:stateMachine:PoAgent-local",
      },
    ]);
    expect(execution.executionArn).toBe("arn:aws:states:us-east-1:000000000000:execution:PoAgent-local:po-1");
    expect(calls.Orchestrate).toHaveLength(3);
    expect(calls.Finalize).toEqual([
      { runId: "run-1", step: { type: "done", turn: 3, outcome: "saved", reason: "ok" } },
    ]);
    expect(engine.pendingTasks()).toEqual([]);
    expect(() => engine.sendTaskSuccess(approval.taskToken, "{}")).toThrow(
      expect.objectContaining({ name: "TaskDoesNotExist" }),
    );
    expect(engine.describeExecution(execution.executionArn)).toMatchObject({ status: "SUCCEEDED", name: "po-1" });
  });

  it("mints a new token for every approval wait", async () => {
    // Prepare
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([
        { type: "approval", turn: 1, approvalId: "a1" },
        { type: "approval", turn: 2, approvalId: "a2" },
        { type: "done", turn: 3, outcome: "saved", reason: "ok" },
      ]),
    });
    const engine = newEngine(routes);

    // Act
    const execution = engine.startExecution({ name: "po-2", input: INPUT });
    await waitFor(() => engine.pendingTasks().length === 1, "first approval");
    const first = engine.pendingTasks()[0]?.taskToken ?? "";
    engine.sendTaskSuccess(first, '{"decision":"approved"}');
    await waitFor(() => engine.pendingTasks().length === 1 && engine.pendingTasks()[0]?.taskToken !== first, "second");
    const second = engine.pendingTasks()[0]?.taskToken ?? "";
    engine.sendTaskSuccess(second, '{"decision":"approved"}');
    const result = await execution.result;

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(second).not.toBe(first);
    expect((calls.RequestApproval as { taskToken: string }[]).map((p) => p.taskToken)).toEqual([first, second]);
  });

  it("retries a TransientError and keeps going even when the event listener throws", async () => {
    // Prepare
    let attempts = 0;
    const { routes, calls } = makeRoutes({
      Orchestrate: async () => {
        attempts += 1;
        if (attempts === 1) throw namedError("TransientError", "throttled");
        return { type: "done", turn: 1, outcome: "saved", reason: "ok" };
      },
    });
    const events: EventLog[] = [];
    const engine = newEngine(routes, {
      onEvent: (_arn, event) => {
        events.push(event);
        throw new Error("listener bug");
      },
    });

    // Act
    const result = await engine.startExecution({ name: "po-3", input: INPUT }).result;

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(calls.Orchestrate).toHaveLength(2);
    expect(calls.RecordFailure).toBeUndefined();
    await waitFor(() => events.some((e) => e.type === "ExecutionSucceeded"), "the last event");
    expect(events.some((e) => e.type === "StateRetried" && e.state.name === "Orchestrate")).toBe(true);
  });

  it("records any other error and fails with RunFailed", async () => {
    // Prepare
    const { routes, calls } = makeRoutes({
      Orchestrate: async () => {
        throw namedError("LedgerSchemaError", "unknown schemaVersion 9");
      },
    });
    const engine = newEngine(routes);

    // Act
    const result = await engine.startExecution({ name: "po-4", input: INPUT }).result;

    // Assess
    expect(result).toMatchObject({ status: "FAILED", error: "RunFailed" });
    expect(calls.Orchestrate).toHaveLength(1);
    const recorded = calls.RecordFailure?.[0] as { state: { error: { Error: string; Cause: string } } };
    expect(recorded.state.error.Error).toBe("LedgerSchemaError");
    expect(JSON.parse(recorded.state.error.Cause)).toMatchObject({
      errorType: "LedgerSchemaError",
      errorMessage: "unknown schemaVersion 9",
    });
  });

  it("routes each call by its lane, never by its name: a tool the definition never heard of reaches its lane's Lambda", async () => {
    // Prepare: one call per lane; the names are ones no version of the definition ever named.
    const lanes = { document: "Extract", check: "Validate", version: "Transform", save: "Save", mcp: "McpTool" };
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([
        {
          type: "tools",
          turn: 1,
          calls: Object.keys(lanes).map((lane, i) => ({ toolUseId: `t${i}`, name: `new_${lane}_tool`, lane })),
        },
        { type: "done", turn: 2, outcome: "saved", reason: "ok" },
      ]),
    });
    const engine = newEngine(routes);

    // Act
    const result = await engine.startExecution({ name: "po-lanes", input: INPUT }).result;

    // Assess: each lane's Lambda got exactly its call.
    expect(result.status).toBe("SUCCEEDED");
    Object.entries(lanes).forEach(([lane, fn], i) => {
      expect(calls[fn], lane).toEqual([
        { runId: "run-1", call: { toolUseId: `t${i}`, name: `new_${lane}_tool`, lane } },
      ]);
    });
  });

  it.each([
    ["an unknown tool (no lane)", { toolUseId: "t9", name: "rm_rf" }],
    ["a call without a lane, even of a known tool", { toolUseId: "t9", name: "extract" }],
    ["a lane no Lambda runs", { toolUseId: "t9", name: "escalate_to_human", lane: "approval" }],
    ["a made-up lane", { toolUseId: "t9", name: "extract", lane: "shell" }],
  ])("fails a run whose orchestrator dispatches %s, visibly and without running a tool", async (_what, call) => {
    // Prepare
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([{ type: "tools", turn: 1, calls: [call] }]),
    });
    const engine = newEngine(routes);

    // Act
    const result = await engine.startExecution({ name: "po-5", input: INPUT }).result;

    // Assess
    expect(result).toMatchObject({ status: "FAILED", error: "RunFailed" });
    const recorded = calls.RecordFailure?.[0] as { state: { error: { Error: string } } };
    expect(recorded.state.error.Error).toBe("UnroutedTool");
    for (const fn of ["Extract", "Validate", "Transform", "Save", "McpTool"]) expect(calls[fn], fn).toBeUndefined();
  });

  it("turns SendTaskFailure into an error that Catch matches by name", async () => {
    // Prepare
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([{ type: "approval", turn: 1, approvalId: "a1" }]),
    });
    const engine = newEngine(routes);
    const execution = engine.startExecution({ name: "po-6", input: INPUT });
    await waitFor(() => engine.pendingTasks().length === 1, "the approval wait");

    // Act
    engine.sendTaskFailure(engine.pendingTasks()[0]?.taskToken ?? "", "ApprovalError", "link reused");
    const result = await execution.result;

    // Assess
    expect(result).toMatchObject({ status: "FAILED", error: "RunFailed" });
    const recorded = calls.RecordFailure?.[0] as { state: { error: { Error: string; Cause: string } } };
    expect(recorded.state.error).toEqual({ Error: "ApprovalError", Cause: "link reused" });
  });

  it("aborts a waiting execution and invalidates its token", async () => {
    // Prepare
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([{ type: "approval", turn: 1, approvalId: "a1" }]),
    });
    const engine = newEngine(routes);
    const execution = engine.startExecution({ name: "po-7", input: INPUT });
    await waitFor(() => engine.pendingTasks().length === 1, "the approval wait");
    const token = engine.pendingTasks()[0]?.taskToken ?? "";

    // Act
    execution.abort();
    const result = await execution.result;

    // Assess
    expect(result.status).toBe("ABORTED");
    expect(engine.pendingTasks()).toEqual([]);
    expect(() => engine.sendTaskSuccess(token, "{}")).toThrow(expect.objectContaining({ name: "TaskDoesNotExist" }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls.RequestApproval).toHaveLength(1);
    expect(calls.RecordFailure).toBeUndefined();
  });

  it("refuses a second execution with the same name", () => {
    // Prepare
    const { routes } = makeRoutes({ Orchestrate: scripted([{ type: "approval", turn: 1, approvalId: "a1" }]) });
    const engine = newEngine(routes);
    engine.startExecution({ name: "po-8", input: INPUT });

    // Act + Assess
    expect(() => engine.startExecution({ name: "po-8", input: INPUT })).toThrow(
      expect.objectContaining({ name: "ExecutionAlreadyExists" }),
    );
  });

  it("times out an approval wait after the state's TimeoutSeconds and expires the token", async () => {
    // Prepare: an approval clock that gives the wait a 1 s deadline (TimeoutSecondsPath).
    const definition = JSON.parse(DEFINITION) as object;
    const { routes, calls } = makeRoutes({
      ApprovalTimeout: async (p) => {
        const { approvalId, event } = p as { approvalId: string; event: string };
        return event === "start"
          ? { approvalId, action: "wait", stage: 0, waitSeconds: 1 }
          : { approvalId, action: "done", stage: 0, waitSeconds: 1 };
      },
      Orchestrate: scripted([
        { type: "approval", turn: 1, approvalId: "a1" },
        { type: "done", turn: 2, outcome: "rejected", reason: "approval timed out" },
      ]),
      Finalize: async () => ({ outcome: "rejected", reason: "approval timed out" }),
    });
    const engine = new LocalEngine({ definition: JSON.stringify(definition), routes, retryIntervalOverrides: 0 });
    engines.push(engine);

    // Act
    const execution = engine.startExecution({ name: "po-9", input: INPUT });
    await waitFor(() => engine.pendingTasks().length === 1, "the approval wait");
    const token = engine.pendingTasks()[0]?.taskToken ?? "";
    const result = await execution.result;

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(calls.ApprovalTimeout).toEqual([
      { runId: "run-1", approvalId: "a1", event: "start" },
      { runId: "run-1", approvalId: "a1", event: "deadline", stage: 0 },
    ]);
    expect(() => engine.sendTaskSuccess(token, "{}")).toThrow(expect.objectContaining({ name: "TaskTimedOut" }));
  });

  it("times out the whole execution after the definition's TimeoutSeconds", async () => {
    // Prepare
    const definition = { ...JSON.parse(DEFINITION), TimeoutSeconds: 1 };
    const { routes } = makeRoutes({ Orchestrate: scripted([{ type: "approval", turn: 1, approvalId: "a1" }]) });
    const engine = new LocalEngine({ definition: JSON.stringify(definition), routes });
    engines.push(engine);

    // Act
    const result = await engine.startExecution({ name: "po-10", input: INPUT }).result;

    // Assess
    expect(result).toMatchObject({ status: "TIMED_OUT", error: "States.Timeout" });
    expect(engine.pendingTasks()).toEqual([]);
  });
});

describe("createSfnApiHandler", () => {
  async function withApi(test: (sfn: SFNClient, engine: LocalEngine, calls: Calls) => Promise<void>): Promise<void> {
    const { routes, calls } = makeRoutes({
      Orchestrate: scripted([
        { type: "approval", turn: 1, approvalId: "a1" },
        { type: "done", turn: 2, outcome: "saved", reason: "ok" },
      ]),
    });
    const engine = newEngine(routes);
    const server = createServer(createSfnApiHandler(engine));
    await listen(server);
    const sfn = new SFNClient({
      endpoint: urlOf(server),
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
      maxAttempts: 1,
    });
    try {
      await test(sfn, engine, calls);
    } finally {
      sfn.destroy();
      await closeServer(server);
    }
  }

  it("completes a waiting task through the real SFN client", async () => {
    await withApi(async (sfn, engine) => {
      // Prepare
      const execution = engine.startExecution({ name: "api-1", input: INPUT });
      await waitFor(() => engine.pendingTasks().length === 1, "the approval wait");
      const taskToken = engine.pendingTasks()[0]?.taskToken ?? "";

      // Act
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken }));
      const badOutput = sfn.send(new SendTaskSuccessCommand({ taskToken, output: "{not json" }));
      await expect(badOutput).rejects.toBeInstanceOf(InvalidOutput);
      await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify({ decision: "approved" }) }));
      const result = await execution.result;

      // Assess
      expect(result.status).toBe("SUCCEEDED");
      expect(result.output).toMatchObject({ decision: { decision: "approved" } });
      const reused = sfn.send(new SendTaskSuccessCommand({ taskToken, output: "{}" }));
      await expect(reused).rejects.toBeInstanceOf(TaskDoesNotExist);
    });
  });

  it("fails a waiting task with the given error name and rejects unknown tokens", async () => {
    await withApi(async (sfn, engine, calls) => {
      // Prepare
      const execution = engine.startExecution({ name: "api-2", input: INPUT });
      await waitFor(() => engine.pendingTasks().length === 1, "the approval wait");
      const taskToken = engine.pendingTasks()[0]?.taskToken ?? "";

      // Act
      const unknown = await sfn.send(new SendTaskFailureCommand({ taskToken: "no-such-token", error: "X" })).then(
        () => undefined,
        (error: unknown) => error,
      );
      await sfn.send(new SendTaskFailureCommand({ taskToken, error: "ApprovalError", cause: "expired link" }));
      const result = await execution.result;

      // Assess
      expect(unknown).toBeInstanceOf(TaskDoesNotExist);
      expect(unknown).toMatchObject({ $metadata: { httpStatusCode: 400 } });
      expect(result).toMatchObject({ status: "FAILED", error: "RunFailed" });
      const recorded = calls.RecordFailure?.[0] as { state: { error: unknown } };
      expect(recorded.state.error).toEqual({ Error: "ApprovalError", Cause: "expired link" });
    });
  });
});

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { findUnsupported, type LambdaRoute, LocalEngine, substitute, taskTargets } from "../../local/engine.js";

type AslValidator = (
  definition: object,
  options?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)("asl-validator") as AslValidator;

const ASL = readFileSync(new URL("../../statemachines/agent.asl.json", import.meta.url), "utf8");
/** The substitutions the CDK stack passes to `DefinitionBody.fromFile`. */
const PLACEHOLDERS = [
  "IngestFunctionArn",
  "OrchestrateFunctionArn",
  "ExtractFunctionArn",
  "ValidateFunctionArn",
  "TransformFunctionArn",
  "SaveFunctionArn",
  "RequestApprovalFunctionArn",
  "ApprovalTimeoutFunctionArn",
  "FinalizeFunctionArn",
  "RecordFailureFunctionArn",
  "McpToolFunctionArn",
];
/** Node timers overflow just above 24.8 days; 24 days leaves a margin. */
const MAX_TASK_TIMEOUT_SECONDS = 2_073_600;

const arnFor = (placeholder: string): string =>
  `arn:aws:lambda:us-east-1:123456789012:function:PoAgent-acme-${placeholder.replace("FunctionArn", "")}`;
const SUBSTITUTED = substitute(ASL, Object.fromEntries(PLACEHOLDERS.map((p) => [p, arnFor(p)])));

function taskStates(definition: unknown): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const walk = (machine: unknown): void => {
    const states = (machine as { States?: Record<string, Record<string, unknown>> }).States ?? {};
    for (const state of Object.values(states)) {
      if (state.Type === "Task") found.push(state);
      if (state.ItemProcessor) walk(state.ItemProcessor);
      if (Array.isArray(state.Branches)) state.Branches.forEach(walk);
    }
  };
  walk(definition);
  return found;
}

/** A one-Task machine with `extra` merged into the Task, for the unsupported-feature checks. */
function fixture(extra: Record<string, unknown>, root: Record<string, unknown> = {}): object {
  return {
    StartAt: "Work",
    ...root,
    States: {
      Work: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: arnFor("IngestFunctionArn"), Payload: {} },
        TimeoutSeconds: 60,
        End: true,
        ...extra,
      },
    },
  };
}

describe("statemachines/agent.asl.json", () => {
  it("is valid ASL once the placeholders are substituted", () => {
    // Prepare: the validator itself must catch a broken transition.
    const broken = JSON.parse(SUBSTITUTED);
    broken.States.Route.Default = "NoSuchState";

    // Act
    const result = aslValidator(JSON.parse(SUBSTITUTED), { checkArn: true, checkPaths: true });
    const brokenResult = aslValidator(broken, { checkArn: true, checkPaths: true });

    // Assess
    expect({ isValid: result.isValid, errors: result.errorsText("\n") }).toEqual({ isValid: true, errors: "" });
    expect(brokenResult.isValid).toBe(false);
  });

  it("uses nothing the local engine would ignore", () => {
    expect(findUnsupported(JSON.parse(ASL))).toEqual([]);
  });

  it("gives every Task an explicit timeout under 24 days (or a path the approval clock fills)", () => {
    // Prepare
    const tasks = taskStates(JSON.parse(ASL));

    // Assess: a path is only allowed where the approval clock (capped in the config schema) sets it.
    expect(tasks.length).toBeGreaterThanOrEqual(PLACEHOLDERS.length);
    for (const task of tasks) {
      if (task.TimeoutSecondsPath !== undefined) {
        expect(task.TimeoutSecondsPath).toBe("$.Payload.waitSeconds");
        expect(task.TimeoutSeconds).toBeUndefined();
        continue;
      }
      expect(task.TimeoutSeconds).toEqual(expect.any(Number));
      expect(task.TimeoutSeconds as number).toBeLessThan(MAX_TASK_TIMEOUT_SECONDS);
    }
  });

  it("targets only the Lambda placeholders the CDK substitutes", () => {
    // Act
    const targets = taskTargets(JSON.parse(ASL));

    // Assess
    const used = new Set<string>();
    for (const target of targets) {
      expect(target.resource).toMatch(/^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$/);
      const placeholder = /^\$\{(\w+)\}$/.exec(target.functionName ?? "")?.[1];
      expect(PLACEHOLDERS, target.statePath).toContain(placeholder);
      used.add(placeholder ?? "");
    }
    expect([...used].sort()).toEqual([...PLACEHOLDERS].sort());
    expect(targets.map((t) => t.statePath)).toContain("RunTools/SaveTool");
  });
});

describe("substitute", () => {
  it("names every placeholder left unresolved", () => {
    expect(() => substitute(ASL, { IngestFunctionArn: arnFor("IngestFunctionArn") })).toThrow(
      /\$\{OrchestrateFunctionArn\}.*\$\{RecordFailureFunctionArn\}/,
    );
  });
});

describe("findUnsupported", () => {
  it.each([
    ["QueryLanguage JSONata", fixture({}, { QueryLanguage: "JSONata" }), /\(root\): QueryLanguage JSONata/],
    ["Arguments", fixture({ Arguments: { FunctionName: "x" } }), /Work: JSONata Arguments/],
    ["a {% %} expression", fixture({ Parameters: { FunctionName: "{% $arn %}" } }), /Work: JSONata expression/],
    ["Assign", fixture({ Assign: { total: 1 } }), /Work: Assign/],
    ["ItemReader", fixture({ ItemReader: { Resource: "arn:aws:states:::s3:getObject" } }), /Work: ItemReader/],
    ["ResultWriter", fixture({ ResultWriter: { Resource: "arn:aws:states:::s3:putObject" } }), /Work: ResultWriter/],
    ["HeartbeatSeconds", fixture({ HeartbeatSeconds: 30 }), /Work: HeartbeatSeconds/],
    ["a timeout past Node's timer range", fixture({ TimeoutSeconds: 2_592_000 }), /Work: TimeoutSeconds 2592000/],
  ])("reports %s with the state's path", (_label, definition, expected) => {
    // Act
    const findings = findUnsupported(definition);

    // Assess
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatch(expected);
  });

  it("finds unsupported fields inside Map item processors", () => {
    // Prepare
    const definition = JSON.parse(ASL);
    definition.States.RunTools.ItemProcessor.States.ExtractTool.HeartbeatSeconds = 60;

    // Act + Assess
    expect(findUnsupported(definition)).toEqual(["RunTools/ExtractTool: HeartbeatSeconds"]);
  });
});

describe("LocalEngine construction", () => {
  const route: LambdaRoute = async () => ({});

  it("accepts the definition when every Task has a route", () => {
    // Prepare
    const routes = Object.fromEntries(PLACEHOLDERS.map((p) => [arnFor(p), route]));

    // Act + Assess
    expect(() => new LocalEngine({ definition: SUBSTITUTED, routes })).not.toThrow();
  });

  it("refuses to build when a Task has no local route, naming the state", () => {
    // Prepare
    const routes = Object.fromEntries(
      PLACEHOLDERS.filter((p) => p !== "SaveFunctionArn").map((p) => [arnFor(p), route]),
    );

    // Act + Assess
    expect(() => new LocalEngine({ definition: SUBSTITUTED, routes })).toThrow(
      /RunTools\/SaveTool: no local route for arn:aws:lambda:us-east-1:123456789012:function:PoAgent-acme-Save/,
    );
  });

  it("refuses to build when the definition uses a feature the engine ignores", () => {
    // Prepare
    const definition = JSON.parse(SUBSTITUTED);
    definition.States.Orchestrate.Assign = { turn: 1 };
    const routes = Object.fromEntries(PLACEHOLDERS.map((p) => [arnFor(p), route]));

    // Act + Assess
    expect(() => new LocalEngine({ definition: JSON.stringify(definition), routes })).toThrow(/Orchestrate: Assign/);
  });
});

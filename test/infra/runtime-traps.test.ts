import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeAll, describe, expect, it } from "vitest";
import { storedKeyOf } from "../../lambdas/shared/aws/documents.js";
import { DEFAULTS } from "../../lambdas/shared/constants.js";
import {
  AnthropicModelClient,
  DEFAULT_SDK_TIMEOUT_MS,
  ModelTransientError,
} from "../../lambdas/shared/model/anthropic.js";
import { type SynthesizedStack, synthPoAgentStack } from "./helpers.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface TaskState {
  Type: string;
  Parameters?: { FunctionName?: string };
  TimeoutSeconds?: number;
  ItemProcessor?: { States: Record<string, TaskState> };
}

let s: SynthesizedStack;
let resources: Record<string, { Type: string; Properties: Record<string, Json> }>;
beforeAll(() => {
  s = synthPoAgentStack("acme");
  resources = s.template.toJSON().Resources;
});

describe("timeouts nest: the model SDK < the Lambda < the state", () => {
  it("every Task state times out after the Lambda it invokes, so Lambda reports a slow call first", () => {
    const sm = Object.values(resources).find((r) => r.Type === "AWS::StepFunctions::StateMachine");
    const subs = sm?.Properties.DefinitionSubstitutions as Record<string, { "Fn::GetAtt": [string, string] }>;
    // Inlined from the ASL file with the ARNs as DefinitionSubstitutions: the definition is a plain string.
    const definition = JSON.parse(String(sm?.Properties.DefinitionString)) as { States: Record<string, TaskState> };
    const checked: string[] = [];
    const visit = (states: Record<string, TaskState>) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.ItemProcessor) visit(state.ItemProcessor.States);
        const placeholder = /^\$\{(\w+)\}$/.exec(state.Parameters?.FunctionName ?? "")?.[1];
        if (!placeholder || state.TimeoutSeconds === undefined) continue;
        const fnId = subs[placeholder]?.["Fn::GetAtt"][0] ?? "";
        const lambdaTimeout = Number(resources[fnId]?.Properties.Timeout);
        expect(
          state.TimeoutSeconds,
          `${name}: state ${state.TimeoutSeconds} s vs Lambda ${lambdaTimeout} s`,
        ).toBeGreaterThan(lambdaTimeout);
        checked.push(name);
      }
    };
    visit(definition.States);
    expect(checked).toEqual(expect.arrayContaining(["Orchestrate", "McpTool", "ExtractTool", "Ingest"]));
  });

  it("a whole model turn (every attempt timing out, every wait at its cap) ends before Orchestrate's Lambda timeout", () => {
    const orchestrate = resources[s.logicalId(s.stack.agentFunctions.orchestrate)];
    const { maxAttempts, maxRetryAfterMs } = DEFAULTS.modelRetry;
    const worstTurnMs = maxAttempts * DEFAULT_SDK_TIMEOUT_MS + (maxAttempts - 1) * maxRetryAfterMs;
    expect(worstTurnMs).toBeLessThan(Number(orchestrate?.Properties.Timeout) * 1000);
    expect(DEFAULT_SDK_TIMEOUT_MS).toBeLessThan(600_000); // the SDK's own default
  });

  it("the model client gives up a hung request after its timeout, as a retryable error", async () => {
    const hung: typeof fetch = (_url, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
    // One attempt (the SDK's own retries wait 0.5-8 s between attempts, which only made this slow under load):
    // the request is aborted at its 200 ms timeout, far inside the bound, and reported as retryable.
    const client = new AnthropicModelClient({ apiKey: "k", fetch: hung, timeoutMs: 200, maxRetries: 0 });
    const started = Date.now();
    const call = client.create({ model: "m", system: "s", rules: "", tools: [], messages: [], maxTokens: 10 });
    await expect(call).rejects.toBeInstanceOf(ModelTransientError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("per-stack runtime settings", () => {
  it("logs the state machine under /aws/vendedlogs/states/ (no account-wide resource policy entry per stack)", () => {
    s.template.hasResourceProperties("AWS::Logs::LogGroup", {
      LogGroupName: { "Fn::Join": ["", ["/aws/vendedlogs/states/", { Ref: "AWS::StackName" }, "-agent"]] },
    });
  });

  it("runs Orchestrate, which mostly waits on the model, at 512 MB", () => {
    expect(resources[s.logicalId(s.stack.agentFunctions.orchestrate)]?.Properties.MemorySize).toBe(512);
  });

  it("gives the intake rule's state machine target a dead-letter queue and retries", () => {
    const queueArn = { "Fn::GetAtt": [s.logicalId(s.stack.intake.deadLetterQueue), "Arn"] };
    const rule = Object.values(resources).find((r) => r.Type === "AWS::Events::Rule" && r.Properties.EventPattern);
    expect(rule?.Properties.Targets).toEqual([
      expect.objectContaining({
        DeadLetterConfig: { Arn: queueArn },
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
      }),
    ]);
  });
});

describe("S3 keys from events, URL-encoded or not", () => {
  const s3 = mockClient(S3Client);
  const client = new S3Client({ region: "us-east-1" });
  const stored = (keys: string[]) => {
    s3.reset();
    s3.on(HeadObjectCommand).callsFake((input: { Key: string }) => {
      if (keys.includes(input.Key)) return {};
      throw Object.assign(new Error("not found"), { name: "NotFound", $metadata: { httpStatusCode: 404 } });
    });
  };

  it("uses the decoded key when only that object exists (spaces as +, non-ASCII as %XX)", async () => {
    stored(["incoming/Bestellung Müller.json"]);
    expect(await storedKeyOf(client, "b", "incoming/Bestellung+M%C3%BCller.json", "v1")).toBe(
      "incoming/Bestellung Müller.json",
    );
  });

  it("keeps the key as given when that object exists (a literal + or %)", async () => {
    stored(["incoming/a+b%20c.json", "incoming/a b c.json"]);
    expect(await storedKeyOf(client, "b", "incoming/a+b%20c.json")).toBe("incoming/a+b%20c.json");
  });

  it("asks nothing for a plain key, and passes a raw non-ASCII key through", async () => {
    stored([]);
    expect(await storedKeyOf(client, "b", "incoming/po-1.json")).toBe("incoming/po-1.json");
    expect(await storedKeyOf(client, "b", "incoming/Müller 1.json")).toBe("incoming/Müller 1.json");
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });
});

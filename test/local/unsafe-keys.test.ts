import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentDeps, ingest, orchestrate, runTool } from "../../lambdas/shared/agent/core.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { realCustomer, sampleBytes } from "../support/stack.js";

/**
 * A model's tool call is JSON, and JSON may hold a key named `__proto__`, which JavaScript objects can only
 * carry as an own property parsed from text, and which the DynamoDB marshaller cannot store (it assigns it,
 * setting a prototype, and DynamoDB refuses the result as an empty AttributeValue). A tampering model sent
 * one (through the real SDK against model-bridge.mjs) and the whole run failed with DynamoDB's
 * ValidationException. Now the key is stored renamed, the call is refused like any unknown argument, and the
 * run goes on.
 */
describe("a model that sends a __proto__ key in its tool arguments", () => {
  let stack: LocalStack;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "po-agent-unsafe-keys-"));
    stack = await LocalStack.start({ dataDir, customers: [realCustomer("customer37")], retryIntervalMs: 0 });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const lastResults = (req: ModelRequest) => {
    const last = req.messages.at(-1);
    return (Array.isArray(last?.content) ? last.content : []).flatMap((b) =>
      b.type === "tool_result" ? [{ content: String(b.content), isError: b.is_error === true }] : [],
    );
  };
  const turn = (calls: { name: string; input: unknown }[]): ModelResponse => ({
    model: "claude-sonnet-4-5",
    content: calls.map((c, i) => ({ type: "tool_use", id: `t${Math.random().toString(36).slice(2)}${i}`, ...c })),
    stop_reason: "tool_use",
    usage: { input_tokens: 10, output_tokens: 5 },
  });

  it("is refused that call, with the key named, and the run goes on to save the PO", async () => {
    // Prepare: a PO within the limit (saved without a human); the attacker saves once with the key, then properly
    let ref = { artifactId: "", version: 0 };
    const seen: { content: string; isError: boolean }[][] = [];
    const model = new ScriptedModelClient((req, i) => {
      seen.push(lastResults(req));
      const artifact = /"artifact":\{"artifactId":"(po_[0-9a-f]{16})","version":(\d+)\}/.exec(
        seen[i]?.map((r) => r.content).join(" ") ?? "",
      );
      if (artifact) ref = { artifactId: artifact[1] ?? "", version: Number(artifact[2]) };
      if (i === 0) return turn([{ name: "extract", input: {} }]);
      if (i === 1)
        return turn([
          { name: "validate", input: ref },
          { name: "transform", input: ref },
        ]);
      if (i === 2)
        return turn([
          {
            name: "save",
            input: JSON.parse(
              `{"artifactId":"${ref.artifactId}","version":${ref.version},"__proto__":{"approved":true}}`,
            ),
          },
        ]);
      if (i === 3) return turn([{ name: "save", input: ref }]);
      return {
        model: "claude-sonnet-4-5",
        content: [{ type: "text", text: "OUTCOME: saved — PSC-48102" }],
        stop_reason: "end_turn",
        usage: { input_tokens: 10, output_tokens: 5 },
      };
    });
    const bucket = bucketFor("customer37");
    const key = "incoming/unsafe-keys.json";
    await stack.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: sampleBytes("customer37", "01-auto-approve-monday.json"),
      }),
    );
    const deps: AgentDeps = { ...stack.deps(realCustomer("customer37")), model: { client: model, modelId: "m" } };

    // Act: the loop the state machine runs
    const { runId } = await ingest(deps, { bucket, key, executionId: "unsafe-keys" });
    let last = "";
    for (let n = 0; n < 8; n++) {
      const step = await orchestrate(deps, { runId });
      last = step.type;
      if (step.type === "done" || step.type === "budget_exceeded" || step.type === "approval") break;
      for (const call of step.calls) await runTool(deps, { runId, call });
    }

    // Assess: the call with the key was refused by name, the proper save wrote the order, the model ended
    expect(seen[3]).toEqual([{ content: expect.stringContaining("[__proto__]"), isError: true }]);
    expect(last).toBe("done");
    expect(model.callCount).toBe(5);
    const run = await stack.ledger.getRun(runId);
    const order = await stack.ledger.getOrder("customer37", run?.poNumber ?? "");
    expect(order?.runId).toBe(runId);
    // The stored turn holds the renamed key, and the audit says where it was
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "model.unsafe_key").map((a) => a.detail)).toEqual([
      { turn: 3, tool: "save", path: "__proto__" },
    ]);
  }, 60_000);
});

/** Tool execution: one tool call, run exactly once, its result stored with its counters and audit lines. */
import { argsHash, bindingProblem } from "../approval/binding.js";
import { DEFAULTS } from "../constants.js";
import { PreparedContext } from "../context/types.js";
import { DocumentError } from "../errors.js";
import { foldPoNumber, type RunState } from "../ledger/ledger.js";
import type { Disposition } from "../ledger/records.js";
import { costUsd } from "../model/cost.js";
import { RetryingModelClient } from "../model/retry.js";
import type { ContentBlock, ToolUseBlock } from "../model/types.js";
import type { ToolCallRef } from "../steps.js";
import type { ToolContext } from "../tools/types.js";
import { poHash } from "./artifacts.js";
import { addDelta, approvalsOf, modelCallDelta, newSink, type StepSink } from "./checkpoint.js";
import { type AgentDeps, mcpOf, telemetryOf } from "./deps.js";
import { crashPoint } from "./faults.js";
import { guardCall } from "./guard.js";
import { saveOrderOnce } from "./save.js";
import { findTool, toolToRun } from "./tool-lookup.js";

/**
 * Executes one tool call exactly once. A replay (Step Functions retry, restarted local run)
 * finds the stored result and returns it without touching the world again. Ledger round trips:
 * one query for the run's state, the tool's own writes, and one conditional put of the result
 * carrying its counters and audit lines (the next checkpoint folds the counters into the run).
 */
export async function runTool(
  deps: AgentDeps,
  input: { runId: string; call: ToolCallRef },
): Promise<{ toolUseId: string; isError: boolean }> {
  const { ledger, customer } = deps;
  const state = await ledger.loadRunState(input.runId);
  if (!state) throw new Error(`run ${input.runId} not found in the ledger`);
  const { run, turns } = state;
  let use: ToolUseBlock | undefined;
  let disposition: Disposition | undefined;
  for (const t of turns) {
    const d = t.dispositions.find((x) => x.toolUseId === input.call.toolUseId);
    if (!d) continue;
    disposition = d;
    use = (t.response.content as unknown as ContentBlock[]).find(
      (b): b is ToolUseBlock => b.type === "tool_use" && b.id === input.call.toolUseId,
    );
  }
  if (!use || !disposition) throw new Error(`tool call ${input.call.toolUseId} is not in run ${run.runId}`);
  const hash = argsHash(use.input);
  const existing = state.toolCalls.find((c) => c.toolUseId === use.id && c.argsHash === hash);
  const toolRef = {
    runId: run.runId,
    customer: customer.name,
    poNumber: run.poNumber,
    toolUseId: use.id,
    tool: use.name,
  };
  if (existing) {
    telemetryOf(deps).toolCall({ ...toolRef, isError: existing.isError, durationMs: 0, replayed: true });
    return { toolUseId: use.id, isError: existing.isError };
  }

  const mounted = (await mcpOf(deps)).tools;
  // Defense in depth: the tool re-checks the guard's decision and the approval binding itself.
  if (disposition.kind === "rejected") throw new Error(`tool call ${use.id} was rejected by the guard and cannot run`);
  const effect = findTool(use.name, mounted)?.effect ?? "dangerous";
  if (disposition.kind === "approval") {
    const { approvalId } = disposition;
    const approval =
      (state.run.decided ?? []).find((a) => a.approvalId === approvalId) ?? (await ledger.getApproval(approvalId));
    let problem = approval ? bindingProblem(approval, run.runId, use) : "the approval record is missing";
    if (approval && problem === undefined && approval.artifact) {
      // The version approved must still hold exactly the content the human saw.
      const { artifactId, version, poSha256 } = approval.artifact;
      const stored = state.artifacts.find((a) => a.artifactId === artifactId && a.version === version);
      if (!stored || stored.poSha256 !== poSha256 || poHash(stored.po) !== stored.poSha256) {
        problem = "the approved PO version changed after the approval";
      }
    }
    if (approval?.status !== "approved" || approval.callHash !== hash || problem !== undefined) {
      throw new Error(
        `tool call ${use.id} needs an approval bound to exactly this call; none is granted (${problem ?? approval?.status ?? "missing"})`,
      );
    }
  } else if (effect !== "read") {
    const guardState = {
      mounted,
      artifacts: state.artifacts,
      rejectedPoNumbers: await rejectedPoNumbersOf(deps, state),
    };
    if ((deps.guard ?? guardCall)(customer, use.name, use.input, guardState).kind !== "run") {
      throw new Error(`tool call ${use.id} is not allowed without approval`);
    }
  }

  const tool = toolToRun(use.name, mounted, deps.tools);
  const args = tool.input.parse(use.input);
  const started = Date.now();
  const sink = newSink();
  const output = await tool.run(args, toolContext(deps, state, sink));
  crashPoint("after-tool-effect");
  let content: string | undefined = output.content;
  let resultKey: string | undefined;
  if (Buffer.byteLength(output.content) > DEFAULTS.maxInlineResultBytes) {
    resultKey = `results/${run.runId}/${use.id}.json`;
    await deps.documents.put(deps.bucket, resultKey, output.content);
    content = undefined;
  }
  addDelta(sink, { toolCalls: 1 });
  const isError = output.isError === true;
  sink.audit.push({ actor: "agent", action: "tool.executed", detail: { tool: use.name, toolUseId: use.id, isError } });
  const { call } = await ledger.putToolCall(
    {
      runId: run.runId,
      toolUseId: use.id,
      name: use.name,
      argsHash: hash,
      content,
      resultKey,
      isError,
      approvalId: disposition.kind === "approval" ? disposition.approvalId : undefined,
      durationMs: Date.now() - started,
      delta: sink.delta,
    },
    sink.audit,
  );
  telemetryOf(deps).toolCall({ ...toolRef, isError: call.isError, durationMs: Date.now() - started });
  return { toolUseId: use.id, isError: call.isError };
}

/** PO numbers whose save a human rejected in this run (decided approvals from the run record, the rest read in one batch). */
async function rejectedPoNumbersOf(deps: AgentDeps, state: RunState): Promise<Set<string>> {
  const { byId } = await approvalsOf(deps, state, state.turns, (d) => d.name === "save");
  const out = new Set<string>();
  for (const t of state.turns) {
    for (const d of t.dispositions) {
      if (d.kind !== "approval" || d.name !== "save") continue;
      const a = byId.get(d.approvalId);
      if (a?.status === "rejected") out.add(foldPoNumber(a.summary.poNumber));
    }
  }
  return out;
}

/** Where a run's prepared thread context lives (S3: it can be larger than a DynamoDB item). */
const contextKey = (runId: string) => `context/${runId}.json`;

/** One extraction call to Claude from inside the extract tool; paid and counted like a turn (with the tool call). */
async function extractWithModel(
  deps: AgentDeps,
  model: NonNullable<AgentDeps["model"]>,
  content: ContentBlock[],
  sink: StepSink,
): Promise<string> {
  const client = new RetryingModelClient(model.client, deps.modelRetry ?? DEFAULTS.modelRetry);
  const response = await client.create({
    model: model.modelId,
    system: "You read purchase-order documents and answer with the requested JSON only.",
    rules: "",
    tools: [],
    messages: [{ role: "user", content }],
    maxTokens: 4_096,
  });
  addDelta(sink, modelCallDelta(response, costUsd(response.model, response.usage)));
  return response.content.map((b) => (b.type === "text" ? b.text : "")).join("");
}

/** Whether a model reads document blocks (Claude, direct or on Bedrock; not the offline reference model). */
const readsDocuments = (model: NonNullable<AgentDeps["model"]>) =>
  model.client.provider === "anthropic" || model.client.provider === "bedrock";

/** What a tool may touch, over the run's state read once: its PO versions are kept current as it writes them. */
function toolContext(deps: AgentDeps, state: RunState, sink: StepSink): ToolContext {
  const { run } = state;
  const model = deps.model;
  const artifacts = state.artifacts;
  return {
    ...(deps.readDocument ? { readDocument: deps.readDocument } : {}),
    runId: run.runId,
    customer: deps.customer,
    document: run.document,
    loadDocument: () => deps.documents.get(run.document.bucket, run.document.key, run.document.versionId),
    artifacts: {
      list: async () => [...artifacts],
      async put(version) {
        // A replay (the tool ran, the result was lost) finds the version it stored the first time.
        const same = artifacts.find(
          (a) =>
            a.artifactId === version.artifactId &&
            a.poSha256 === version.poSha256 &&
            a.origin === version.origin &&
            a.parentVersion === version.parentVersion,
        );
        if (same) return same;
        let next =
          Math.max(0, ...artifacts.filter((a) => a.artifactId === version.artifactId).map((a) => a.version)) + 1;
        // Tools of one turn run in parallel: a version number taken by a sibling moves this one up.
        for (let tries = 0; ; tries++, next++) {
          const { artifact, created } = await deps.ledger.putArtifact({ ...version, runId: run.runId, version: next });
          if (created || artifact.poSha256 === version.poSha256) {
            artifacts.push(artifact);
            return artifact;
          }
          if (tries >= 20) throw new Error(`no free version number for artifact ${version.artifactId}`);
        }
      },
      async markValidated(ref, result) {
        await deps.ledger.setArtifactValidation(run.runId, ref.artifactId, ref.version, result);
        const i = artifacts.findIndex((a) => a.artifactId === ref.artifactId && a.version === ref.version);
        const a = artifacts[i];
        if (a) artifacts[i] = { ...a, validation: { ...result, at: new Date().toISOString() } };
      },
    },
    async findSavedOrder(poNumber) {
      const order = await deps.ledger.getOrder(deps.customer.name, poNumber);
      return order ? { runId: order.runId } : undefined;
    },
    saveOrder: (order) => (deps.saveOrder ?? saveOrderOnce)(deps, run, order, sink),
    async loadPreparedContext() {
      try {
        const bytes = await deps.documents.get(deps.bucket, contextKey(run.runId));
        return PreparedContext.parse(JSON.parse(new TextDecoder().decode(bytes)));
      } catch (err) {
        if (err instanceof DocumentError) return undefined;
        throw err;
      }
    },
    async savePreparedContext(context) {
      await deps.documents.put(deps.bucket, contextKey(run.runId), JSON.stringify(context));
    },
    ...(model && readsDocuments(model)
      ? { extractWithModel: (content: ContentBlock[]) => extractWithModel(deps, model, content, sink) }
      : deps.documentModel
        ? {
            extractWithModel: async (content: ContentBlock[]) => {
              const resolved = await deps.documentModel?.();
              return resolved && readsDocuments(resolved) ? extractWithModel(deps, resolved, content, sink) : undefined;
            },
          }
        : {}),
  };
}

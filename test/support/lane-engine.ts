/**
 * The real state machine (statemachines/agent.asl.json) on the local engine, with each Lambda Task
 * routed to the code its AWS handler runs: Orchestrate and Finalize from the agent core, and each
 * lane's Lambda as `lambdas/<lane handler>/handler.ts` builds it — the lane's input check
 * (`laneCallInput`) in front of `runTool` with only that lane's tools. Used to prove that a call
 * reaches its lane's code through PickTool, whatever its name.
 */
import { readFileSync } from "node:fs";
import { z } from "zod/v3";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { finalize, recordFailure } from "../../lambdas/shared/agent/finalize.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import {
  type BuiltInLane,
  LANES,
  type LaneEntry,
  type LaneId,
  ROLES,
  type RoleId,
} from "../../lambdas/shared/catalogue.js";
import { Step, ToolCallRef } from "../../lambdas/shared/steps.js";
import { laneCallInput } from "../../lambdas/shared/tools/lane.js";
import type { Tool } from "../../lambdas/shared/tools/types.js";
import { type LambdaRoute, LocalEngine, substitute } from "../../local/engine.js";

const ASL = readFileSync(new URL("../../statemachines/agent.asl.json", import.meta.url), "utf8");

const arnOf = (placeholder: string) => `arn:aws:lambda:us-east-1:000000000000:function:PoAgent-lanes-${placeholder}`;

export interface LaneEngineRun {
  result: { status: string; output?: unknown; error?: string };
  /** Each Lambda's payloads, by role. */
  calls: Partial<Record<RoleId, unknown[]>>;
}

/**
 * Runs one execution of the real definition for `runId` (Ingest answers `resume`: the run exists).
 * `laneTools` is what each lane's Lambda bundles (its module's tool list).
 */
export async function runOnEngine(
  deps: AgentDeps,
  runId: string,
  laneTools: Partial<Record<BuiltInLane, readonly Tool[]>>,
): Promise<LaneEngineRun> {
  const calls: Partial<Record<RoleId, unknown[]>> = {};
  const byRole: Partial<Record<RoleId, LambdaRoute>> = {
    Ingest: async () => ({ runId, status: "resume" }),
    Orchestrate: async (p) => orchestrate(deps, z.object({ runId: z.string() }).parse(p)),
    Finalize: async (p) => finalize(deps, z.object({ runId: z.string(), step: Step }).parse(p)),
    RecordFailure: async (p) => recordFailure(deps, { state: (p as { state?: unknown }).state }),
    McpTool: async (p) => runTool(deps, z.object({ runId: z.string(), call: ToolCallRef }).parse(p)),
  };
  for (const [lane, entry] of Object.entries(LANES) as [LaneId, LaneEntry][]) {
    if (lane === "mcp" || !entry.role) continue;
    const tools = laneTools[lane];
    if (!tools) continue;
    const input = laneCallInput(lane);
    byRole[entry.role] = async (p) => runTool({ ...deps, tools }, input.parse(p));
  }
  const routes: Record<string, LambdaRoute> = {};
  const substitutions: Record<string, string> = {};
  for (const [role, entry] of Object.entries(ROLES) as [RoleId, { placeholder?: string }][]) {
    if (!entry.placeholder) continue;
    substitutions[entry.placeholder] = arnOf(entry.placeholder);
    routes[arnOf(entry.placeholder)] = async (payload) => {
      calls[role] = [...(calls[role] ?? []), payload];
      const route = byRole[role];
      if (!route) throw new Error(`${role} is not expected in this run`);
      return route(payload);
    };
  }
  const engine = new LocalEngine({ definition: substitute(ASL, substitutions), routes, retryIntervalOverrides: 0 });
  try {
    const input = { detail: { bucket: { name: deps.bucket }, object: { key: "k", "version-id": "v" } } };
    const result = await engine.startExecution({ name: `lanes-${runId.slice(-12)}`, input }).result;
    return { result, calls };
  } finally {
    engine.abortAll();
  }
}

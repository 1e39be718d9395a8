/**
 * Run by test/infra/catalogue.test.ts inside a copy of the repository to which it added one built-in
 * tool (`<name>` in lane `<lane>`: one file `tools/<lane>/<name>.ts`, one line in tools/builtins.ts),
 * with `tsx`. Prints one JSON line: what the catalogue, the model's tool list, the guard, the lane's
 * Lambda input check, a run through the real state machine on the local engine, and the esbuild
 * bundles of the lane's Lambda and of the orchestrator make of the new tool.
 *
 * Usage: tsx test/support/add-tool-probe.ts <name> <lane> <run marker> <spec marker>
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import {
  type BuiltInLane,
  bucketAccessOfLane,
  LANES,
  type LaneEntry,
  type LaneId,
  laneOfTool,
  ROLES,
  TOOLS,
  toolsOfLane,
} from "../../lambdas/shared/catalogue.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelResponse } from "../../lambdas/shared/model/types.js";
import { CHECK_TOOLS } from "../../lambdas/shared/tools/check.js";
import { DOCUMENT_TOOLS } from "../../lambdas/shared/tools/document.js";
import { laneCallInput } from "../../lambdas/shared/tools/lane.js";
import { toolSpecs } from "../../lambdas/shared/tools/registry.js";
import { SAVE_TOOLS } from "../../lambdas/shared/tools/save.js";
import { VERSION_TOOLS } from "../../lambdas/shared/tools/version.js";
import { bundleHandler, type HandlerName } from "../../lib/po-agent-function.js";
import { memoryS3 } from "../unit/memory-s3.js";
import { runOnEngine } from "./lane-engine.js";

const [name = "", laneArg = "", runMarker = "", specMarker = ""] = process.argv.slice(2);
const lane = laneArg as BuiltInLane;
const customer = loadCustomerFile("customers/acme.yaml");
const BUCKET = "acme-intake";

const reply = (content: ModelResponse["content"]): ModelResponse => ({
  model: "scripted",
  content,
  stop_reason: content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn",
  usage: { input_tokens: 0, output_tokens: 0 },
});

/** The reference of the stored PO version, from extract's result in the request the model got. */
function refFrom(request: { messages: { content: unknown }[] }): { artifactId: string; version: number } {
  for (const m of [...request.messages].reverse()) {
    for (const b of Array.isArray(m.content) ? (m.content as { type: string; content?: unknown }[]) : []) {
      if (b.type === "tool_result" && typeof b.content === "string" && b.content.includes('"artifact"')) {
        return (JSON.parse(b.content) as { artifact: { artifactId: string; version: number } }).artifact;
      }
    }
  }
  throw new Error("no extract result in the conversation");
}

const model = new ScriptedModelClient((request, i) => {
  if (i === 0) return reply([{ type: "tool_use", id: "toolu_extract", name: "extract", input: {} }]);
  if (i === 1) return reply([{ type: "tool_use", id: "toolu_new", name, input: refFrom(request) }]);
  return reply([{ type: "text", text: "OUTCOME: rejected — only probing the new tool" }]);
});

const s3 = memoryS3();
const key = "incoming/01-packaging-saved.json";
s3.objects.set(`${BUCKET}/${key}`, readFileSync("samples/acme/01-packaging-saved.json"));
const ledger = new MemoryLedger();
const deps: AgentDeps = {
  ledger,
  documents: new DocumentStore(s3.client),
  customer,
  bucket: BUCKET,
  model: { client: model, modelId: "scripted" },
};
const { runId } = await ingest(deps, { bucket: BUCKET, key, executionId: "probe-1" });
const { result, calls } = await runOnEngine(deps, runId, {
  document: DOCUMENT_TOOLS,
  check: CHECK_TOOLS,
  version: VERSION_TOOLS,
  save: SAVE_TOOLS,
});
const stored = (await ledger.getToolCalls(runId)).find((c) => c.name === name);

/**
 * Every file of a handler's bundle as synthesis leaves it: the stack's own bundler (code splitting,
 * chunks nothing reachable names deleted, lazy dependencies shipped only where named).
 */
async function bundle(handler: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "po-agent-probe-"));
  try {
    bundleHandler(handler as HandlerName, "{}", dir);
    return readdirSync(dir)
      .filter((f) => f.endsWith(".mjs"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const lanes = Object.entries(LANES) as [LaneId, LaneEntry][];
const handlerOf = (l: LaneId) => {
  const role = lanes.find(([id]) => id === l)?.[1].role;
  if (!role) throw new Error(`lane ${l} has no Lambda`);
  return ROLES[role].handler;
};
const laneBundle = await bundle(handlerOf(lane));
const orchestrateBundle = await bundle("orchestrate");
const others = await Promise.all(
  lanes
    .filter(([l, entry]) => l !== lane && l !== "mcp" && entry.role)
    .map(async ([l]) => [l, await bundle(handlerOf(l))] as const),
);

const entry = (TOOLS as Record<string, { lane?: string; effect?: string }>)[name];
console.log(
  JSON.stringify({
    catalogue: { lane: entry?.lane, effect: entry?.effect, laneOfTool: laneOfTool(name), inLane: toolsOfLane(lane) },
    access: bucketAccessOfLane(lane),
    shownToModel: toolSpecs().find((t) => t.name === name)?.input_schema ?? null,
    // What the orchestrator's guard decided for the model's call of the new tool.
    guard: (await ledger.getTurns(runId)).flatMap((t) => t.dispositions).find((d) => d.toolUseId === "toolu_new")?.kind,
    laneInput: laneCallInput(lane).safeParse({ runId: "r", call: { toolUseId: "t", name, lane } }).success,
    engine: {
      status: result.status,
      calls: Object.fromEntries(
        Object.entries(calls).map(([r, ps]) => [
          r,
          (ps as { call?: { name: string; lane?: string } }[]).map((p) => p.call),
        ]),
      ),
    },
    stored: stored ? { content: stored.content, isError: stored.isError } : null,
    bundles: {
      laneHasRun: laneBundle.includes(runMarker),
      orchestrateHasRun: orchestrateBundle.includes(runMarker),
      orchestrateHasSpec: orchestrateBundle.includes(specMarker),
      otherLanesWithRun: others.filter(([, text]) => text.includes(runMarker)).map(([l]) => l),
    },
  }),
);

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { withLane } from "../../lambdas/shared/agent/tool-lookup.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import {
  BUILT_IN_TOOL_NAMES,
  bucketAccessOfLane,
  HANDLER_OF_ROLE,
  LANES,
  type LaneEntry,
  type LaneId,
  laneOfTool,
  MOUNTED_TOOL_SEPARATOR,
  ROLE_OF_PLACEHOLDER,
  ROLES,
  type RoleId,
  TOOLS,
  toolsOfLane,
} from "../../lambdas/shared/catalogue.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { type LedgerDump, MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { NAMESPACE_SEPARATOR } from "../../lambdas/shared/mcp/client.js";
import { BUILT_IN_TOOL_NAMES as MCP_RESERVED } from "../../lambdas/shared/mcp/config.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { CHECK_TOOLS } from "../../lambdas/shared/tools/check.js";
import { DOCUMENT_TOOLS } from "../../lambdas/shared/tools/document.js";
import { laneCallInput } from "../../lambdas/shared/tools/lane.js";
import { SPECS } from "../../lambdas/shared/tools/registry.js";
import { SAVE_TOOLS } from "../../lambdas/shared/tools/save.js";
import type { Tool } from "../../lambdas/shared/tools/types.js";
import { VERSION_TOOLS } from "../../lambdas/shared/tools/version.js";
import { AGENT_DEFINITION_FILE, placeholderFunctions } from "../../lib/agent-state-machine.js";
import { functionsByRole } from "../../lib/po-agent-function.js";
import { runOnEngine } from "../support/lane-engine.js";
import { memoryS3 } from "../unit/memory-s3.js";
import { synthPoAgentStack } from "./helpers.js";

interface State {
  Type: string;
  Default?: string;
  Parameters?: { FunctionName?: string };
  Choices?: { Variable?: string; StringEquals?: string; StringMatches?: string; Not?: unknown; Next: string }[];
  States?: Record<string, State>;
  Iterator?: { States: Record<string, State> };
  ItemProcessor?: { States: Record<string, State> };
}

/** Every state of the definition, nested ones (Map, Parallel) included. */
function allStates(states: Record<string, State>): Record<string, State> {
  const out: Record<string, State> = {};
  for (const [name, state] of Object.entries(states)) {
    out[name] = state;
    const inner = state.ItemProcessor?.States ?? state.Iterator?.States ?? state.States;
    if (inner) Object.assign(out, allStates(inner));
  }
  return out;
}

const definition = JSON.parse(readFileSync(AGENT_DEFINITION_FILE, "utf8")) as { States: Record<string, State> };
const states = allStates(definition.States);
const toolLanes = (Object.entries(LANES) as [LaneId, LaneEntry][]).filter(([, l]) => l.role !== undefined);

describe("the catalogue and the state machine", () => {
  const pick = states.PickTool;
  const laneChoices = (pick?.Choices ?? []).filter((c) => c.Variable === "$.call.lane" && c.StringEquals);
  /** Where PickTool sends a call, evaluated as the engine would on the Choice's rules. */
  const routeOf = (call: { lane?: string }): string =>
    call.lane === undefined
      ? "(no lane)"
      : (laneChoices.find((c) => c.StringEquals === call.lane)?.Next ?? pick?.Default ?? "");

  it("routes by lane, one Choice per lane that runs code, to the Task state the catalogue names", () => {
    expect(pick?.Type).toBe("Choice");
    expect(Object.fromEntries(laneChoices.map((c) => [c.StringEquals, c.Next]))).toEqual(
      Object.fromEntries(toolLanes.map(([lane, entry]) => [lane, entry.state])),
    );
    // The first rule sends a call without a lane to the visible failure, before any lane comparison.
    expect(pick?.Choices?.[0]).toEqual({ Not: { Variable: "$.call.lane", IsPresent: true }, Next: "UnroutedTool" });
    expect(pick?.Choices).toHaveLength(laneChoices.length + 1);
    expect(pick?.Default).toBe("UnroutedTool");
    expect(states.UnroutedTool?.Type).toBe("Fail");
  });

  it("sends every catalogue tool, and a mounted <server>.<tool>, through PickTool to its lane's Task state", () => {
    const mounted = ["erp.lookup_vendor", "crm.find_account"];
    for (const name of [...BUILT_IN_TOOL_NAMES, ...mounted]) {
      const lane = laneOfTool(name);
      const expected = lane ? ((LANES[lane] as LaneEntry).state ?? "UnroutedTool") : "UnroutedTool";
      expect(routeOf(withLane({ toolUseId: "t", name })), name).toBe(expected);
    }
    // escalate_to_human never runs as a tool (its lane has no Lambda); a name nothing runs has no lane.
    expect(routeOf(withLane({ toolUseId: "t", name: "escalate_to_human" }))).toBe("UnroutedTool");
    expect(withLane({ toolUseId: "t", name: "rm_rf" })).toEqual({ toolUseId: "t", name: "rm_rf" });
    expect(MOUNTED_TOOL_SEPARATOR).toBe(NAMESPACE_SEPARATOR);
  });

  it("names no tool anywhere in the definition: nothing reads $.call.name and no built-in name is a Choice value", () => {
    const text = readFileSync(AGENT_DEFINITION_FILE, "utf8");
    expect(text).not.toContain("$.call.name");
    const values = Object.values(states).flatMap((st) =>
      (st.Choices ?? []).flatMap((c) => [c.StringEquals, c.StringMatches].filter((v) => v !== undefined)),
    );
    for (const name of BUILT_IN_TOOL_NAMES.filter((n) => n !== "save")) expect(values, name).not.toContain(name);
    // `save` is both a tool and a lane: it may appear only as the lane of PickTool.
    expect(values.filter((v) => v === "save")).toEqual(["save"]);
    expect(laneChoices.find((c) => c.StringEquals === "save")?.Next).toBe(LANES.save.state);
  });

  it("has RunTools reached only from the orchestrator's step, so every call it routes was just given its lane", () => {
    // The Map's items are the step Orchestrate returned; Route is its only way in, Orchestrate Route's only way in.
    const into = (target: string) =>
      Object.entries(definition.States)
        .filter(([, st]) => {
          const s = st as State & { Next?: string; Default?: string; Catch?: { Next: string }[] };
          return [
            s.Next,
            s.Default,
            ...(s.Choices ?? []).map((c) => c.Next),
            ...(s.Catch ?? []).map((c) => c.Next),
          ].includes(target);
        })
        .map(([name]) => name);
    expect(into("RunTools")).toEqual(["Route"]);
    expect(into("Route")).toEqual(["Orchestrate"]);
    expect((definition.States.RunTools as State & { ItemsPath?: string }).ItemsPath).toBe("$.next.step.calls");
  });

  it("has each lane's Task state invoke the function of the lane's role", () => {
    for (const [lane, entry] of toolLanes) {
      const role = entry.role as RoleId;
      const placeholder = (ROLES[role] as { placeholder?: string }).placeholder;
      expect(states[entry.state ?? ""]?.Parameters?.FunctionName, lane).toBe(`\${${placeholder}}`);
    }
  });

  it("names every placeholder of the definition as a role, and every role's placeholder is used", () => {
    const used = new Set(
      [...readFileSync(AGENT_DEFINITION_FILE, "utf8").matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]),
    );
    expect(used).toEqual(new Set(Object.keys(ROLE_OF_PLACEHOLDER)));
  });

  it("fails synth on a placeholder no role has, and on a role left without a function", () => {
    const fake = {} as never;
    expect(() => placeholderFunctions(`{"a":"\${NoSuchFunctionArn}"}`, {})).toThrow(/NoSuchFunctionArn/);
    const all = Object.fromEntries(Object.keys(ROLES).map((r) => [r, fake]));
    const text = readFileSync(AGENT_DEFINITION_FILE, "utf8");
    expect(Object.keys(placeholderFunctions(text, all)).sort()).toEqual(Object.keys(ROLE_OF_PLACEHOLDER).sort());
    const { Save: _save, ...withoutSave } = all;
    expect(() => placeholderFunctions(text, withoutSave)).toThrow(/role Save/);
  });
});

describe("the catalogue and the code", () => {
  const lanes: Record<string, readonly Tool[]> = {
    document: DOCUMENT_TOOLS,
    check: CHECK_TOOLS,
    version: VERSION_TOOLS,
    save: SAVE_TOOLS,
  };

  it("gives each lane's module exactly the lane's tools, each with the registry's spec", () => {
    for (const [lane, tools] of Object.entries(lanes)) {
      expect(
        tools.map((t) => t.name),
        lane,
      ).toEqual(toolsOfLane(lane as "document"));
      for (const tool of tools) {
        const spec = SPECS[tool.name as keyof typeof SPECS];
        expect(tool.input, tool.name).toBe(spec.input);
        expect([tool.description, tool.effect], tool.name).toEqual([spec.description, spec.effect]);
      }
    }
    // Every lane that runs code has its module here; escalate_to_human alone has none.
    expect(Object.keys(lanes).sort()).toEqual(
      toolLanes
        .map(([l]) => l)
        .filter((l) => l !== "mcp")
        .sort(),
    );
    expect(ALL_TOOLS.map((t) => t.name).sort()).toEqual(
      BUILT_IN_TOOL_NAMES.filter((n) => TOOLS[n].lane !== "approval").sort(),
    );
    expect(Object.keys(SPECS).sort()).toEqual([...BUILT_IN_TOOL_NAMES].sort());
  });

  it("lets each tool Lambda accept exactly its lane's tools (the Extract Lambda refused read_document)", () => {
    const call = (name: string, lane?: string) => ({ runId: "r", call: { toolUseId: "toolu_1", name, lane } });
    for (const [lane] of toolLanes.filter(([l]) => l !== "mcp")) {
      const input = laneCallInput(lane as "document");
      for (const name of BUILT_IN_TOOL_NAMES) {
        const own = TOOLS[name].lane === lane;
        // With the lane the orchestrator writes, and without (a call from an execution on the definition before lanes).
        expect(input.safeParse(call(name, laneOfTool(name))).success, `${lane} accepts ${name}`).toBe(own);
        expect(input.safeParse(call(name)).success, `${lane} accepts ${name} without a lane`).toBe(own);
        // A call that names another lane is refused even for the lane's own tool.
        expect(input.safeParse(call(name, "mcp")).success, `${lane} accepts ${name} on lane mcp`).toBe(false);
      }
    }
  });

  it("reserves every built-in tool name from MCP server names", () => {
    expect([...MCP_RESERVED].sort()).toEqual([...BUILT_IN_TOOL_NAMES].sort());
  });

  it("derives each lane's bucket access from what its tools declare", () => {
    expect(bucketAccessOfLane("document")).toEqual({ read: ["incoming", "context"], write: ["results", "context"] });
    expect(bucketAccessOfLane("save")).toEqual({ read: [], write: ["results", "processed"] });
    expect(bucketAccessOfLane("check")).toEqual({ read: [], write: ["results"] });
    expect(bucketAccessOfLane("mcp")).toEqual({ read: [], write: ["results"] });
  });

  it("is what the stack builds: one function per role, in the role's handler folder", () => {
    const { stack } = synthPoAgentStack("acme");
    const byRole = functionsByRole(stack);
    expect(Object.keys(byRole).sort()).toEqual(Object.keys(ROLES).sort());
    for (const [role, fn] of Object.entries(byRole)) {
      expect(fn.node.id).toBe(role);
      expect(fn.handlerName).toBe(HANDLER_OF_ROLE[role]);
    }
  });
});

describe("lanes on the local engine, through the real definition", () => {
  const laneTools = { document: DOCUMENT_TOOLS, check: CHECK_TOOLS, version: VERSION_TOOLS, save: SAVE_TOOLS };

  it("resumes a run parked on an approval by an older build: the resumed step carries lanes and the save reaches the Save Lambda", async () => {
    // Prepare: acme 03 parked on the approval of its save, every record as an older build stored it
    // (no lane anywhere: lanes are never stored, the orchestrator writes them on each step).
    const dump = JSON.parse(
      readFileSync(new URL("../fixtures/ledger/v1/parked-on-approval.json", import.meta.url), "utf8"),
    ) as LedgerDump & { document: { key: string; sample: string } };
    const ledger = new MemoryLedger();
    ledger.seed(dump);
    const s3 = memoryS3();
    s3.objects.set(`acme-intake/${dump.document.key}`, readFileSync(dump.document.sample));
    const deps: AgentDeps = {
      ledger,
      documents: new DocumentStore(s3.client),
      customer: loadCustomerFile("customers/acme.yaml"),
      bucket: "acme-intake",
      model: { client: new ReferenceModelClient(), modelId: "reference" },
    };
    const runId = String(dump.runs?.[0]?.runId);
    const approvalId = String(dump.runs?.[0]?.pendingApprovalId);
    expect(JSON.stringify(dump)).not.toContain('"lane"');
    expect(await ledger.decideApproval(approvalId, "approved", "priya.raman@acme-mfg.example", "ok")).toBe(true);
    await ledger.updateRun(runId, { status: "running" }, { onlyIfStatusIn: ["awaiting_approval"] });

    // Act
    const { result, calls } = await runOnEngine(deps, runId, laneTools);

    // Assess: saved through the lane route, one order written; every call each lane's Lambda got was its own.
    expect(result.status).toBe("SUCCEEDED");
    expect(result.output).toMatchObject({ result: { outcome: "saved" } });
    expect(s3.puts.filter((p) => p.includes("/processed/"))).toHaveLength(1);
    const saves = (calls.Save ?? []) as { call: { name: string; lane?: string; approvalId?: string } }[];
    expect(saves.map((p) => p.call)).toEqual([expect.objectContaining({ name: "save", lane: "save", approvalId })]);
    for (const [lane, entry] of toolLanes) {
      for (const p of (calls[entry.role as RoleId] ?? []) as { call: { name: string; lane?: string } }[]) {
        expect([p.call.name, p.call.lane], lane).toEqual([p.call.name, lane]);
        expect(laneOfTool(p.call.name), p.call.name).toBe(lane);
      }
    }
  });
});

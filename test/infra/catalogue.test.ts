import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  BUILT_IN_TOOL_NAMES,
  bucketAccessOfLane,
  HANDLER_OF_ROLE,
  LANES,
  type LaneEntry,
  type LaneId,
  ROLE_OF_PLACEHOLDER,
  ROLES,
  type RoleId,
  TOOLS,
  toolsOfLane,
} from "../../lambdas/shared/catalogue.js";
import { BUILT_IN_TOOL_NAMES as MCP_RESERVED } from "../../lambdas/shared/mcp/config.js";
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
import { synthPoAgentStack } from "./helpers.js";

interface State {
  Type: string;
  Parameters?: { FunctionName?: string };
  Choices?: { Variable: string; StringEquals?: string; StringMatches?: string; Next: string }[];
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
  it("routes every built-in tool to the Task state of its lane, mounted <server>.<tool> names to McpTool", () => {
    const pick = Object.values(states).find((s) => s.Type === "Choice" && s.Choices?.[0]?.Variable === "$.call.name");
    if (!pick?.Choices) throw new Error("no Choice on $.call.name in the definition");
    const routed = Object.fromEntries(pick.Choices.filter((c) => c.StringEquals).map((c) => [c.StringEquals, c.Next]));
    const expected = Object.fromEntries(
      BUILT_IN_TOOL_NAMES.flatMap((name) => {
        const lane = LANES[TOOLS[name].lane] as LaneEntry;
        return lane.state ? [[name, lane.state]] : [];
      }),
    );
    expect(routed).toEqual(expected);
    expect(pick.Choices.filter((c) => c.StringMatches).map((c) => [c.StringMatches, c.Next])).toEqual([
      ["*.*", LANES.mcp.state],
    ]);
    // escalate_to_human never runs as a tool: it is no route.
    expect(routed.escalate_to_human).toBeUndefined();
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
    const call = (name: string) => ({ runId: "r", call: { toolUseId: "toolu_1", name } });
    for (const [lane] of toolLanes.filter(([l]) => l !== "mcp")) {
      const input = laneCallInput(lane as "document");
      for (const name of BUILT_IN_TOOL_NAMES) {
        expect(input.safeParse(call(name)).success, `${lane} accepts ${name}`).toBe(TOOLS[name].lane === lane);
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

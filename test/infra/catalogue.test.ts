import { execFile } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { withLane } from "../../lambdas/shared/agent/tool-lookup.js";
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
  type ToolName,
  toolsOfLane,
} from "../../lambdas/shared/catalogue.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { NAMESPACE_SEPARATOR } from "../../lambdas/shared/mcp/client.js";
import { BUILT_IN_TOOL_NAMES as MCP_RESERVED } from "../../lambdas/shared/mcp/config.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { CHECK_TOOLS } from "../../lambdas/shared/tools/check.js";
import { DOCUMENT_TOOLS } from "../../lambdas/shared/tools/document.js";
import { laneCallInput, laneTools } from "../../lambdas/shared/tools/lane.js";
import { SPECS } from "../../lambdas/shared/tools/registry.js";
import { SAVE_TOOLS } from "../../lambdas/shared/tools/save.js";
import type { Tool, ToolContext } from "../../lambdas/shared/tools/types.js";
import { VERSION_TOOLS } from "../../lambdas/shared/tools/version.js";
import { AGENT_DEFINITION_FILE, placeholderFunctions } from "../../lib/agent-state-machine.js";
import { functionsByRole } from "../../lib/po-agent-function.js";
import { invokeLambda, type LambdaHost } from "../../local/lambdas.js";
import { runOnEngine } from "../support/lane-engine.js";
import { fixtureWorld, loadLedgerFixture } from "../support/ledger-fixture.js";
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

  it("has the local runtime's lane functions refuse another lane's tool before running anything, as in AWS", async () => {
    // A host that fails the test if it is touched: the refusal comes from the input check alone.
    const host = new Proxy({} as LambdaHost, {
      get: (_t, key) => {
        throw new Error(`host.${String(key)} touched`);
      },
    });
    const call = (name: string) => ({ runId: "r", call: { toolUseId: "t", name, lane: laneOfTool(name) } });
    await expect(invokeLambda(host, "ValidateFunctionArn", call("extract"))).rejects.toThrow(/name|lane/);
    await expect(invokeLambda(host, "SaveFunctionArn", call("amend"))).rejects.toThrow(/name|lane/);
    // Its own tool passes the check and reaches the host (here: the touched-host error).
    await expect(invokeLambda(host, "ValidateFunctionArn", call("validate"))).rejects.toThrow(/host\.\w+ touched/);
  });

  it("refuses to run a tool whose file does not export its spec and run, naming the file", async () => {
    const ctx = {} as ToolContext;
    const [noRun] = laneTools("check", async () => ({ spec: { name: "validate" } }));
    const [wrongSpec] = laneTools("check", async () => ({
      spec: { name: "save" },
      run: async () => ({ content: "" }),
    }));
    const [right] = laneTools("check", async () => ({
      spec: { name: "validate" },
      run: async () => ({ content: "ran" }),
    }));
    await expect(noRun?.run({}, ctx)).rejects.toThrow(
      "tools/check/validate.ts must export the spec of validate and its run",
    );
    await expect(wrongSpec?.run({}, ctx)).rejects.toThrow("tools/check/validate.ts");
    await expect(right?.run({}, ctx)).resolves.toEqual({ content: "ran" });
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
    const dump = loadLedgerFixture("v1/parked-on-approval.json");
    const { ledger, s3, deps } = fixtureWorld(dump, loadCustomerFile("customers/acme.yaml"));
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

describe("one file and one registry line per tool", () => {
  const TOOLS_DIR = "lambdas/shared/tools";
  const registryLines = readFileSync(`${TOOLS_DIR}/builtins.ts`, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("export"));

  it("lists each tool once, by the file of its lane, and each lane folder holds exactly its tools' files", async () => {
    const parsed = registryLines.map((l) => /^export \{ spec as (\w+) \} from "\.\/(\w+)\/(\w+)\.js";$/.exec(l));
    expect(
      parsed.every((m) => m !== null),
      registryLines.join("\n"),
    ).toBe(true);
    const entries = parsed.map((m) => ({ key: m?.[1] ?? "", folder: m?.[2] ?? "", file: m?.[3] ?? "" }));
    expect(entries.map((e) => e.key).sort()).toEqual([...BUILT_IN_TOOL_NAMES].sort());
    for (const { key, folder, file } of entries) {
      expect([file, folder], key).toEqual([key, TOOLS[key as ToolName].lane]);
      const mod = (await import(pathToFileURL(`${TOOLS_DIR}/${folder}/${file}.ts`).href)) as {
        spec: { name: string };
        run?: unknown;
      };
      expect(mod.spec.name, key).toBe(key);
      // No import(): with code splitting esbuild emits its chunk in every bundle that reads the specs.
      expect(readFileSync(`${TOOLS_DIR}/${folder}/${file}.ts`, "utf8"), key).not.toMatch(/\bimport\(/);
      // escalate_to_human alone has no code: its lane has no Lambda.
      expect(typeof mod.run, key).toBe(TOOLS[key as ToolName].lane === "approval" ? "undefined" : "function");
    }
    // A lane's Lambda bundles every file of its folder: a file no registry line names would ship unused.
    for (const lane of Object.keys(LANES).filter((l) => l !== "mcp")) {
      const files = readdirSync(`${TOOLS_DIR}/${lane}`).map((f) => f.replace(/\.ts$/, ""));
      expect(files.sort(), lane).toEqual(toolsOfLane(lane as "document").sort());
    }
  });

  it("keeps every spec light: bundling the catalogue (all specs) pulls in no tool implementation", async () => {
    // Act: what the orchestrator (and every reader of the catalogue) gets of the tool files.
    const out = await build({
      entryPoints: ["lambdas/shared/catalogue.ts"],
      bundle: true,
      platform: "node",
      format: "esm",
      minify: true,
      write: false,
      outfile: "/tmp/catalogue-probe.mjs",
      metafile: true,
      logLevel: "silent",
    });

    // Assess: the modules that contribute code, against the ones a spec may use (tools/define.ts).
    const inputs = Object.entries(Object.values(out.metafile.outputs)[0]?.inputs ?? {})
      .filter(([, v]) => v.bytesInOutput > 0)
      .map(([f]) => f.replace(/^.*node_modules\/(zod)\/.*$/, "$1"));
    const allowed = [
      /^zod$/,
      /^lambdas\/shared\/(catalogue|constants|errors|cost-estimate)\.ts$/,
      /^lambdas\/shared\/(po\/model|ledger\/records)\.ts$/,
      /^lambdas\/shared\/tools\/(builtins|define|schemas)\.ts$/,
      /^lambdas\/shared\/tools\/(document|check|version|save|approval)\/\w+\.ts$/,
    ];
    expect(inputs.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    expect(inputs).toContain("lambdas/shared/tools/document/extract.ts");
    // And no run's body came along (strings only a run holds).
    const code = out.outputFiles[0]?.text ?? "";
    for (const marker of [
      "has not passed validate without errors",
      "cannot read the document",
      "model draft from raw text",
    ])
      expect(code.includes(marker), marker).toBe(false);
    expect(code).toContain("Write a validated version");
  });

  it("adds a tool to a lane in a copy of the code with one new file and one registry line: shown, guarded, routed, run, bundled", async () => {
    // Prepare: a copy of the code the tool touches, node_modules linked; the new tool counts a version's lines.
    const root = mkdtempSync(join(tmpdir(), "po-agent-add-tool-"));
    try {
      for (const dir of ["lambdas", "lib", "local", "statemachines", "customers", "test/support"])
        cpSync(dir, join(root, dir), { recursive: true });
      for (const file of [
        "package.json",
        "tsconfig.json",
        "test/unit/memory-s3.ts",
        "samples/acme/01-packaging-saved.json",
      ])
        cpSync(file, join(root, file));
      symlinkSync(join(process.cwd(), "node_modules"), join(root, "node_modules"));
      const RUN_MARKER = "counted-by-the-new-tool";
      const SPEC_MARKER = "Count the lines of a version";
      const before = await probeCatalogue(root);
      writeFileSync(
        join(root, TOOLS_DIR, "check/count_lines.ts"),
        [
          'import { type RunOf, toolSpec } from "../define.js";',
          'import type * as Lib from "../lib/check.js";',
          'import { RefInput } from "../schemas.js";',
          "",
          "export const spec = toolSpec({",
          '  name: "count_lines",',
          '  lane: "check",',
          '  effect: "read",',
          `  description: "${SPEC_MARKER} (a tool added by the catalogue test).",`,
          "  input: RefInput,",
          "});",
          "",
          "export const run: RunOf<typeof spec, typeof Lib> = async (ref, ctx, lib) => {",
          "  const { json, versionOf } = lib;",
          "  const got = await versionOf(ctx, ref);",
          '  if ("error" in got) return got.error;',
          `  return json({ ...ref, by: "${RUN_MARKER}", lines: got.po.lines.length });`,
          "};",
          "",
        ].join("\n"),
      );
      appendFileSync(
        join(root, TOOLS_DIR, "builtins.ts"),
        'export { spec as count_lines } from "./check/count_lines.js";\n',
      );

      // Act
      const after = await probeCatalogue(root);
      const probe = JSON.parse(
        await run(root, "npx", [
          "tsx",
          "test/support/add-tool-probe.ts",
          "count_lines",
          "check",
          RUN_MARKER,
          SPEC_MARKER,
        ]),
      );
      // The copy typechecks as it is (the tool's input type comes from its schema, nothing hand-kept).
      writeFileSync(
        join(root, "tsconfig.lambdas.json"),
        JSON.stringify({ extends: "./tsconfig.json", include: ["lambdas/**/*.ts"] }),
      );
      await run(root, "npx", ["tsc", "-p", "tsconfig.lambdas.json"]);

      // Assess: nothing knew the tool before the line; after it, every part of the system does.
      expect(before).toMatchObject({ known: false, checkLane: ["validate"] });
      expect(after).toMatchObject({ known: true, checkLane: ["count_lines", "validate"] });
      expect(probe.catalogue).toEqual({
        lane: "check",
        effect: "read",
        laneOfTool: "check",
        inLane: ["count_lines", "validate"],
      });
      expect(probe.access).toEqual({ read: [], write: ["results"] });
      expect(probe.shownToModel).toMatchObject({ required: ["artifactId", "version"], additionalProperties: false });
      expect(probe.guard).toBe("run");
      expect(probe.laneInput).toBe(true);
      // Routed through the unchanged ASL to the Validate Lambda's code, which ran it once.
      expect(probe.engine.status).toBe("SUCCEEDED");
      expect(probe.engine.calls.Validate).toEqual([{ toolUseId: "toolu_new", name: "count_lines", lane: "check" }]);
      expect(probe.stored.isError).toBe(false);
      expect(JSON.parse(probe.stored.content)).toMatchObject({ by: RUN_MARKER, lines: 3 });
      // Bundled in its lane's Lambda only; the orchestrator got its spec and not its code.
      expect(probe.bundles).toEqual({
        laneHasRun: true,
        orchestrateHasRun: false,
        orchestrateHasSpec: true,
        otherLanesWithRun: [],
      });
      expect(readFileSync(join(root, "statemachines/agent.asl.json"), "utf8")).toBe(
        readFileSync(AGENT_DEFINITION_FILE, "utf8"),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 300_000);
});

/** Runs a command in `cwd`; its stdout, or an error with its stderr. */
async function run(cwd: string, cmd: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Whether the copy's catalogue knows `count_lines`, and the check lane's tools. */
async function probeCatalogue(root: string): Promise<{ known: boolean; checkLane: string[] }> {
  const script =
    'import { TOOLS, toolsOfLane } from "./lambdas/shared/catalogue.ts"; console.log(JSON.stringify({ known: "count_lines" in TOOLS, checkLane: toolsOfLane("check") }));';
  return JSON.parse(await run(root, "npx", ["tsx", "--eval", script]));
}

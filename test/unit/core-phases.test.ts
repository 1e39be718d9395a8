import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** The agent core split by phase: a handler's bundle holds the phase it runs, and tools are looked up in one place. */
const LAMBDAS = "lambdas";
const AGENT = "lambdas/shared/agent";
const importsOf = (file: string): string[] =>
  [...readFileSync(file, "utf8").matchAll(/^(?:import|export)[^;]*?from "([^"]+)";/gms)].map((m) => m[1] ?? "");

describe("agent core phases", () => {
  const handlers = readdirSync(LAMBDAS)
    .filter((d) => d !== "shared")
    .map((d) => join(LAMBDAS, d, "handler.ts"));

  it.each(handlers)("%s imports phase modules, never the core barrel", (file) => {
    const agent = importsOf(file).filter((i) => i.includes("/agent/"));
    expect(agent.filter((i) => i.endsWith("/agent/core.js"))).toEqual([]);
  });

  it("no phase module imports the barrel, and only tool-lookup.ts imports the tool registry", () => {
    const policy = readdirSync("lambdas/shared/policy").filter((f) =>
      importsOf(join("lambdas/shared/policy", f)).some((i) => i.endsWith("tools/registry.js")),
    );
    expect(policy).toEqual([]);
    const files = readdirSync(AGENT).filter((f) => f.endsWith(".ts") && f !== "core.ts");
    const barrel = files.filter((f) => importsOf(join(AGENT, f)).includes("./core.js"));
    const registry = files.filter((f) => importsOf(join(AGENT, f)).some((i) => i.endsWith("tools/registry.js")));
    expect(barrel).toEqual([]);
    expect(registry).toEqual(["tool-lookup.ts"]);
  });

  it("a tool Lambda's phase does not reach the turn loop (model call, prompt, compaction)", () => {
    // Follows tool-run.ts's relative imports inside agent/ transitively.
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const i of importsOf(join(AGENT, f))) if (i.startsWith("./")) visit(i.slice(2).replace(/\.js$/, ".ts"));
    };
    visit("tool-run.ts");
    expect(seen.has("save.ts")).toBe(true);
    expect([...seen].filter((f) => ["turn.ts", "model-call.ts", "prompt.ts", "core.ts"].includes(f))).toEqual([]);
  });
});

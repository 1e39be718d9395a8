import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_DIR } from "../support/stack.js";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sources(path);
    return /\.(ts|mjs)$/.test(e.name) ? [path] : [];
  });
}

describe("runtime code carries no test machinery", () => {
  it("nothing under local/, lambdas/, lib/ or bin/ imports from test/ (faults and the PRNG are test support)", () => {
    // Prepare
    const files = ["local", "lambdas", "lib", "bin"].flatMap((d) => sources(join(REPO_DIR, d)));
    // Act
    const offenders = files.filter((f) =>
      /from\s+["'][./]*\/test\/|import\(["'][./]*\/test\//.test(readFileSync(f, "utf8")),
    );
    // Assess
    expect(files.length).toBeGreaterThan(50);
    expect(offenders.map((f) => relative(REPO_DIR, f))).toEqual([]);
    expect(files.map((f) => relative(REPO_DIR, f))).not.toContain("local/faults.ts");
  });
});

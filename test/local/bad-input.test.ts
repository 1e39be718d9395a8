import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { main } from "../../local/cli.js";
import { LocalStack } from "../../local/stack.js";
import { CUSTOMERS_DIR, SAMPLES_DIR, tempDir } from "../support/stack.js";

/**
 * Bad input under the user's control (flags, config, files under .po-agent/): one line naming the
 * problem and what to do, exit 1, no stack trace, nothing deleted.
 */
const dirs: string[] = [];
function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}
beforeAll(() => {
  vi.stubEnv("ANTHROPIC_API_KEY", "");
});
afterAll(() => {
  vi.unstubAllEnvs();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

function expectOneLine(r: { code: number; err: string[] }, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.err).toHaveLength(1);
  expect(r.err[0]).toMatch(pattern);
  expect(r.err[0]).not.toMatch(/\n\s+at |Database is closed/);
}

/** Every file under `dir` with its SHA-256 (to prove nothing was changed or deleted). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

/** A data dir holding one saved run, closed cleanly. */
async function dataDirWithOneRun(prefix: string): Promise<{ dataDir: string; runId: string }> {
  const dataDir = scratch(prefix);
  const stack = await LocalStack.start({ dataDir, customers: loadCustomers(CUSTOMERS_DIR) });
  const runId = await stack.submit(
    "acme",
    "01.json",
    readFileSync(join(SAMPLES_DIR, "acme", "01-packaging-saved.json")),
  );
  await stack.waitSettled(runId);
  await stack.close();
  return { dataDir, runId };
}

describe("flags and config", () => {
  it("--data-dir pointing at a file", async () => {
    const file = join(scratch("flags"), "a-file");
    writeFileSync(file, "x");
    expectOneLine(await cli("runs", "--data-dir", file), /--data-dir .*a-file is a file, not a folder/);
  });

  it("--port abc", async () => {
    expectOneLine(
      await cli("start", "--once", "--port", "abc", "--data-dir", scratch("flags")),
      /--port needs a port number 0-65535, got "abc"/,
    );
  });

  it("a YAML alias bomb in a customer file", async () => {
    const customers = scratch("bomb");
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [prev, name] of ["ab", "bc", "cd", "de", "ef", "fg", "gh", "hi"].map((p) => [p[0], p[1]])) {
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    writeFileSync(join(customers, "bomb.yaml"), lines.join("\n"));
    expectOneLine(
      await cli("runs", "--customers", customers, "--data-dir", scratch("bomb-data")),
      /bomb\.yaml: cannot read the YAML: Excessive alias count/,
    );
  });

  it("a short signing key refuses to start instead of failing every waiting run", async () => {
    const dataDir = scratch("key");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "approval-signing.key"), "short\n");
    expectOneLine(
      await cli("runs", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir),
      /approval-signing\.key holds a 5-character key; approval links need at least 32/,
    );
    expect(readFileSync(join(dataDir, "approval-signing.key"), "utf8")).toBe("short\n");
  });
});

describe("corrupt files under the data dir", () => {
  it("flipped bytes in the ledger's log are named at start and nothing is changed", async () => {
    // Prepare
    const { dataDir } = await dataDirWithOneRun("flip");
    const dynamo = join(dataDir, "dynamodb");
    const log = readdirSync(dynamo).find((f) => f.endsWith(".log") && statSync(join(dynamo, f)).size > 1000);
    expect(log).toBeDefined();
    const path = join(dynamo, log ?? "");
    const bytes = readFileSync(path);
    for (let i = 0; i < 64; i++) {
      const at = Math.floor(bytes.length / 2) + i;
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    }
    writeFileSync(path, bytes);
    const before = snapshot(dataDir);
    // Act
    const r = await cli("runs", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir);
    // Assess
    expectOneLine(
      r,
      new RegExp(
        `${log?.replace(".", "\\.")} is corrupt \\(the record at byte \\d+ fails its checksum\\); nothing was changed`,
      ),
    );
    expect(snapshot(dataDir)).toEqual(before);
  });

  it("a ledger file cut short since the last clean stop is named", async () => {
    const { dataDir } = await dataDirWithOneRun("trunc");
    const dynamo = join(dataDir, "dynamodb");
    const biggest = readdirSync(dynamo)
      .filter((f) => /\.(log|ldb)$/.test(f))
      .sort((a, b) => statSync(join(dynamo, b)).size - statSync(join(dynamo, a)).size)[0];
    const path = join(dynamo, biggest ?? "");
    writeFileSync(path, readFileSync(path).subarray(0, Math.floor(statSync(path).size * 0.6)));
    const before = snapshot(dataDir);
    expectOneLine(
      await cli("runs", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir),
      /changed since the last clean stop \(\d+ bytes, was \d+\)/,
    );
    expect(snapshot(dataDir)).toEqual(before);
  });

  it("a truncated LevelDB CURRENT file (after a crash) is named, not a stack trace", async () => {
    const { dataDir } = await dataDirWithOneRun("current");
    const dynamo = join(dataDir, "dynamodb");
    // As after a crash: no clean-stop manifest to compare with.
    writeFileSync(join(dynamo, "integrity.json"), JSON.stringify({ state: "open", at: "then" }));
    writeFileSync(join(dynamo, "CURRENT"), "MANIFEST-00");
    expectOneLine(
      await cli("runs", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir),
      /ledger store .*dynamodb cannot be opened: Corruption: CURRENT file does not end with newline/,
    );
    expect(readFileSync(join(dynamo, "CURRENT"), "utf8")).toBe("MANIFEST-00");
  });

  it("garbage JSON in a trace gives one warning naming the file, and the file is kept", async () => {
    const { dataDir, runId } = await dataDirWithOneRun("trace");
    const trace = join(dataDir, "traces", `${runId}.jsonl`);
    const lines = readFileSync(trace, "utf8").split("\n");
    lines.splice(2, 0, "{not json");
    writeFileSync(trace, lines.join("\n"));
    const r = await cli("runs", "--json", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir);
    expect(r.code).toBe(0);
    expect(r.err).toEqual([expect.stringMatching(new RegExp(`${runId}\\.jsonl: line\\(s\\) 3 are not JSON`))]);
    expect(JSON.parse(r.out[0] ?? "[]")).toHaveLength(1);
    expect(readFileSync(trace, "utf8")).toContain("{not json");
  });
});

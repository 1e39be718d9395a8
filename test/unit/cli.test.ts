import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main, terminalSafe } from "../../local/cli.js";
import { CUSTOMERS_DIR, customersDirWith, SAMPLES_DIR, tempDir } from "../support/stack.js";

/** An io that records every line the CLI prints. */
function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

const dirs: string[] = [];
function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

beforeAll(() => {
  // Never reach a real model from a unit test: without a key the CLI runs the offline reference model.
  vi.stubEnv("ANTHROPIC_API_KEY", "");
});
afterAll(() => {
  vi.unstubAllEnvs();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A user mistake: exit 1, exactly one message on stderr, nothing on stdout, no stack trace. */
function expectUsageError(result: { code: number; out: string[]; err: string[] }, pattern: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.out).toEqual([]);
  expect(result.err).toHaveLength(1);
  expect(result.err[0]).toMatch(pattern);
  expect(result.err[0]).not.toMatch(/^\s+at /m);
}

async function cli(...argv: string[]) {
  const { io, out, err } = capture();
  const code = await main(argv, io);
  return { code, out, err };
}

describe("po-agent CLI: help and mistakes", () => {
  it("help prints the usage and exits 0", async () => {
    // Act
    const r = await cli("help");

    // Assess
    expect(r.code).toBe(0);
    expect(r.out.join("\n")).toContain("po-agent run <file> --customer <name>");
    expect(r.err).toEqual([]);
  });

  it("an unknown command exits 1 with a one-line message naming it", async () => {
    // Act
    const r = await cli("frobnicate");

    // Assess: a UsageError is "printed as one line" (local/cli.ts); the usage is one `help` away.
    expectUsageError(r, /^po-agent: unknown command "frobnicate"/);
    expect(r.err.join("\n").split("\n")).toHaveLength(1);
  });

  it("run without a file names what is missing", async () => {
    // Act
    const r = await cli("run", "--customer", "acme", "--data-dir", scratch("cli"));

    // Assess
    expectUsageError(r, /^po-agent: po-agent run needs a file/);
  });

  it("run without --customer names the option", async () => {
    // Act
    const r = await cli("run", join(SAMPLES_DIR, "acme", "01-packaging-saved.json"), "--data-dir", scratch("cli"));

    // Assess
    expectUsageError(r, /needs --customer <name>$/);
  });

  it("run with a missing file names the file", async () => {
    // Prepare
    const missing = join(scratch("cli"), "no-such-po.json");

    // Act
    const r = await cli("run", missing, "--customer", "acme", "--data-dir", scratch("cli"));

    // Assess
    expectUsageError(r, /^po-agent: file not found: .*no-such-po\.json$/);
  });

  it("run with an unknown customer names it and lists the known ones", async () => {
    // Act
    const r = await cli(
      "run",
      join(SAMPLES_DIR, "acme", "01-packaging-saved.json"),
      "--customer",
      "globex",
      "--customers",
      CUSTOMERS_DIR,
      "--data-dir",
      scratch("cli"),
    );

    // Assess
    expectUsageError(r, /^po-agent: unknown customer "globex"; known: acme, customer37$/);
  });

  it("an invalid customer config exits 1 naming the file and the field", async () => {
    // Prepare: a typo in Priya's email.
    const customers = customersDirWith({
      acme: (doc) => doc.setIn(["approvers", 0, "email"], "priya.raman-at-acme"),
    });
    dirs.push(customers);

    // Act
    const r = await cli(
      "run",
      join(SAMPLES_DIR, "acme", "01-packaging-saved.json"),
      "--customer",
      "acme",
      "--customers",
      customers,
      "--data-dir",
      scratch("cli"),
    );

    // Assess
    expectUsageError(
      r,
      /acme\.yaml:\d+:\d+: approvers\[0\]\.email: expected an email address, got "priya\.raman-at-acme"/,
    );
  });

  it("start --once with a missing samples folder says so", async () => {
    // Prepare
    const dataDir = scratch("cli");
    const missing = join(dataDir, "no-samples-here");

    // Act
    const r = await cli("start", "--once", "--samples", missing, "--customers", CUSTOMERS_DIR, "--data-dir", dataDir);

    // Assess
    expectUsageError(r, /^po-agent: samples folder not found: .*no-samples-here/);
    expect(existsSync(join(dataDir, "owner.json"))).toBe(false);
  });
});

describe("po-agent CLI: run and runs on the local stack", () => {
  const RUN_SUMMARY_FIELDS = [
    "runId",
    "customer",
    "document",
    "outcome",
    "reason",
    "modelCalls",
    "toolCalls",
    "inputTokens",
    "outputTokens",
    "costUsd",
    "tokensEstimated",
    "durationMs",
  ];

  it("run --json prints exactly one JSON line with the documented fields, and runs --json lists it", async () => {
    // Prepare
    const dataDir = scratch("cli-run");
    const file = join(SAMPLES_DIR, "acme", "01-packaging-saved.json");

    // Act
    const run = await cli(
      "run",
      file,
      "--customer",
      "acme",
      "--json",
      "--customers",
      CUSTOMERS_DIR,
      "--data-dir",
      dataDir,
    );
    const runs = await cli("runs", "--json", "--customers", CUSTOMERS_DIR, "--data-dir", dataDir);

    // Assess: the run
    expect(run.code).toBe(0);
    expect(run.out).toHaveLength(1);
    const summary = JSON.parse(run.out[0] ?? "") as Record<string, unknown>;
    expect(Object.keys(summary).sort()).toEqual([...RUN_SUMMARY_FIELDS].sort());
    expect(summary).toMatchObject({
      customer: "acme",
      document: "incoming/01-packaging-saved.json",
      outcome: "saved",
      reason: "PO ACM-PO-22817 saved.",
      costUsd: 0,
    });
    expect(summary.runId).toMatch(/^acme-[0-9a-f]{20}$/);
    // acme mounts the sample ERP: the offline model checks vendor and budget there before saving.
    expect(summary.modelCalls).toBe(5);
    expect(summary.toolCalls).toBe(6);
    expect(summary.inputTokens).toBeGreaterThan(0);
    // The offline model bills nothing: its token figures come from the tokenizer and say so.
    expect(summary.tokensEstimated).toBe(true);
    expect(typeof summary.durationMs).toBe("number");

    // Assess: the listing
    expect(runs.code).toBe(0);
    expect(runs.out).toHaveLength(1);
    const listed = JSON.parse(runs.out[0] ?? "") as Record<string, unknown>[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ runId: summary.runId, outcome: "saved", customer: "acme" });
  });
});

describe("po-agent CLI: exit codes", () => {
  it("run exits 3 when the run failed, still printing its summary", async () => {
    // Prepare: a truncated JSON document.
    const dataDir = scratch("cli-fail");
    const broken = join(dataDir, "broken.json");
    writeFileSync(broken, '{ "poNumber": "X-1", "orderDate": "2026-11-18", "lines": [');

    // Act
    const r = await cli(
      "run",
      broken,
      "--customer",
      "acme",
      "--json",
      "--customers",
      CUSTOMERS_DIR,
      "--data-dir",
      dataDir,
    );

    // Assess
    expect(r.code).toBe(3);
    expect(r.out).toHaveLength(1);
    expect(JSON.parse(r.out[0] ?? "")).toMatchObject({ outcome: "failed", document: "incoming/broken.json" });
  });
});

describe("po-agent CLI: what a document can put on the terminal", () => {
  it("escapes control and bidi-override characters from document text, keeps the rest", () => {
    // Act
    const shown = terminalSafe("PO ESC-\u001b[31mRED\u001b]0;pwned\u0007 ACM-PO-\u202e71822 Müller\tok");

    // Assess
    expect(shown).toBe("PO ESC-\\u001b[31mRED\\u001b]0;pwned\\u0007 ACM-PO-\\u202e71822 Müller\tok");
  });
});

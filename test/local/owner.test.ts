import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { KEY_HEADER } from "../../local/control.js";
import { DataDirBusyError, ownerFile } from "../../local/owner.js";
import { LocalStack } from "../../local/stack.js";
import { CUSTOMERS_DIR, REPO_DIR, SAMPLES_DIR, tempDir } from "../support/stack.js";

/** `po-agent <args>` as a separate process (the second process on a data dir). */
function po(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "local/main.ts", ...args], {
      cwd: REPO_DIR,
      env: { ...process.env, ANTHROPIC_API_KEY: "" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/** A raw request with any Host / Origin / content type (fetch cannot set Host). */
function raw(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? "GET",
        headers: opts.headers,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

describe("one data dir, one owner", () => {
  let dataDir: string;
  let stack: LocalStack;
  const customers = loadCustomers(CUSTOMERS_DIR);

  beforeAll(async () => {
    dataDir = tempDir("owner");
    stack = await LocalStack.start({ dataDir, customers, command: "start" });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("records the owner with its pid, URL and key in a file only this user can read", () => {
    const info = JSON.parse(readFileSync(ownerFile(dataDir), "utf8")) as Record<string, unknown>;
    expect(info).toMatchObject({ pid: process.pid, command: "start", httpUrl: stack.httpUrl, key: stack.controlKey });
    expect(statSync(ownerFile(dataDir)).mode & 0o077).toBe(0);
    // The whole data dir (ledger with task tokens, documents, traces) is this user's only.
    expect(statSync(dataDir).mode & 0o077).toBe(0);
  });

  it("refuses a second stack on the same data dir, naming the owner", async () => {
    await expect(LocalStack.start({ dataDir, customers })).rejects.toThrow(DataDirBusyError);
    await expect(LocalStack.start({ dataDir, customers })).rejects.toThrow(`(pid ${process.pid},`);
  });

  it("a second `po-agent mcp` exits with one line naming the owner's pid", async () => {
    const r = await po(["mcp", "--data-dir", dataDir, "--customers", CUSTOMERS_DIR]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^po-agent: .* is in use by po-agent start \\(pid ${process.pid}, `)),
    ]);
    expect(r.err).not.toMatch(/Database is closed|\n\s+at /);
  });

  it("`po-agent runs` and `run` talk to the owner through its key", async () => {
    // Act
    const runs = await po(["runs", "--json", "--data-dir", dataDir, "--customers", CUSTOMERS_DIR]);
    const sample = join(SAMPLES_DIR, "acme", "01-packaging-saved.json");
    const run = await po(["run", sample, "--customer", "acme", "--json", "--data-dir", dataDir]);
    // Assess: the run happened in the owner (this process), not in a second store.
    expect(runs.code, runs.err).toBe(0);
    expect(JSON.parse(runs.out)).toEqual([]);
    expect(run.code, run.err).toBe(0);
    const summary = JSON.parse(run.out) as { runId: string; outcome: string };
    expect(summary.outcome).toBe("saved");
    expect((await stack.ledger.getRun(summary.runId))?.status).toBe("saved");
  });

  it("the API refuses a foreign Host, a missing key, a foreign Origin and a text/plain body", async () => {
    // Prepare
    const before = (await stack.ledger.listRuns()).length;
    const port = new URL(stack.httpUrl).port;
    const body = JSON.stringify({ customer: "acme", fileName: "x.json", contentBase64: "eyJhIjoxfQ==" });
    const key = { [KEY_HEADER]: stack.controlKey };
    const submit = (headers: Record<string, string>) =>
      raw(`${stack.httpUrl}/api/submit`, { method: "POST", headers, body });
    // Act
    const foreignHost = await submit({ ...key, host: `evil.example:${port}`, "content-type": "application/json" });
    const noKey = await submit({ "content-type": "application/json" });
    const foreignOrigin = await submit({ ...key, origin: "http://evil.example", "content-type": "application/json" });
    const crossSite = await submit({ ...key, "sec-fetch-site": "cross-site", "content-type": "application/json" });
    const plain = await submit({ ...key, "content-type": "text/plain" });
    const badBase64 = await raw(`${stack.httpUrl}/api/submit`, {
      method: "POST",
      headers: { ...key, "content-type": "application/json" },
      body: JSON.stringify({ customer: "acme", fileName: "x.json", contentBase64: "not base64!!" }),
    });
    const nulName = await raw(`${stack.httpUrl}/api/submit`, {
      method: "POST",
      headers: { ...key, "content-type": "application/json" },
      body: JSON.stringify({ customer: "acme", fileName: "x\u0000y.json", contentBase64: "eyJhIjoxfQ==" }),
    });
    // The task API behind a signed link's path: that path needs no key, the task API does.
    const taskApiViaLink = await raw(`${stack.httpUrl}/approvals/x`, {
      method: "POST",
      headers: { "x-amz-target": "AWSStepFunctions.SendTaskFailure", "content-type": "application/x-amz-json-1.0" },
      body: JSON.stringify({ taskToken: "abc" }),
    });
    const page = await raw(`${stack.httpUrl}/approvals`, { headers: { host: `rebind.example:${port}` } });
    // Assess
    expect([foreignHost.status, noKey.status, foreignOrigin.status, crossSite.status, plain.status]).toEqual([
      421, 401, 403, 403, 415,
    ]);
    expect(badBase64).toMatchObject({ status: 400, body: expect.stringContaining("not valid base64") });
    expect(nulName).toMatchObject({ status: 400, body: expect.stringContaining("without control characters") });
    expect(taskApiViaLink.status).toBe(401);
    expect(page.status).toBe(421);
    expect((await stack.ledger.listRuns()).length).toBe(before);
  });
});

describe("a stale owner file", () => {
  it("is taken over when its pid is gone", async () => {
    // Prepare: the pid of a process that has exited.
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    const dataDir = tempDir("owner-stale");
    writeFileSync(ownerFile(dataDir), JSON.stringify({ pid: Number(dead), command: "mcp", startedAt: "then" }));
    // Act
    const stack = await LocalStack.start({ dataDir, customers: loadCustomers(CUSTOMERS_DIR) });
    try {
      // Assess
      expect(JSON.parse(readFileSync(ownerFile(dataDir), "utf8"))).toMatchObject({ pid: process.pid });
    } finally {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * `npm run bench`: end-to-end throughput of the local stack (emulated S3/DynamoDB/SES, the local
 * Step Functions engine, the offline reference model). Prints figures; asserts nothing.
 *   npm run bench -- --runs 100 [--json]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { LocalStack } from "../../local/stack.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { values } = parseArgs({ options: { runs: { type: "string" }, json: { type: "boolean" } } });
const runs = Number(values.runs ?? 60);

const dataDir = mkdtempSync(join(tmpdir(), "po-agent-bench-"));
const template = JSON.parse(readFileSync("samples/acme/01-packaging-saved.json", "utf8")) as { poNumber: string };
const started = performance.now();
const stack = await LocalStack.start({ dataDir, customers: loadCustomers("customers") });
const startupMs = performance.now() - started;
try {
  const t0 = performance.now();
  const submitted: { runId: string; at: number }[] = [];
  for (let i = 0; i < runs; i++) {
    // Distinct bytes and PO numbers: the same bytes would (rightly) never run twice.
    const body = Buffer.from(JSON.stringify({ ...template, poNumber: `BENCH-${i}` }));
    submitted.push({ runId: await stack.submit("acme", `bench-${i}.json`, body), at: performance.now() });
  }
  const latencies: number[] = [];
  await Promise.all(
    submitted.map(async ({ runId, at }) => {
      await stack.waitSettled(runId, 600_000);
      latencies.push(performance.now() - at);
    }),
  );
  const wallMs = performance.now() - t0;
  const records = (await stack.ledger.listRuns()).filter((r) => submitted.some((s) => s.runId === r.runId));
  const saved = records.filter((r) => r.status === "saved").length;
  const modelCalls = records.reduce((n, r) => n + r.counters.modelCalls, 0);
  const toolCalls = records.reduce((n, r) => n + r.counters.toolCalls, 0);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  const figures = {
    runs,
    saved,
    startupMs: Math.round(startupMs),
    wallMs: Math.round(wallMs),
    runsPerSecond: Number((runs / (wallMs / 1000)).toFixed(2)),
    latencyP50Ms: Math.round(pct(50)),
    latencyP95Ms: Math.round(pct(95)),
    modelCallsPerRun: Number((modelCalls / runs).toFixed(2)),
    toolCallsPerRun: Number((toolCalls / runs).toFixed(2)),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  if (values.json) console.log(JSON.stringify(figures));
  else {
    console.log(
      `po-agent local end-to-end benchmark (${runs} POs, offline reference model, ${new Date().toISOString()})`,
    );
    for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(18)} ${v}`);
  }
} finally {
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
}

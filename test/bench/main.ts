/**
 * `npm run bench [-- --runs N --json]`: the local end-to-end throughput, ledger calls per step, then the per-format parser
 * throughput and the 50 MB case, then the deployed bundles' size and module-init time and a customer
 * stack's fixed monthly cost (bench:bundles, on cdk.out; it synthesizes when there is none). Figures only; nothing is asserted. The heavier benchmarks have
 * their own scripts: bench:durability, bench:context, check:security.
 */
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
for (const script of [
  "test/bench/run.ts",
  "test/bench/ledger-calls.ts",
  "test/bench/formats.ts",
  "test/bench/bundles.ts",
]) {
  const passed = script.endsWith("run.ts") ? args : args.filter((a) => a === "--json");
  const res = spawnSync(process.execPath, ["--import", "tsx", script, ...passed], { stdio: "inherit" });
  if (res.status !== 0) process.exit(res.status ?? 1);
}

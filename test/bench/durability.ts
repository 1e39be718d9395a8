/**
 * `npm run bench:durability [-- --pos 200 --seed 7 --json]`: POs through the local stack under a
 * seeded fault schedule with random kills of the runtime, against a fault-free run and a
 * no-ledger baseline. Prints figures; asserts nothing (the test suite runs a small version).
 */
import { parseArgs } from "node:util";
import { runDurability } from "./durability-lib.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { values } = parseArgs({
  options: { pos: { type: "string" }, seed: { type: "string" }, json: { type: "boolean" } },
});
const pos = Number(values.pos ?? 200);
const seed = Number(values.seed ?? 7);
const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);

log(`durability benchmark: ${pos} POs, seed ${seed}, ${new Date().toISOString()}`);
const report = await runDurability({ pos, seed, log });
if (values.json) {
  console.log(JSON.stringify(report));
} else {
  const { faultsInjected, ...figures } = report;
  for (const [k, v] of Object.entries(figures)) log(`  ${k.padEnd(32)} ${v}`);
  log("  faultsInjected:");
  for (const [k, v] of Object.entries(faultsInjected)) log(`    ${k.padEnd(30)} ${v}`);
}

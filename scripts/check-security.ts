/**
 * Security figures: the hostile-input suite and cdk-nag on every customer stack.
 *   npx tsx scripts/check-security.ts [--json]
 * Prints one line per hostile case and the nag findings; with --json the last line is
 * `{ "hostileInputsTried": n, "hostileInputsThrough": n, "compromisedModelAttacksTried": n,
 * "compromisedModelAttacksThrough": n, "nagErrors": n }`. Exits 1 when anything got through, a
 * case's legitimate control failed, or nag reports an unacknowledged error.
 */
import { loadCustomers } from "../lambdas/shared/config/load.js";
import { runNag } from "../lib/nag.js";
import { runCompromisedModelSuite } from "../test/security/compromised.js";
import { runHostileSuite } from "../test/security/hostile.js";
import { CUSTOMERS_DIR } from "../test/support/stack.js";

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const results = await runHostileSuite();
  for (const r of results) {
    out(
      `${r.through === 0 && r.controlOk ? "ok  " : "FAIL"} ${r.name}: ${r.tried} tried, ${r.through} through${r.controlOk ? "" : " (legitimate control failed)"}`,
    );
    for (const b of r.breaches) out(`       through: ${b}`);
  }
  // A compromised model: every human rejects, so any order object or ERP write is an effect past the policy.
  const attacks = await runCompromisedModelSuite();
  for (const a of attacks) {
    out(
      `${a.through ? "FAIL" : "ok  "} compromised model: ${a.name}${a.through ? ` (${a.effects} write(s) without a human)` : ""}`,
    );
  }
  const nag = runNag(loadCustomers(CUSTOMERS_DIR));
  for (const v of nag) out(`nag  ${v.rule} at ${v.constructPath}: ${v.description}`);
  const figures = {
    hostileInputsTried: results.reduce((n, r) => n + r.tried, 0),
    hostileInputsThrough: results.reduce((n, r) => n + r.through, 0),
    compromisedModelAttacksTried: attacks.length,
    compromisedModelAttacksThrough: attacks.filter((a) => a.through).length,
    nagErrors: nag.length,
  };
  out(
    `${figures.hostileInputsTried} hostile inputs tried in ${results.length} cases, ${figures.hostileInputsThrough} got through; ${figures.nagErrors} unacknowledged cdk-nag errors`,
  );
  out(
    `${figures.compromisedModelAttacksTried} compromised-model attacks tried, ${figures.compromisedModelAttacksThrough} got a write past the policy`,
  );
  if (json) out(JSON.stringify(figures));
  const ok =
    figures.hostileInputsThrough === 0 &&
    figures.compromisedModelAttacksThrough === 0 &&
    figures.nagErrors === 0 &&
    results.every((r) => r.controlOk);
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);

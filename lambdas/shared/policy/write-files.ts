/**
 * Regenerates `customers/<name>.cedar` from each `customers/<name>.yaml`:
 *   npx tsx lambdas/shared/policy/write-files.ts [customers-dir]
 * A test fails while a checked-in policy file differs from what its YAML generates.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCustomers } from "../config/load.js";
import { cedarPolicyText, policyRevisionOf, validatePolicyText } from "./cedar.js";

export function writePolicyFiles(dir: string): string[] {
  const written: string[] = [];
  for (const customer of loadCustomers(dir)) {
    const text = cedarPolicyText(customer);
    const problems = validatePolicyText(text);
    if (problems.length > 0) throw new Error(`${customer.name}: generated policy is invalid: ${problems.join("; ")}`);
    const file = join(dir, `${customer.name}.cedar`);
    writeFileSync(file, text);
    written.push(`${file} (${policyRevisionOf(customer, text)})`);
  }
  return written;
}

if (process.argv[1]?.endsWith("write-files.ts")) {
  for (const line of writePolicyFiles(process.argv[2] ?? "customers")) process.stdout.write(`${line}\n`);
}

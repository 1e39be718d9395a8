import { readFileSync } from "node:fs";
import { join } from "node:path";

/** What samples/README.md says a sample ends as, with the offline reference model and the customer's policy. */
export type ExpectedOutcome = "saved" | "awaiting approval" | "rejected" | "failed";
const OUTCOMES: readonly string[] = ["saved", "awaiting approval", "rejected", "failed"];

/**
 * The "Expected" column of each customer's table in samples/README.md, by `<customer>/<file>`: one table per
 * `## <customer> (...)` section, a row per sample whose first cell is the file name in backticks. A row
 * whose outcome is not one of the four, or a file listed twice, is an error naming the line.
 */
export function expectedOutcomes(readme: string): Map<string, ExpectedOutcome> {
  const out = new Map<string, ExpectedOutcome>();
  let customer: string | undefined;
  let column = -1;
  for (const [i, line] of readme.split("\n").entries()) {
    const heading = /^## (\S+) \(/.exec(line);
    if (heading) {
      customer = heading[1];
      column = -1;
      continue;
    }
    if (line.startsWith("## ")) customer = undefined;
    if (!customer || !line.startsWith("|")) continue;
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.includes("Expected")) {
      column = cells.indexOf("Expected");
      continue;
    }
    const file = /^`([^`]+)`$/.exec(cells[0] ?? "")?.[1];
    if (!file || column < 0) continue;
    const outcome = cells[column] ?? "";
    if (!OUTCOMES.includes(outcome))
      throw new Error(`samples/README.md line ${i + 1}: "${outcome}" for ${file} is not one of ${OUTCOMES.join(", ")}`);
    const key = `${customer}/${file}`;
    if (out.has(key)) throw new Error(`samples/README.md line ${i + 1}: ${key} is listed twice`);
    out.set(key, outcome as ExpectedOutcome);
  }
  return out;
}

/** The expected outcomes of the repository's samples. */
export function sampleExpectations(repoRoot: string): Map<string, ExpectedOutcome> {
  return expectedOutcomes(readFileSync(join(repoRoot, "samples", "README.md"), "utf8"));
}

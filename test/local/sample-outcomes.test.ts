import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { LocalStack } from "../../local/stack.js";
import { expectedOutcomes, sampleExpectations } from "../../scripts/deployed/expected-outcomes.js";

/**
 * Every sample `npm start` processes ends as samples/README.md says it does (the "Expected" column), on the
 * sources with the offline reference model: the table a user reads is checked, not written by hand and left.
 * check:deployed holds the synthesized bundles to the same table.
 */
describe("the samples end as samples/README.md says", () => {
  let stack: LocalStack;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "po-agent-samples-"));
    stack = await LocalStack.start({ dataDir, customers: loadCustomers("customers"), retryIntervalMs: 0 });
  });

  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs every sample of every customer to the outcome the README gives it", async () => {
    // Prepare: every file under samples/<customer>/, as npm start finds them
    const expected = sampleExpectations(".");
    const files = readdirSync("samples", { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => readdirSync(join("samples", d.name)).map((f) => `${d.name}/${f}`));

    // Act
    const runs = await Promise.all(
      files.map(async (f) => {
        const [customer = "", file = ""] = f.split("/");
        const path = join("samples", customer, file);
        return { f, runId: await stack.submit(customer, path, readFileSync(path)) };
      }),
    );
    const got = new Map<string, string>();
    const reasons = new Map<string, string | undefined>();
    for (const { f, runId } of runs) {
      const run = await stack.waitSettled(runId);
      got.set(f, run?.status === "awaiting_approval" ? "awaiting approval" : String(run?.status));
      reasons.set(f, run?.reason);
    }

    // Assess: the same files, the same outcomes; a failed run says why
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));
    for (const [f, outcome] of expected) if (outcome === "failed") expect(reasons.get(f), f).toBeTruthy();
  }, 240_000);

  it("refuses a table row whose outcome is not one of the four, naming the line", () => {
    const readme =
      "## acme (Acme)\n\n| File | Expected |\n| --- | --- |\n| `a.json` | saved |\n| `b.json` | approved |\n";
    expect(() => expectedOutcomes(readme)).toThrow(/line 6: "approved" for b.json is not one of/);
    expect(expectedOutcomes(readme.split("\n").slice(0, 5).join("\n"))).toEqual(new Map([["acme/a.json", "saved"]]));
  });
});

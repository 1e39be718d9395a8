/**
 * Screenshots of the console's three main pages for the README:
 *
 *   npx tsx test/browser/screenshots.ts [outDir]      (default docs/)
 *
 * A fresh local stack on the offline model processes the acme samples (on one of them the model
 * amends the order first, so the approvals page shows a diff); the browser is the one the browser
 * suite finds (find-browser.ts).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { LocalStack } from "../../local/stack.js";
import { AMENDED_SAMPLE, AmendingModel } from "../support/amending-model.js";
import { CUSTOMERS_DIR, SAMPLES_DIR } from "../support/stack.js";
import { findBrowser, machineSearchEnv } from "./find-browser.js";

const out = resolve(process.argv[2] ?? "docs");
const found = findBrowser(machineSearchEnv(() => chromium.executablePath()));
if (!found.found) {
  process.stderr.write(`screenshots: ${found.message}\n`);
  process.exit(1);
}
process.env.ANTHROPIC_API_KEY = "";
const dataDir = mkdtempSync(join(tmpdir(), "po-agent-shots-"));
const stack = await LocalStack.start({
  dataDir,
  customers: loadCustomers(CUSTOMERS_DIR),
  model: () => ({
    client: new AmendingModel(new ReferenceModelClient()),
    modelId: REFERENCE_MODEL,
    note: `offline reference model (amends ${AMENDED_SAMPLE})`,
  }),
});
const browser = await chromium.launch({ executablePath: found.path, headless: true, args: ["--no-sandbox"] });
try {
  const ids = new Map<string, string>();
  for (const f of readdirSync(join(SAMPLES_DIR, "acme"))
    .filter((x) => !x.endsWith(".md"))
    .sort()) {
    ids.set(f, await stack.submit("acme", f, readFileSync(join(SAMPLES_DIR, "acme", f))));
  }
  await stack.waitAllSettled();
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  await page.goto(stack.consoleUrl);
  const shoot = async (path: string, file: string, height = 820) => {
    await page.goto(`${stack.httpUrl}${path}`);
    await page.screenshot({ path: join(out, file), fullPage: true, clip: { x: 0, y: 0, width: 1280, height } });
    process.stdout.write(`${file}: ${statSync(join(out, file)).size} bytes\n`);
  };
  await shoot("/", "console-runs.png");
  await shoot(
    `/runs/${encodeURIComponent(ids.get("06-cxml-order-needs-approval.xml") ?? "")}`,
    "console-run.png",
    1500,
  );
  // One decision taken, one left waiting: the approvals page shows both lists.
  const first = (await stack.ledger.listApprovals("pending")).find(
    (a) => a.runId === ids.get("03-controls-needs-approval.json"),
  );
  if (first) {
    await stack.decideByOperator(first.approvalId, "approved", "ap-clerk", "checked against the quote", "console");
    await stack.resumeRuns((r) => r.runId === first.runId);
    await stack.waitSettled(first.runId);
  }
  await shoot("/approvals", "console-approvals.png", 900);
} finally {
  await browser.close();
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
}

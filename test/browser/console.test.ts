import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { realCustomers, sampleBytes, startTestStack, type TestStack } from "../support/stack.js";
import { browserSuitePlan, findBrowser, machineSearchEnv } from "./find-browser.js";

/**
 * The local console in a real browser: a Chromium-family browser driven by playwright-core against
 * a LocalStack on the offline reference model. Which browser: see find-browser.ts. Without one the
 * suite is skipped with one line saying how to enable it, except under CI=true where it fails.
 */
const plan = browserSuitePlan(findBrowser(machineSearchEnv(() => chromium.executablePath())), process.env);
if (!plan.run) process.stderr.write(`${plan.line}\n`);
const CHROMIUM = plan.run ? plan.path : "";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

if (!plan.run && plan.fail) {
  describe("local console in Chromium", () => {
    it("has a browser to run in", () => {
      throw new Error(plan.line);
    });
  });
}

describe.skipIf(!plan.run)("local console in Chromium", () => {
  let t: TestStack;
  let browser: BrowserContext;
  let page: Page;
  let consoleUrl: string;
  let profile: string;

  beforeAll(async () => {
    t = await startTestStack({
      customers: realCustomers(),
      model: () => ({ client: new ReferenceModelClient(), modelId: REFERENCE_MODEL, note: "reference" }),
    });
    // The console `npm start` serves: the stack's own HTTP server.
    consoleUrl = t.stack.httpUrl;
    profile = mkdtempSync(join(tmpdir(), "po-agent-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Reloads (the pages refresh themselves too) until `selector` shows up. */
  async function waitForSelectorAcrossReloads(selector: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await page.locator(selector).count()) > 0) return;
      if (Date.now() > deadline) {
        const text = ((await page.locator("body").textContent()) ?? "").slice(0, 600);
        throw new Error(
          `"${selector}" did not appear on ${page.url()} within ${timeoutMs} ms; the page shows: ${text}`,
        );
      }
      await page.waitForTimeout(250);
      await page.reload();
    }
  }

  it("shows a run go from submitted to saved, with its timeline, tool calls and cost", async () => {
    // Prepare
    await page.goto(consoleUrl);
    expect(await page.locator("h1").textContent()).toMatch(/^Runs \(0\)/);
    // Act
    const runId = await t.stack.submit(
      "acme",
      "01-packaging-saved.json",
      sampleBytes("acme", "01-packaging-saved.json"),
    );
    // Assess
    await waitForSelectorAcrossReloads(`tr[data-run="${runId}"] [data-status="saved"]`);
    await page.click(`tr[data-run="${runId}"] a`);
    expect(await page.locator("h1").textContent()).toBe(`Run ${runId}`);
    expect(await page.locator('[data-tool="save"]').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-tool="extract"] pre').nth(1).textContent()).toContain("ACM-PO-22817");
    expect(await page.locator("#timeline").textContent()).toContain("model po-agent-reference-v1 turn 1");
    expect(await page.locator("#cost").textContent()).toMatch(/AWS estimate\$0\.\d{4,}/);
  });

  it("approves an escalated run from the console's link and sees it saved", async () => {
    // Prepare
    const runId = await t.stack.submit(
      "acme",
      "03-controls-needs-approval.json",
      sampleBytes("acme", "03-controls-needs-approval.json"),
    );
    const settled = await t.stack.waitSettled(runId);
    expect(settled?.status, settled?.reason).toBe("awaiting_approval");
    await page.goto(`${consoleUrl}/approvals`);
    await waitForSelectorAcrossReloads(`a[href^="/runs/${runId}"]`);
    // Act: the console's Approve link opens the same confirm page as the email; its button decides.
    const row = page.locator("tr", { has: page.locator(`a[href="/runs/${runId}"]`) });
    await row.locator("a.approve").click();
    expect(page.url()).toContain(`${t.stack.httpUrl}/approvals/`);
    await page.locator('form button[type="submit"]').click();
    await page.waitForLoadState();
    // Assess
    await page.goto(`${consoleUrl}/runs/${encodeURIComponent(runId)}`);
    await waitForSelectorAcrossReloads('.facts [data-status="saved"]');
    expect(await page.locator("[data-approval] [data-status]").first().getAttribute("data-status")).toBe("approved");
    const run = await t.stack.ledger.getRun(runId);
    expect(run?.status).toBe("saved");
  });
});

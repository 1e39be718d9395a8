import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { closeServer, listen } from "../../local/ports.js";
import { AmendingModel, AMENDED_SAMPLE as TAMPERED } from "../support/amending-model.js";
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
  // A DNS-rebinding page: rebind.test resolves to the console's loopback address.
  "--host-resolver-rules=MAP rebind.test 127.0.0.1",
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
  /** A foreign web page's server (another origin on this machine). */
  let attacker: Server;
  let attackerPort: number;
  let attackerPage = "";

  beforeAll(async () => {
    t = await startTestStack({
      customers: realCustomers(),
      model: () => ({
        client: new AmendingModel(new ReferenceModelClient()),
        modelId: REFERENCE_MODEL,
        note: "reference (amends one document)",
      }),
    });
    // The console `npm start` serves: the stack's own HTTP server, opened once with the printed URL (its key).
    consoleUrl = t.stack.httpUrl;
    attacker = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(attackerPage));
    attackerPort = await listen(attacker, 0);
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
    if (attacker) await closeServer(attacker);
    await t?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Reloads (the pages refresh themselves too) until `selector` shows up. */
  async function waitForSelectorAcrossReloads(selector: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await page.locator(selector).count()) > 0) return;
      if (Date.now() > deadline) {
        const text = ((await page.locator("body").textContent()) ?? "").replace(/\s+/g, " ").slice(0, 600);
        throw new Error(
          `"${selector}" did not appear on ${page.url()} within ${timeoutMs} ms; the page shows: ${text}`,
        );
      }
      await page.waitForTimeout(250);
      await page.reload();
    }
  }

  it("refuses the console without this start's key, and opens with the printed URL", async () => {
    // Prepare
    await browser.clearCookies();
    // Act
    const refused = await page.goto(`${consoleUrl}/`);
    // Assess
    expect(refused?.status()).toBe(401);
    expect(await page.locator("body").textContent()).toContain("open the console URL it printed");
    const opened = await page.goto(t.stack.consoleUrl);
    expect(opened?.status()).toBe(200);
    expect(page.url()).toBe(`${consoleUrl}/`);
    const cookie = (await browser.cookies(consoleUrl)).find((c) => c.name.startsWith("po-agent-"));
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    expect(opened?.headers()["x-frame-options"]).toBe("DENY");
    expect(opened?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
  });

  it("shows a run go from submitted to saved, with its timeline, tool calls and cost", async () => {
    // Prepare
    await page.goto(t.stack.consoleUrl);
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

  it("approves an escalated run from the console's form and sees it saved", async () => {
    // Prepare
    const runId = await t.stack.submit(
      "acme",
      "03-controls-needs-approval.json",
      sampleBytes("acme", "03-controls-needs-approval.json"),
    );
    const settled = await t.stack.waitSettled(runId);
    expect(settled?.status, settled?.reason).toBe("awaiting_approval");
    await page.goto(t.stack.consoleUrl);
    await page.goto(`${consoleUrl}/approvals`);
    await waitForSelectorAcrossReloads(`a[href^="/runs/${runId}"]`);
    // The page hands out no signed approver link.
    expect(await page.locator('a[href*="/approvals/"]').count()).toBe(0);
    // Act
    const row = page.locator("#approvals tr", { has: page.locator(`a[href="/runs/${runId}"]`) });
    const decided = page.waitForResponse((r) => r.url().endsWith("/decide"));
    await row.locator("button.approve").click();
    expect((await decided).status()).toBe(303);
    await page.waitForLoadState();
    // Assess
    await page.goto(`${consoleUrl}/runs/${encodeURIComponent(runId)}`);
    await waitForSelectorAcrossReloads('.facts [data-status="saved"]');
    expect(await page.locator("[data-approval] [data-status]").first().getAttribute("data-status")).toBe("approved");
    const run = await t.stack.ledger.getRun(runId);
    expect(run?.status).toBe("saved");
    await page.goto(`${consoleUrl}/approvals`);
    expect(await page.locator("#decided [data-status=approved]").count()).toBeGreaterThan(0);
  });

  it("shows the approver what the model changed: document against the version that would be saved", async () => {
    // Prepare: the model amends the fasteners order before saving it.
    const runId = await t.stack.submit("acme", TAMPERED, sampleBytes("acme", TAMPERED));
    const settled = await t.stack.waitSettled(runId);
    expect(settled?.status, settled?.reason).toBe("awaiting_approval");
    const approval = (await t.stack.ledger.listApprovals("pending")).find((a) => a.runId === runId);
    if (!approval) throw new Error("no pending approval for the amended run");
    await page.goto(t.stack.consoleUrl);
    // Act
    await page.goto(`${consoleUrl}/approvals`);
    const diff = page.locator(`[data-changes-for="${approval.approvalId}"]`);
    // Assess: one row per changed field, the document's value against the one to be saved, in dollars
    const rows = await diff.locator("table.diff tbody tr").evaluateAll((trs) =>
      trs.map((tr) => ({
        path: tr.getAttribute("data-path"),
        kind: tr.getAttribute("data-kind"),
        from: tr.querySelector("td.from")?.textContent,
        to: tr.querySelector("td.to")?.textContent,
      })),
    );
    expect(rows).toEqual([
      { path: "/lines/0/amountMinor", kind: "money", from: "$840.00", to: "$1,050.00" },
      { path: "/lines/0/quantity", kind: "quantity", from: "2000", to: "2500" },
      { path: "/totalMinor", kind: "money", from: "$3,275.40", to: "$3,485.40" },
    ]);
    // The chain of versions says who changed what and why; the reason is the model's, shown as such.
    const versions = await diff.locator("ol.versions li").allTextContents();
    expect(versions[0]).toMatch(/^v1: read from the document/);
    expect(versions.at(-1)).toMatch(/amended by the model — “quantity confirmed with the buyer” \(money, quantity\)/);
    expect(await diff.locator("[data-tampered]").count()).toBe(0);
    // The diff sits right under the decision it is about, and the run page shows it too.
    const pendingRow = page.locator(`#approvals tr[data-approval="${approval.approvalId}"]`);
    expect(await pendingRow.locator("button.approve").count()).toBe(1);
    expect(await page.locator(`#approvals tr[data-changes-row="${approval.approvalId}"] table.diff`).count()).toBe(1);
    await page.goto(`${consoleUrl}/runs/${encodeURIComponent(runId)}`);
    expect(
      await page.locator(`[data-approval] [data-changes-for="${approval.approvalId}"] table.diff tbody tr`).count(),
    ).toBe(3);
  });

  it("a cross-site page's text/plain form decides nothing and submits nothing", async () => {
    // Prepare: a run waiting for approval, and a browser that holds the console cookie.
    await page.goto(t.stack.consoleUrl);
    const runId = await t.stack.submit(
      "acme",
      "06-cxml-order-needs-approval.xml",
      sampleBytes("acme", "06-cxml-order-needs-approval.xml"),
    );
    const settled = await t.stack.waitSettled(runId);
    expect(settled?.status, settled?.reason).toBe("awaiting_approval");
    const approval = (await t.stack.ledger.listApprovals("pending")).find((a) => a.runId === runId);
    expect(approval).toBeDefined();
    const runsBefore = (await t.stack.ledger.listRuns()).length;
    const target = `${consoleUrl}/api/approvals/${encodeURIComponent(approval?.approvalId ?? "")}/decide`;
    const forged = (action: string, name: string, value: string) =>
      `<form id="f" method="post" enctype="text/plain" action="${action}"><input name='${name}' value='${value}'></form><script>document.getElementById("f").submit()</script>`;
    // Act: from another site (localhost) and from another origin of the same site (127.0.0.1, other port).
    for (const host of ["localhost", "127.0.0.1"]) {
      attackerPage = forged(target, '{"decision":"approved","by":"attacker","x":"', '"}');
      await page.goto(`http://${host}:${attackerPort}/`);
      await page.waitForURL((u) => u.port === new URL(consoleUrl).port, { timeout: 10_000 });
      expect(await page.locator("body").textContent()).toMatch(/refused|needs the key/);
      attackerPage = forged(
        `${consoleUrl}/api/submit`,
        '{"customer":"acme","fileName":"evil.json","contentBase64":"',
        `${Buffer.from('{"poNumber":"EVIL"}').toString("base64")}","x":""}`,
      );
      await page.goto(`http://${host}:${attackerPort}/`);
      await page.waitForURL((u) => u.port === new URL(consoleUrl).port, { timeout: 10_000 });
    }
    // Assess: count the effects, not the pages.
    expect((await t.stack.ledger.getApproval(approval?.approvalId ?? ""))?.status).toBe("pending");
    expect((await t.stack.ledger.getRun(runId))?.status).toBe("awaiting_approval");
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.stack.ledger.listRuns()).length).toBe(runsBefore);
    const audit = await t.stack.ledger.getAudit(runId);
    expect(audit.some((a) => a.actor.includes("attacker"))).toBe(false);
  });

  it("shows an AP clerk the PO next to its document (a PDF's text), the time waterfall, filters and folded reasons", async () => {
    // Prepare
    const runId = await t.stack.submit(
      "acme",
      "08-pdf-text-layer-saved.pdf",
      sampleBytes("acme", "08-pdf-text-layer-saved.pdf"),
    );
    const settled = await t.stack.waitSettled(runId);
    expect(settled?.status, settled?.reason).toBe("saved");
    await page.goto(t.stack.consoleUrl);
    // Act: the run page
    await page.goto(`${consoleUrl}/runs/${encodeURIComponent(runId)}`);
    // Assess: the order as extracted, in its currency, beside the PDF's text layer.
    expect(await page.locator("#po [data-po-number]").textContent()).toBe(settled?.poNumber);
    expect(await page.locator("#po [data-line]").count()).toBeGreaterThan(0);
    expect(await page.locator("#po [data-total]").textContent()).toMatch(/^\$[\d,]+\.\d{2}$/);
    expect(await page.locator("#document pre.doc").textContent()).toContain(settled?.poNumber ?? "?");
    const side = await page.locator(".side > div").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().x));
    expect(side).toHaveLength(2);
    expect((side[1] ?? 0) > (side[0] ?? 0)).toBe(true);
    // The waterfall is a picture with model and tool bars and a legend of where the time went.
    expect(await page.locator("svg#waterfall g[data-kind=model] rect").count()).toBeGreaterThan(0);
    expect(await page.locator("svg#waterfall g[data-kind=tools] rect").count()).toBeGreaterThan(0);
    expect(await page.locator("[data-kind-total=model]").textContent()).toMatch(/model \d+\.\d{2} s/);

    // Act: filters on the runs list
    await page.goto(`${consoleUrl}/?state=saved`);
    const states = await page
      .locator("#runs tbody [data-status]")
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-status")));
    await page.goto(`${consoleUrl}/?vendor=${encodeURIComponent("northeast")}`);
    const vendors = await page.locator("#runs tbody [data-vendor]").allTextContents();
    await page.goto(`${consoleUrl}/?state=awaiting_approval`);
    const waiting = await page.locator("#runs tbody tr[data-run]").count();
    // Assess
    expect(states.length).toBeGreaterThan(1);
    expect(new Set(states)).toEqual(new Set(["saved"]));
    expect(vendors.length).toBeGreaterThan(0);
    for (const v of vendors) expect(v.toLowerCase()).toContain("northeast");
    expect(waiting).toBe((await t.stack.ledger.listRuns()).filter((r) => r.status === "awaiting_approval").length);
    // A long reason is folded; its full text is one click away.
    const folded = page.locator("#runs td.reason details.more").first();
    expect(await folded.getAttribute("open")).toBeNull();
    await folded.locator("summary").click();
    expect(await folded.getAttribute("open")).not.toBeNull();
    expect((await folded.textContent())?.length ?? 0).toBeGreaterThan(
      ((await folded.locator("summary").textContent()) ?? "").length,
    );
  });

  it("a foreign Host (DNS rebinding) gets nothing, not even with the cookie's key", async () => {
    // Prepare
    const port = new URL(consoleUrl).port;
    const runsBefore = (await t.stack.ledger.listRuns()).length;
    // Act: rebind.test resolves to 127.0.0.1; the page is same-origin with itself, so it may POST freely.
    const page2 = await browser.newPage();
    const first = await page2.goto(`http://rebind.test:${port}/?key=${encodeURIComponent(t.stack.controlKey)}`);
    const posted = await page2.evaluate(async () => {
      const res = await fetch("/api/submit", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ customer: "acme", fileName: "x.json", contentBase64: "e30=" }),
      });
      return res.status;
    });
    const inbox = await page2.goto(`http://rebind.test:${new URL(t.stack.services.sesEndpoint).port}/store`);
    await page2.close();
    // Assess
    expect(first?.status()).toBe(421);
    expect(posted).toBe(421);
    expect(inbox?.status()).toBe(421);
    expect((await t.stack.ledger.listRuns()).length).toBe(runsBefore);
  });
});

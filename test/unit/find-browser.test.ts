import { describe, expect, it } from "vitest";
import { type BrowserSearchEnv, browserSuitePlan, findBrowser } from "../browser/find-browser.js";

/** A machine with exactly these files. */
function machine(
  platform: NodeJS.Platform,
  files: string[],
  env: Record<string, string> = {},
  playwright?: string,
): BrowserSearchEnv & { looked: string[] } {
  const present = new Set(files);
  const looked: string[] = [];
  return {
    env,
    platform,
    homedir: platform === "win32" ? "C:\\Users\\ann" : platform === "darwin" ? "/Users/ann" : "/home/ann",
    exists: (p) => {
      looked.push(p);
      return present.has(p);
    },
    playwrightExecutable: () => playwright,
    looked,
  };
}

describe("findBrowser", () => {
  it("uses only PO_AGENT_BROWSER when it is set, even when a system browser exists", () => {
    // Prepare
    const m = machine("linux", ["/usr/bin/chromium", "/opt/my/chrome"], { PO_AGENT_BROWSER: "/opt/my/chrome" });
    // Act
    const found = findBrowser(m);
    // Assess
    expect(found).toEqual({ found: true, path: "/opt/my/chrome", source: "PO_AGENT_BROWSER" });
    expect(m.looked).toEqual(["/opt/my/chrome"]);
  });

  it("does not fall back when PO_AGENT_BROWSER points nowhere", () => {
    const m = machine("linux", ["/usr/bin/chromium"], { PO_AGENT_BROWSER: "/nope/chrome" });
    const found = findBrowser(m);
    expect(found.found).toBe(false);
    expect(m.looked).toEqual(["/nope/chrome"]);
    if (!found.found) expect(found.message).toContain("PO_AGENT_BROWSER=/nope/chrome does not exist");
  });

  it.each([
    ["linux", "/usr/bin/chromium"],
    ["linux", "/usr/bin/google-chrome"],
    ["linux", "/snap/bin/chromium"],
    ["darwin", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"],
    ["darwin", "/Users/ann/Applications/Chromium.app/Contents/MacOS/Chromium"],
    ["win32", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"],
    ["win32", "C:\\Users\\ann\\AppData\\Local\\Microsoft\\Edge\\Application\\msedge.exe"],
  ] as const)("finds the usual browser on %s at %s", (platform, path) => {
    const m = machine(platform, [path], {
      PROGRAMFILES: "C:\\Program Files",
      "PROGRAMFILES(X86)": "C:\\Program Files (x86)",
      LOCALAPPDATA: "C:\\Users\\ann\\AppData\\Local",
    });
    expect(findBrowser(m)).toEqual({ found: true, path, source: "system" });
  });

  it("falls back to playwright-core's own download when no system browser is there", () => {
    const own = "/home/ann/.cache/ms-playwright/chromium-1200/chrome-linux/chrome";
    const m = machine("linux", [own], {}, own);
    expect(findBrowser(m)).toEqual({ found: true, path: own, source: "playwright" });
  });

  it("reports every place it looked when there is no browser at all", () => {
    const m = machine("darwin", [], {}, "/Users/ann/Library/Caches/ms-playwright/chromium-1/chrome-mac/Chromium");
    const found = findBrowser(m);
    expect(found.found).toBe(false);
    if (found.found) return;
    expect(found.tried).toHaveLength(m.looked.length);
    expect(found.message).toMatch(/PO_AGENT_BROWSER=/);
  });
});

describe("browserSuitePlan", () => {
  const missing = findBrowser(machine("linux", []));

  it("skips with one line outside CI", () => {
    const plan = browserSuitePlan(missing, {});
    expect(plan).toMatchObject({ run: false, fail: false });
    if (!plan.run) expect(plan.line.split("\n")).toHaveLength(1);
  });

  it("fails under CI=true", () => {
    expect(browserSuitePlan(missing, { CI: "true" })).toMatchObject({ run: false, fail: true });
  });

  it("runs with the path it found", () => {
    expect(browserSuitePlan(findBrowser(machine("linux", ["/usr/bin/chromium"])), { CI: "true" })).toEqual({
      run: true,
      path: "/usr/bin/chromium",
    });
  });
});

/**
 * Finds a Chromium-family browser for the browser suite, so `npm test` works on any laptop:
 * `PO_AGENT_BROWSER` when set (only that path), else the usual install locations of Linux, macOS
 * and Windows, else playwright-core's own download location. The file system and environment are
 * injected so the search is unit-tested without any browser installed.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { win32 } from "node:path";

export interface BrowserSearchEnv {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  exists(path: string): boolean;
  homedir: string;
  /** Where playwright-core would put its own Chromium (`chromium.executablePath()`); may not exist. */
  playwrightExecutable(): string | undefined;
}

export type BrowserSearch =
  | { found: true; path: string; source: "PO_AGENT_BROWSER" | "system" | "playwright" }
  | { found: false; tried: string[]; message: string };

/** The usual places of Chromium, Chrome and Edge per platform, most common first. */
export function systemCandidates(platform: NodeJS.Platform, env: BrowserSearchEnv["env"], home: string): string[] {
  if (platform === "darwin") {
    const apps = [
      "Google Chrome.app/Contents/MacOS/Google Chrome",
      "Chromium.app/Contents/MacOS/Chromium",
      "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
      "Brave Browser.app/Contents/MacOS/Brave Browser",
    ];
    return [...apps.map((a) => `/Applications/${a}`), ...apps.map((a) => `${home}/Applications/${a}`)];
  }
  if (platform === "win32") {
    const roots = [env.PROGRAMFILES, env["PROGRAMFILES(X86)"], env.LOCALAPPDATA].filter(
      (r): r is string => typeof r === "string" && r.length > 0,
    );
    const rel = [
      "Google\\Chrome\\Application\\chrome.exe",
      "Chromium\\Application\\chrome.exe",
      "Microsoft\\Edge\\Application\\msedge.exe",
    ];
    return roots.flatMap((root) => rel.map((r) => win32.join(root, r)));
  }
  return [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/opt/google/chrome/chrome",
    "/snap/bin/chromium",
    "/usr/bin/microsoft-edge",
    "/usr/local/bin/chromium",
  ];
}

const HOW_TO =
  "set PO_AGENT_BROWSER=/path/to/chromium-or-chrome, install Chromium or Chrome, or run `npx playwright-core install chromium`";

/** Looks for a browser; never throws. */
export function findBrowser(search: BrowserSearchEnv): BrowserSearch {
  const pinned = search.env.PO_AGENT_BROWSER?.trim();
  if (pinned) {
    return search.exists(pinned)
      ? { found: true, path: pinned, source: "PO_AGENT_BROWSER" }
      : {
          found: false,
          tried: [pinned],
          message: `PO_AGENT_BROWSER=${pinned} does not exist; point it at a Chromium or Chrome executable`,
        };
  }
  const tried = systemCandidates(search.platform, search.env, search.homedir);
  const system = tried.find((p) => search.exists(p));
  if (system) return { found: true, path: system, source: "system" };
  let own: string | undefined;
  try {
    own = search.playwrightExecutable();
  } catch {
    own = undefined;
  }
  if (own) {
    tried.push(own);
    if (search.exists(own)) return { found: true, path: own, source: "playwright" };
  }
  return { found: false, tried, message: `no Chromium or Chrome found (looked in ${tried.length} places); ${HOW_TO}` };
}

/** The real machine's search environment. */
export function machineSearchEnv(playwrightExecutable: () => string | undefined): BrowserSearchEnv {
  return {
    env: process.env,
    platform: process.platform,
    exists: existsSync,
    homedir: homedir(),
    playwrightExecutable,
  };
}

/** What the suite does with the result: run, skip with one line, or (under CI=true) fail. */
export function browserSuitePlan(
  result: BrowserSearch,
  env: BrowserSearchEnv["env"],
): { run: true; path: string } | { run: false; fail: boolean; line: string } {
  if (result.found) return { run: true, path: result.path };
  const ci = env.CI === "true" || env.CI === "1";
  return {
    run: false,
    fail: ci,
    line: ci
      ? `browser suite: ${result.message} (CI=true: a missing browser fails)`
      : `browser suite skipped: ${result.message}`,
  };
}

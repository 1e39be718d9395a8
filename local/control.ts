/**
 * The local control plane's door: who may talk to the console, the approval API and the local
 * Step Functions API of one `po-agent` process.
 *
 * - Every request must name this machine's loopback in `Host` (a DNS-rebinding page names its own host).
 * - Every request except the signed approval links needs this start's key: the `?key=` of the
 *   printed console URL, then an HttpOnly SameSite=Strict cookie, or the `x-po-agent-key` header
 *   the CLI reads from the owner file (0600) under the data dir.
 * - Every state-changing request must come from this origin when a browser says where it comes
 *   from (`Origin`, `Sec-Fetch-Site`), and bodies must have a type a cross-site form cannot send
 *   unnoticed (JSON, or a same-origin url-encoded form).
 * - Every answer forbids framing.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";

export const KEY_HEADER = "x-po-agent-key";
export const KEY_PARAM = "key";

/** The cookie name carries the port: two local stacks on one machine keep separate cookies. */
export const cookieName = (port: number) => `po-agent-${port}`;

/** Headers sent with every answer of the local servers. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-frame-options": "DENY",
  "content-security-policy": "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** The host names a loopback server answers to (DNS rebinding sends the attacker's name). */
export function loopbackHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

export type Verdict =
  | { ok: true; authenticated: boolean }
  | { ok: false; status: number; message: string; loginPage?: boolean };

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function sameKey(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface DoorOptions {
  port: number;
  key: string;
  /** Paths that carry their own credential (signed approval links): no key needed, origin still checked. */
  selfAuthenticating(pathname: string): boolean;
}

/** Decides whether a request may go on. Pure: headers in, verdict out. */
export function checkRequest(req: IncomingMessage, opts: DoorOptions): Verdict {
  const hosts = loopbackHosts(opts.port);
  const host = (req.headers.host ?? "").toLowerCase();
  if (!hosts.has(host)) {
    return { ok: false, status: 421, message: `refused: Host "${host.slice(0, 100)}" is not this local server` };
  }
  const method = req.method ?? "GET";
  if (!SAFE_METHODS.has(method)) {
    const origin = req.headers.origin;
    if (origin !== undefined && !hosts.has(origin.replace(/^http:\/\//, "").toLowerCase())) {
      return {
        ok: false,
        status: 403,
        message: `refused: a state-changing request from origin ${origin.slice(0, 100)}`,
      };
    }
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      return { ok: false, status: 403, message: `refused: a state-changing request from a ${site} page` };
    }
  }
  const url = new URL(req.url ?? "/", "http://local");
  if (opts.selfAuthenticating(url.pathname)) return { ok: true, authenticated: false };
  const header = req.headers[KEY_HEADER];
  const presented =
    (typeof header === "string" ? header : undefined) ??
    cookieValue(req, cookieName(opts.port)) ??
    (SAFE_METHODS.has(method) ? (url.searchParams.get(KEY_PARAM) ?? undefined) : undefined);
  if (!sameKey(presented, opts.key)) {
    return {
      ok: false,
      status: 401,
      message: "this local console needs the key of the running process: open the console URL it printed",
      loginPage: SAFE_METHODS.has(method),
    };
  }
  return { ok: true, authenticated: true };
}

/**
 * Handles `GET /?key=…`: sets the cookie and redirects to the same page without the key (so it
 * leaves the address bar and the history). Returns true when it answered.
 */
export function exchangeKeyForCookie(req: IncomingMessage, res: ServerResponse, opts: DoorOptions): boolean {
  const url = new URL(req.url ?? "/", "http://local");
  const key = url.searchParams.get(KEY_PARAM);
  if (key === null || req.method !== "GET" || !sameKey(key, opts.key)) return false;
  url.searchParams.delete(KEY_PARAM);
  res.writeHead(303, {
    "set-cookie": `${cookieName(opts.port)}=${opts.key}; HttpOnly; SameSite=Strict; Path=/`,
    location: `${url.pathname}${url.search}`,
    "cache-control": "no-store",
  });
  res.end();
  return true;
}

/** Answers a refused request: a short page for browsers, one JSON line for programs. */
export function refuse(res: ServerResponse, verdict: Extract<Verdict, { ok: false }>): void {
  if (verdict.loginPage) {
    res
      .writeHead(verdict.status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
      .end(
        `<!doctype html><meta charset="utf-8"><title>po-agent console</title><h1>po-agent local console</h1><p>${verdict.message} (<code>npm start</code> prints it as <code>console: http://127.0.0.1:…/?key=…</code>).</p>`,
      );
    return;
  }
  res.writeHead(verdict.status, { "content-type": "application/json" }).end(JSON.stringify({ error: verdict.message }));
}

/**
 * What a browser may do on an emulator. The DynamoDB and S3 emulators answer only the SDK (`none`):
 * they grant any origin CORS and take any signature, so a browser request there — a cross-site page
 * writing the ledger or a `processed/` object — is refused outright. The SES inbox is a page the
 * developer opens (`read`): GET from the browser, nothing state-changing from another origin.
 */
export type BrowserAccess = "none" | "read";

/** Whether a request came from a browser: browsers send Origin on CORS and POSTs, and Sec-Fetch-* on every fetch. */
function fromBrowser(req: IncomingMessage): boolean {
  return (
    req.headers.origin !== undefined ||
    req.headers["sec-fetch-site"] !== undefined ||
    req.headers["sec-fetch-mode"] !== undefined ||
    req.method === "OPTIONS"
  );
}

/**
 * Puts a Host check in front of an emulator's own request handling (S3, DynamoDB, SES inbox):
 * they listen on loopback, but a rebinding page could otherwise read the inbox's signed links;
 * and, per `browsers`, refuses what a web page could send there.
 */
export function guardHost(server: Server, browsers: BrowserAccess): void {
  const listeners = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners("request");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const address = server.address();
    const port = address !== null && typeof address === "object" ? address.port : 0;
    const hosts = loopbackHosts(port);
    if (!hosts.has((req.headers.host ?? "").toLowerCase())) {
      res.writeHead(421, { "content-type": "text/plain" }).end("refused: Host is not this local server");
      return;
    }
    const readOnly = req.method === "GET" || req.method === "HEAD";
    const sameOrigin = [...hosts].some((h) => req.headers.origin === `http://${h}`);
    const refused = browsers === "none" ? fromBrowser(req) : fromBrowser(req) && !readOnly && !sameOrigin;
    if (refused) {
      res
        .writeHead(403, { "content-type": "text/plain" })
        .end("refused: this emulator answers the AWS SDK, not web pages");
      return;
    }
    for (const l of listeners) l.call(server, req, res);
  });
}

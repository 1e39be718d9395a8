import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ApprovalDeps, handleApprovalRequest } from "../shared/agent/approvals.js";

/** The path of a signed approval link (the token is base64url claims + "." + signature). */
export const APPROVAL_LINK_PATH = /^\/approvals\/[A-Za-z0-9_.-]+$/;

export interface ApprovalRoutesOptions {
  /**
   * The decision wiring for one link. `origin` is where the request arrived (the Function URL in
   * AWS, the loopback server locally): the links a confirm page renders point back there.
   */
  deps(token: string, origin: string): Promise<ApprovalDeps>;
  /** Told of every answer (the Lambda logs it). */
  onAnswer?(answer: { status: number; method: string }): void;
}

/**
 * The routes behind the emailed approval links, written once: the approval-callback Lambda mounts
 * them through hono's Lambda adapter (Function URL events) and `npm start` through the Node adapter,
 * behind the local control plane's door. GET /approvals/<token> shows a confirmation page, POST
 * decides (a link scanner's GET never approves); any other path is a 404.
 */
export function approvalRoutes(opts: ApprovalRoutesOptions): Hono {
  const app = new Hono();
  // Every method reaches handleApprovalRequest: GET confirms, POST decides, the rest get a 405 page.
  app.all("/approvals/:token{[A-Za-z0-9_.-]+}", async (c) => {
    const token = c.req.param("token");
    const method = c.req.method;
    const form = method === "POST" ? Object.fromEntries(new URLSearchParams(await c.req.text())) : undefined;
    const deps = await opts.deps(token, new URL(c.req.url).origin);
    const result = await handleApprovalRequest(deps, { method, token, ...(form ? { form } : {}) });
    opts.onAnswer?.({ status: result.status, method });
    return c.html(result.html, result.status as ContentfulStatusCode);
  });
  app.notFound((c) => c.text("not found", 404));
  return app;
}

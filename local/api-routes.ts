import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod/v3";
import { decodeBase64 } from "../lambdas/shared/mcp/base64.js";
import { type ControlBackend, ControlRefusedError, IntakeError } from "./backend.js";

/** Largest request body the control API reads (a document is at most 10 MiB, base64 adds a third). */
const MAX_BODY_BYTES = 20 * 1024 * 1024;

const SubmitBody = z.object({
  customer: z.string().min(1),
  fileName: z
    .string()
    .min(1)
    .max(200)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    .refine((name) => !/[\u0000-\u001f\u007f]/.test(name), "a file name without control characters"),
  contentBase64: z.string(),
});
const DecideBody = z.object({
  decision: z.enum(["approved", "rejected"]),
  by: z.string().min(1).max(200).optional(),
  comment: z.string().max(1000).optional(),
  /** Where the console form returns to (a path on this server). */
  back: z.string().max(500).optional(),
});
const RetryBody = z.object({ operator: z.string().optional() }).passthrough();

const mediaType = (c: Context) => (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return JSON.parse(await c.req.text());
  } catch {
    return undefined;
  }
}

/**
 * The local control API that the CLI's HttpBackend (and the console's forms) talk to, over the
 * owner's backend. It sits behind the control plane's door (control.ts: Host, key, Origin), which
 * the server applies before any route.
 */
export function controlRoutes(backend: ControlBackend): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof ControlRefusedError) return c.json({ error: err.message }, 400);
    if (err instanceof IntakeError) return c.json({ error: err.message }, 503);
    throw err;
  });
  app.use(
    "/api/*",
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => c.json({ error: "request body over 20 MB" }, 413) }),
  );

  app.get("/api/runs", async (c) => c.json(await backend.listRuns()));
  app.get("/api/runs/:runId", async (c) => {
    const state = await backend.runState(c.req.param("runId"));
    return state ? c.json(state) : c.json({ error: "no such run" }, 404);
  });
  app.get("/api/runs/:runId/audit", async (c) => c.json(await backend.getAudit(c.req.param("runId"))));
  app.get("/api/runs/:runId/bundle", async (c) => {
    const bundle = await backend.runBundle(c.req.param("runId"));
    return bundle ? c.json(bundle) : c.json({ error: "no such run" }, 404);
  });

  app.post("/api/submit", async (c) => {
    if (mediaType(c) !== "application/json") return c.json({ error: "send the document as application/json" }, 415);
    const parsed = SubmitBody.safeParse(await jsonBody(c));
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      return c.json({ error: `expected { customer, fileName, contentBase64 }: ${problems}` }, 400);
    }
    const body = decodeBase64(parsed.data.contentBase64);
    if (!body) return c.json({ error: "contentBase64 is not valid base64" }, 400);
    if (!backend.customers().includes(parsed.data.customer)) {
      return c.json({ error: `unknown customer "${parsed.data.customer}"` }, 400);
    }
    return c.json({ runId: await backend.submit(parsed.data.customer, parsed.data.fileName, body) });
  });

  app.post("/api/approvals/:approvalId/decide", async (c) => {
    const form = mediaType(c) === "application/x-www-form-urlencoded";
    if (!form && mediaType(c) !== "application/json") {
      return c.json({ error: "send the decision as JSON or a form" }, 415);
    }
    const raw = form ? Object.fromEntries(new URLSearchParams(await c.req.text())) : await jsonBody(c);
    const parsed = DecideBody.safeParse(raw);
    if (!parsed.success) return c.json({ error: "expected { decision: approved|rejected, comment? }" }, 400);
    const { decision, comment } = parsed.data;
    if (decision === "rejected" && !comment?.trim()) return c.json({ error: "a rejection needs a reason" }, 400);
    // The console form is the local operator holding this start's key; the CLI names its user. The
    // caller never picks an approver: decide() records this as an operator override (off unless configured).
    const by = form
      ? (process.env.USER ?? "operator")
      : /^cli:[\w.-]{1,64}$/.test(parsed.data.by ?? "")
        ? (parsed.data.by ?? "").slice(4)
        : "operator";
    const result = await backend.decide(c.req.param("approvalId"), {
      decision,
      by,
      channel: form ? "console" : "cli",
      ...(comment?.trim() ? { comment: comment.trim() } : {}),
    });
    if (form) {
      const back = parsed.data.back;
      return c.redirect(back?.startsWith("/") && !back.startsWith("//") ? back : "/approvals", 303);
    }
    return c.json(result);
  });

  app.post("/api/runs/:runId/retry", async (c) => {
    const parsed = RetryBody.safeParse(await jsonBody(c));
    const operator = parsed.success && parsed.data.operator ? parsed.data.operator.slice(0, 64) : "console";
    return c.json(await backend.retry(c.req.param("runId"), operator));
  });

  app.notFound((c) => c.json({ error: "not found" }, 404));
  return app;
}

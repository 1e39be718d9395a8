import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { Hono } from "hono";
// hono/aws-lambda is marked for a move to @hono/aws-lambda in hono v5; it is the adapter of the hono
// version the MCP SDK already brings (one copy of hono in the tree and the bundle).
import { handle, type LambdaEvent } from "hono/aws-lambda";
import { approvalDeps } from "../shared/aws/approval-deps.js";
import { instrumentedUrl } from "../shared/aws/handler.js";
import { secretsClient } from "../shared/aws/runtime.js";
import { logger } from "../shared/observability.js";
import { approvalRoutes } from "./routes.js";

// Every request checks a signed link, with the key from Secrets Manager: its client is built at init. Step
// Functions is called by a decision (a POST) only, not by the confirmation page a GET shows: on first use. This
// function never mails.
secretsClient.now(SecretsManagerClient);

/**
 * The Function URL behind the email links (routes.ts, the same routes `npm start` serves). The base
 * URL of the rendered links is the Function URL itself, read from the request.
 */
const app = approvalRoutes({
  deps: async (_token, origin) => approvalDeps(origin),
  onAnswer: ({ status, method }) => logger.info("approval link used", { status, method }),
});

// A thrown error leaves hono for the wrapper, which logs it and records it on the handler's subsegment; an
// HTTPException keeps the answer it carries, as hono's default handler gives it.
app.onError((err, c) => {
  if ("getResponse" in err && typeof err.getResponse === "function") {
    const res = (err.getResponse as () => Response)();
    return c.newResponse(res.body, res);
  }
  throw err;
});

const lambdaHandler = handle(app);

/** What hono's default error handler answered a thrown error (a plain 500), through the same adapter. */
const serverError = handle(new Hono().all("*", (c) => c.text("Internal Server Error", 500)));

/**
 * A Function URL event is API Gateway's v2 payload (the adapter picks its processor by `rawPath` and
 * `requestContext.http`); hono's own event type differs from @types/aws-lambda's only in optional
 * fields (`authorizer`, `body: null`), hence the casts.
 */
export const handler = instrumentedUrl(
  "approval-callback",
  async (event: LambdaFunctionURLEvent) =>
    (await lambdaHandler(event as unknown as LambdaEvent)) as LambdaFunctionURLResult,
  {
    answerError: async (_err, event) => (await serverError(event as unknown as LambdaEvent)) as LambdaFunctionURLResult,
  },
);

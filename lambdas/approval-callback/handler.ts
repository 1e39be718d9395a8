import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
// hono/aws-lambda is marked for a move to @hono/aws-lambda in hono v5; it is the adapter of the hono
// version the MCP SDK already brings (one copy of hono in the tree and the bundle).
import { handle, type LambdaEvent } from "hono/aws-lambda";
import { approvalDeps } from "../shared/aws/approval-deps.js";
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

const lambdaHandler = handle(app);

/**
 * A Function URL event is API Gateway's v2 payload (the adapter picks its processor by `rawPath` and
 * `requestContext.http`); hono's own event type differs from @types/aws-lambda's only in optional
 * fields (`authorizer`, `body: null`), hence the cast.
 */
export const handler = async (event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> =>
  (await lambdaHandler(event as unknown as LambdaEvent)) as LambdaFunctionURLResult;

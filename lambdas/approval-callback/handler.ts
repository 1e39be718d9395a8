import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { handleApprovalRequest } from "../shared/agent/approvals.js";
import { approvalDeps } from "../shared/aws/approval-deps.js";
import { logger } from "../shared/observability.js";

/**
 * The Function URL behind the email links: GET /approvals/<token> shows a confirmation page,
 * POST decides. The base URL is the Function URL itself, read from the request.
 */
export const handler = async (event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> => {
  const match = /^\/approvals\/([A-Za-z0-9_.-]+)$/.exec(event.rawPath);
  if (!match?.[1]) return { statusCode: 404, headers: { "content-type": "text/plain" }, body: "not found" };
  const body = event.body
    ? event.isBase64Encoded
      ? Buffer.from(event.body, "base64").toString("utf8")
      : event.body
    : "";
  const form = Object.fromEntries(new URLSearchParams(body));
  const deps = await approvalDeps(`https://${event.requestContext.domainName}`);
  const result = await handleApprovalRequest(deps, { method: event.requestContext.http.method, token: match[1], form });
  logger.info("approval link used", { status: result.status, method: event.requestContext.http.method });
  return { statusCode: result.status, headers: { "content-type": "text/html; charset=utf-8" }, body: result.html };
};

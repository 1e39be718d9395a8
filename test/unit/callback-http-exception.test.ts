import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";

type Structured = Exclude<LambdaFunctionURLResult, string>;

import { HTTPException } from "hono/http-exception";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";

/**
 * The approval callback's error handler: an HTTPException raised under the routes (hono's own way of
 * answering a request it refuses) keeps the status, body and headers it carries, as hono's default
 * handler gives them, and only any other error becomes the wrapper's 500 (url-handlers-traced.test.ts).
 * The decision wiring is replaced so that it raises what a test asks for; nothing else is.
 */
let raise: Error | undefined;
const wiring = vi.fn(async () => {
  if (raise) throw raise;
  throw new Error("the test always sets what the wiring raises");
});
vi.mock("../../lambdas/shared/aws/approval-deps.js", () => ({ approvalDeps: wiring }));

const taskRoot = mkdtempSync(join(tmpdir(), "po-agent-callback-"));
const savedEnv = { ...process.env };
let handler: (event: LambdaFunctionURLEvent, context?: Context) => Promise<Structured>;

beforeAll(async () => {
  writeFileSync(join(taskRoot, "customer.json"), JSON.stringify(loadCustomerFile("customers/acme.yaml")));
  Object.assign(process.env, {
    LAMBDA_TASK_ROOT: taskRoot,
    CUSTOMER: "acme",
    LEDGER_TABLE: "ledger",
    DOCUMENT_BUCKET: "documents",
    APPROVAL_SIGNING_SECRET_ARN: "arn:aws:secretsmanager:eu-west-1:111111111111:secret:signing-AbCdEf",
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    POWERTOOLS_TRACE_ENABLED: "false",
    AWS_LAMBDA_FUNCTION_NAME: "po-agent-callback",
  });
  handler = (await import("../../lambdas/approval-callback/handler.js")).handler as typeof handler;
});

afterAll(() => {
  rmSync(taskRoot, { recursive: true, force: true });
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
});

const event = (method: string, path: string): LambdaFunctionURLEvent =>
  ({
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { host: "abc.lambda-url.eu-west-1.on.aws" },
    requestContext: {
      accountId: "111111111111",
      apiId: "abc",
      domainName: "abc.lambda-url.eu-west-1.on.aws",
      domainPrefix: "abc",
      requestId: "url-1",
      routeKey: "$default",
      stage: "$default",
      time: "02/Dec/2026:01:00:00 +0000",
      timeEpoch: 1_796_000_000_000,
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
    },
    body: method === "POST" ? "decision=approve" : "",
    isBase64Encoded: false,
  }) as unknown as LambdaFunctionURLEvent;

const context = { functionName: "po-agent-callback", awsRequestId: "req-1" } as unknown as Context;

describe("approval callback: an HTTPException keeps its answer", () => {
  it("answers the exception's status, body and headers, on GET and POST", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    for (const method of ["GET", "POST"]) {
      // One exception per request: the body it carries can be read once.
      const carried = new Response("slow down, try the link again in a minute", {
        status: 429,
        headers: { "retry-after": "60", "content-type": "text/plain" },
      });
      raise = new HTTPException(429, { res: carried });
      const answer = await handler(event(method, "/approvals/e30.c2ln"), context);
      expect(answer.statusCode).toBe(429);
      expect(answer.body).toBe("slow down, try the link again in a minute");
      expect(answer.headers?.["retry-after"]).toBe("60");
    }
    // Reached through the routes both times: the wiring raised it, not a 404 or the signature check.
    expect(wiring).toHaveBeenCalledTimes(2);
    vi.restoreAllMocks();
  });

  it("answers an exception without a response by its status and message", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    raise = new HTTPException(413, { message: "the request body is too large" });
    const answer = await handler(event("POST", "/approvals/e30.c2ln"), context);
    expect(answer).toMatchObject({ statusCode: 413, body: "the request body is too large" });
    vi.restoreAllMocks();
  });

  it("still answers any other error with the plain 500, not its message", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    raise = new Error("ledger unreachable at 10.0.0.1");
    const answer = await handler(event("GET", "/approvals/e30.c2ln"), context);
    expect(answer).toMatchObject({ statusCode: 500, body: "Internal Server Error" });
    expect(answer.body).not.toContain("10.0.0.1");
    vi.restoreAllMocks();
  });
});

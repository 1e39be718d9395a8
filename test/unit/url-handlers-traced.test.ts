import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { Hono } from "hono";
import { handle, type LambdaEvent } from "hono/aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { SubsegmentDocument } from "../../lambdas/shared/aws/xray.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { FakeXRayDaemon } from "../../scripts/deployed/traces.js";
import { FakeJsonAws, type JsonReply } from "../support/fake-json-aws.js";

/**
 * The two Function URL handlers (approval links, MCP endpoint) as Lambda runs them: each invocation's log
 * lines carry the Lambda context, a sampled one sends its `## <name>` subsegment to the daemon (a real UDP
 * socket here) as the parent of its AWS calls (a local HTTP endpoint standing in for Secrets Manager and
 * DynamoDB), a thrown error is logged and traced as a fault, stored metrics are flushed, and the HTTP
 * answers are the ones the handlers gave before they were wrapped.
 */

const ROOT = "1-6756a1b2-0123456789abcdef01234567";
const PARENT = "53995c3f42cd8ad8";
const header = (sampled: "0" | "1") => `Root=${ROOT};Parent=${PARENT};Sampled=${sampled}`;
const MARKER_ROOT = "1-6756a1b2-fedcba9876543210fedcba98";
const SIGNING_SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:signing-AbCdEf";
const TOKEN_SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:mcp-token-AbCdEf";

/** The next Secrets Manager answers; an empty list answers with `secret`. */
let secretReplies: JsonReply[] = [];
let secret = "k".repeat(32);
/** Secrets Manager and DynamoDB on one local endpoint (AWS_ENDPOINT_URL): each request's target and trace header. */
const aws = new FakeJsonAws((target) =>
  target.startsWith("secretsmanager.")
    ? (secretReplies.shift() ?? { status: 200, body: { Name: "s", SecretString: secret } })
    : { status: 200, body: { Items: [], Count: 0, ScannedCount: 0 } },
);

/** A real UDP socket standing in for the X-Ray daemon (check:deployed's, scripts/deployed/traces.ts). */
const daemon = new FakeXRayDaemon<SubsegmentDocument>();
const taskRoot = mkdtempSync(join(tmpdir(), "po-agent-url-handlers-"));
const savedEnv = { ...process.env };

type UrlHandler = (event: LambdaFunctionURLEvent, context?: Context) => Promise<LambdaFunctionURLResult>;
let callback: UrlHandler;
let mcp: UrlHandler;
let metrics: typeof import("../../lambdas/shared/observability.js").metrics;
let instrumentedUrl: typeof import("../../lambdas/shared/aws/handler.js").instrumentedUrl;

beforeAll(async () => {
  await daemon.start();
  await aws.start();
  // The bundle's customer.json is the config synthesis validated (defaults applied).
  writeFileSync(join(taskRoot, "customer.json"), JSON.stringify(loadCustomerFile("customers/acme.yaml")));
  Object.assign(process.env, {
    LAMBDA_TASK_ROOT: taskRoot,
    CUSTOMER: "acme",
    LEDGER_TABLE: "ledger",
    DOCUMENT_BUCKET: "documents",
    APPROVAL_SIGNING_SECRET_ARN: SIGNING_SECRET,
    MCP_TOKEN_SECRET_ARN: TOKEN_SECRET,
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    // One attempt: a failing Secrets Manager answers at once (the retries are the SDK's, not under test).
    AWS_MAX_ATTEMPTS: "1",
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    AWS_LAMBDA_FUNCTION_NAME: "po-agent-url",
  });
  delete process.env.POWERTOOLS_DEV; // Powertools writes to process.stdout / stderr, as in Lambda
  delete process.env.POWERTOOLS_TRACE_ENABLED;
  // Imported once the environment is set: both read it at module scope, as at a cold start.
  callback = (await import("../../lambdas/approval-callback/handler.js")).handler;
  mcp = (await import("../../lambdas/mcp-server/handler.js")).handler;
  metrics = (await import("../../lambdas/shared/observability.js")).metrics;
  instrumentedUrl = (await import("../../lambdas/shared/aws/handler.js")).instrumentedUrl;
});

afterAll(async () => {
  vi.restoreAllMocks();
  await daemon.close();
  await aws.close();
  rmSync(taskRoot, { recursive: true, force: true });
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
});

/** Every line written to stdout and stderr during the test: log lines and EMF documents, parsed. */
let lines: Record<string, unknown>[] = [];
beforeEach(() => {
  lines = [];
  daemon.clear();
  aws.requests.length = 0;
  secretReplies = [];
  vi.restoreAllMocks();
  const capture = (chunk: unknown) => {
    for (const l of String(chunk).split("\n").filter(Boolean)) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        lines.push({ raw: l });
      }
    }
    return true;
  };
  vi.spyOn(process.stdout, "write").mockImplementation(capture);
  vi.spyOn(process.stderr, "write").mockImplementation(capture);
});

let invocation = 0;
function lambdaContext(): Context {
  invocation += 1;
  return {
    functionName: "po-agent-url",
    awsRequestId: `req-${invocation}`,
    getRemainingTimeInMillis: () => 30_000,
  } as unknown as Context;
}

/** A Function URL event (payload format 2.0), as a browser following a link or an MCP client sends it. */
function urlEvent(method: string, path: string, body = "", headers: Record<string, string> = {}) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { host: "abc.lambda-url.eu-west-1.on.aws", ...headers },
    requestContext: {
      accountId: "111111111111",
      apiId: "abc",
      domainName: "abc.lambda-url.eu-west-1.on.aws",
      domainPrefix: "abc",
      requestId: `url-${invocation}`,
      routeKey: "$default",
      stage: "$default",
      time: "01/Dec/2026:20:00:00 +0000",
      timeEpoch: 1_796_000_000_000,
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
    },
    body,
    isBase64Encoded: false,
  } as unknown as LambdaFunctionURLEvent;
}

const fieldOf = (h: string, key: string) =>
  h
    .split(";")
    .find((f) => f.startsWith(`${key}=`))
    ?.slice(key.length + 1);

/** The one handler subsegment under the function's segment, and the aws subsegments, each checked against the call it timed. */
function traceOf(docs: SubsegmentDocument[], name: string) {
  const handlers = docs.filter((d) => d.name.startsWith("## "));
  expect(handlers.map((d) => [d.name, d.parent_id, d.trace_id])).toEqual([[name, PARENT, ROOT]]);
  const handler = handlers[0] as SubsegmentDocument;
  const calls = docs.filter((d) => d.namespace === "aws");
  for (const c of calls) expect(c.parent_id).toBe(handler.id);
  // Each request the endpoint saw names its own subsegment as Parent.
  expect(aws.requests.map((r) => fieldOf(r.traceHeader, "Parent")).sort()).toEqual(calls.map((c) => c.id).sort());
  return { handler, calls };
}

describe("approval-callback", () => {
  it("answers a Secrets Manager failure with hono's 500, logs it with the request id, and traces it as a fault", async () => {
    // Prepare: the signing key cannot be read (Secrets Manager down); hono's own answer to a thrown error.
    process.env._X_AMZN_TRACE_ID = header("1");
    secretReplies = [{ status: 500, body: { __type: "InternalServiceError", message: "injected" } }];
    metrics.addMetric("ProbeStored", "Count", 1);
    const event = urlEvent("GET", "/approvals/e30.c2ln");
    const honoDefault = handle(
      new Hono().all("*", () => {
        throw new Error("boom");
      }),
    );
    const before = vi.spyOn(console, "error").mockImplementation(() => {});
    const expected = await honoDefault(event as unknown as LambdaEvent);
    before.mockRestore();
    const context = lambdaContext();

    // Act
    const answer = await callback(event, context);
    const docs = await daemon.waitFor(2);

    // Assess: the answer is unchanged ...
    expect(answer).toEqual(expected);
    expect(answer).toMatchObject({ statusCode: 500, body: "Internal Server Error" });
    // ... the error is one log line with the Lambda context and the error's name ...
    const errors = lines.filter((l) => l.level === "ERROR");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      message: "approval-callback failed",
      function_request_id: context.awsRequestId,
      function_name: "po-agent-url",
      customer: "acme",
      xray_trace_id: ROOT,
      error: expect.objectContaining({ name: "InternalServiceError" }),
    });
    // ... the handler's subsegment is a fault carrying the exception, parent of the failed call ...
    const { handler, calls } = traceOf(docs, "## approval-callback");
    expect(handler.fault).toBe(true);
    expect(handler.annotations).toEqual({ customer: "acme" });
    expect(handler.cause?.exceptions.map((e) => e.type)).toEqual(["InternalServiceError"]);
    expect(calls.map((c) => [c.name, c.aws?.operation, c.fault])).toEqual([["SecretsManager", "GetSecretValue", true]]);
    expect(aws.requests.map((r) => r.target)).toEqual(["secretsmanager.GetSecretValue"]);
    // ... and the stored metrics are flushed at the end of the invocation.
    expect(lines.filter((l) => "ProbeStored" in l)).toHaveLength(1);
  });

  it("answers a link that is not valid with the 403 page, flagged as a client error on its subsegment", async () => {
    // Prepare: the key reads now; the token's signature is not the key's.
    process.env._X_AMZN_TRACE_ID = header("1");
    const context = lambdaContext();

    // Act
    const answer = await callback(urlEvent("GET", "/approvals/e30.c2ln"), context);
    const docs = await daemon.waitFor(2);

    // Assess
    expect(answer).toMatchObject({ statusCode: 403 });
    expect(String((answer as { body?: string }).body)).toContain("Link not valid");
    const { handler, calls } = traceOf(docs, "## approval-callback");
    expect([handler.error, handler.fault, handler.http?.response?.status]).toEqual([true, undefined, 403]);
    expect(calls.map((c) => [c.name, c.aws?.operation])).toEqual([["SecretsManager", "GetSecretValue"]]);
    expect(lines.filter((l) => l.message === "approval link used")).toEqual([
      expect.objectContaining({ status: 403, function_request_id: context.awsRequestId, customer: "acme" }),
    ]);
    expect(lines.filter((l) => l.level === "ERROR")).toEqual([]);
  });
});

describe("mcp-server", () => {
  const rpc = (id: number, method: string, params: Record<string, unknown>) =>
    JSON.stringify({ jsonrpc: "2.0", id, method, params });
  const mcpHeaders = (token: string) => ({
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${token}`,
  });

  it("lets a bearer-token read failure through as the Lambda error it was, logged and traced as a fault", async () => {
    // Prepare: the role may not read the token's secret.
    process.env._X_AMZN_TRACE_ID = header("1");
    secretReplies = [{ status: 400, body: { __type: "AccessDeniedException", message: "not allowed" } }];
    const context = lambdaContext();
    const event = urlEvent("POST", "/mcp", rpc(1, "tools/list", {}), mcpHeaders("tok"));

    // Act
    const outcome = await mcp(event, context).then(
      () => "answered",
      (err: Error) => err.name,
    );
    const docs = await daemon.waitFor(2);

    // Assess
    expect(outcome).toBe("AccessDeniedException");
    expect(lines.filter((l) => l.level === "ERROR")).toEqual([
      expect.objectContaining({
        message: "mcp-server failed",
        function_request_id: context.awsRequestId,
        customer: "acme",
        error: expect.objectContaining({ name: "AccessDeniedException" }),
      }),
    ]);
    const { handler, calls } = traceOf(docs, "## mcp-server");
    expect(handler.fault).toBe(true);
    expect(handler.cause?.exceptions.map((e) => e.type)).toEqual(["AccessDeniedException"]);
    expect(calls.map((c) => [c.name, c.aws?.operation, c.error])).toEqual([["SecretsManager", "GetSecretValue", true]]);
  });

  it("answers a tool call, its ledger read and the token read parented by the handler's subsegment", async () => {
    // Prepare: the token now reads.
    process.env._X_AMZN_TRACE_ID = header("1");
    secret = "tok";
    const context = lambdaContext();
    const event = urlEvent(
      "POST",
      "/mcp",
      rpc(2, "tools/call", { name: "list_pending_approvals", arguments: {} }),
      mcpHeaders("tok"),
    );

    // Act
    const answer = await mcp(event, context);
    const expectedDocs = 1 + aws.requests.length;
    const docs = await daemon.waitFor(expectedDocs);

    // Assess
    expect(answer).toMatchObject({ statusCode: 200 });
    expect(JSON.parse(String((answer as { body?: string }).body))).toMatchObject({
      id: 2,
      result: { content: [{ type: "text", text: "[]" }] },
    });
    expect(aws.requests.map((r) => r.target)).toEqual(["secretsmanager.GetSecretValue", "DynamoDB_20120810.Query"]);
    const { handler, calls } = traceOf(docs, "## mcp-server");
    expect([handler.fault, handler.error, handler.http?.response?.status]).toEqual([undefined, undefined, 200]);
    expect(calls.map((c) => [c.name, c.aws?.operation])).toEqual([
      ["SecretsManager", "GetSecretValue"],
      ["DynamoDB", "Query"],
    ]);
    expect(lines.filter((l) => l.message === "mcp request")).toEqual([
      expect.objectContaining({ status: 200, function_request_id: context.awsRequestId, customer: "acme" }),
    ]);
  });

  it("answers a wrong token 401 and sends nothing when the invocation is not sampled", async () => {
    // Prepare
    process.env._X_AMZN_TRACE_ID = header("0");
    const context = lambdaContext();

    // Act
    const answer = await mcp(urlEvent("POST", "/mcp", rpc(3, "tools/list", {}), mcpHeaders("wrong")), context);
    // Absence cannot be waited for: a sampled marker invocation runs next and its subsegment, which leaves by
    // the same socket for the same loopback address, is waited for (as in xray.test.ts); anything the call
    // under test sent would be in by then.
    process.env._X_AMZN_TRACE_ID = `Root=${MARKER_ROOT};Parent=${PARENT};Sampled=1`;
    await instrumentedUrl("marker", async () => ({ statusCode: 200 }))(undefined);
    const arrived = await daemon.waitFor(1);

    // Assess
    expect(answer).toMatchObject({ statusCode: 401 });
    expect(arrived.map((d) => [d.name, d.trace_id])).toEqual([["## marker", MARKER_ROOT]]);
    expect(lines.filter((l) => l.message === "mcp request")).toEqual([
      expect.objectContaining({ status: 401, function_request_id: context.awsRequestId }),
    ]);
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { bundleHandler } from "../../lib/po-agent-function.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { BundleProcess } from "../../scripts/deployed/bundles.js";
import { localBundleEnv } from "./helpers.js";

/**
 * The most important malformed requests of test/local/mcp-malformed.test.ts again, on the MCP
 * endpoint's bundle as the customer stacks build it (bundleHandler), in its own process, on the
 * emulated DynamoDB and S3: the answer a client gets from the Function URL, and no upload.
 */

const customer = deployedCustomer(loadCustomerFile("customers/acme.yaml"));
const HOST = "abc.lambda-url.us-east-1.on.aws";

const event = (body: string) => ({
  version: "2.0",
  rawPath: "/mcp",
  rawQueryString: "",
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream", host: HOST },
  requestContext: {
    domainName: HOST,
    http: { method: "POST", path: "/mcp", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "hostile" },
    authorizer: { iam: { userArn: "arn:aws:iam::123456789012:user/hostile" } },
  },
  body,
  isBase64Encoded: false,
});

const submit = (id: unknown, text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "submit_document", arguments: { customer: "acme", fileName: "po.json", text } },
    ...extra,
  });

describe("the MCP endpoint bundle answers malformed JSON-RPC clearly", () => {
  let dir: string;
  let dataDir: string;
  let stack: LocalStack;
  let lambda: BundleProcess;
  const bucket = bucketFor(customer.name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "po-agent-mcp-server-"));
    bundleHandler("mcp-server", JSON.stringify(customer), dir);
    dataDir = mkdtempSync(join(tmpdir(), "po-agent-mcp-malformed-"));
    stack = await LocalStack.start({ dataDir, customers: [customer] });
    lambda = await BundleProcess.start(dir, localBundleEnv(customer.name, stack.services));
  }, 180_000);
  afterAll(async () => {
    await lambda?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  const uploads = async () =>
    (await stack.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "incoming/" }))).KeyCount ?? 0;
  const call = async (body: string) => {
    const out = await lambda.invoke(event(body));
    expect(out, JSON.stringify(out)).toMatchObject({ ok: true });
    const result = (out as { result: { statusCode: number; body: string } }).result;
    return { status: result.statusCode, answer: JSON.parse(result.body) as unknown };
  };

  it.each([
    [
      "params as a string",
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: "submit_document" }),
      400,
      {
        jsonrpc: "2.0",
        id: 1,
        error: { code: -32600, message: "invalid request: params must be an object, got a string" },
      },
    ],
    [
      "jsonrpc 1.0",
      submit(2, '{"po":"old"}', { jsonrpc: "1.0" }),
      400,
      { jsonrpc: "2.0", id: 2, error: { code: -32600, message: 'invalid request: jsonrpc must be "2.0", got "1.0"' } },
    ],
    [
      "an id of a wrong type",
      submit(true, '{"po":"true"}'),
      400,
      {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32600, message: "invalid request: id must be a string or an integer, got a boolean" },
      },
    ],
    [
      "a body that is not JSON",
      '{"jsonrpc":"2.0",',
      400,
      {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32700, message: expect.stringMatching(/^parse error: the body is not JSON/) },
      },
    ],
    [
      "a body that is not JSON, with a terminal escape: escaped in the message, not reflected raw",
      '{"jsonrpc":"2.0","id":\u001b[2J}',
      400,
      {
        jsonrpc: "2.0",
        id: null,
        error: {
          code: -32700,
          message: expect.stringMatching(/^parse error: the body is not JSON \P{Cc}*\\u001b\P{Cc}*$/u),
        },
      },
    ],
    [
      "tool arguments as a string",
      JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "submit_document", arguments: "x" },
      }),
      200,
      {
        jsonrpc: "2.0",
        id: 3,
        error: {
          code: -32602,
          message: "invalid params for tools/call: params.arguments must be an object, got a string",
        },
      },
    ],
    [
      "an unknown method",
      JSON.stringify({ jsonrpc: "2.0", id: 4, method: "admin/drop" }),
      200,
      { jsonrpc: "2.0", id: 4, error: { code: -32601, message: 'method not found: "admin/drop"' } },
    ],
  ])("%s", async (_, body, status, answer) => {
    const res = await call(body);
    expect(res).toEqual({ status, answer });
    expect(await uploads()).toBe(0);
  });

  it("a batch mixing a good submission and a bad one uploads the good one only, and answers both", async () => {
    const before = await uploads();
    const res = await call(`[${submit("good", '{"po":"good"}')},${submit("bad", '{"po":"bad"}', { jsonrpc: "1.0" })}]`);
    expect(res.status).toBe(200);
    const answers = res.answer as { id: string; result?: { isError?: boolean }; error?: { code: number } }[];
    expect(answers.map((a) => [a.id, a.result?.isError ?? false, a.error?.code])).toEqual([
      ["good", false, undefined],
      ["bad", false, -32600],
    ]);
    expect((await uploads()) - before).toBe(1);
  });
});

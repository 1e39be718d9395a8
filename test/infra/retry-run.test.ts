import type { LambdaFunctionURLEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { RetryRefusedError } from "../../lambdas/shared/agent/core.js";
import type { Ledger } from "../../lambdas/shared/ledger/ledger.js";
import { handleFunctionUrlEvent } from "../../lambdas/shared/mcp/http.js";
import type { PoAgentBackend } from "../../lambdas/shared/mcp/server.js";
import { customerConfig } from "./helpers.js";

/**
 * retry_run on the deployed MCP endpoint, through the same Function URL path the Lambda serves
 * (the full scenario on the synthesized bundles is in check:deployed, run by test/infra/bundling.test.ts).
 */
const PRINCIPAL = "arn:aws:iam::111122223333:user/ops-alice";

function event(body: unknown): LambdaFunctionURLEvent {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: "/mcp",
    rawQueryString: "",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    requestContext: {
      accountId: "111122223333",
      apiId: "x",
      domainName: "x.lambda-url.us-east-1.on.aws",
      domainPrefix: "x",
      http: { method: "POST", path: "/mcp", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
      requestId: "r",
      routeKey: "$default",
      stage: "$default",
      time: "",
      timeEpoch: 0,
    },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

const rpc = async (backend: PoAgentBackend, method: string, params: Record<string, unknown>) => {
  const res = await handleFunctionUrlEvent(event({ jsonrpc: "2.0", id: 1, method, params }), backend, {
    bearerToken: async () => undefined,
    principal: PRINCIPAL,
  });
  const body = String(res.body ?? "");
  const json = body.trim().startsWith("{")
    ? body
    : (body
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6) ?? "");
  return JSON.parse(json) as {
    result?: { tools?: { name: string }[]; isError?: boolean; content?: { text: string }[] };
  };
};

function backendWith(retry?: PoAgentBackend["retry"]): PoAgentBackend {
  const acme = customerConfig("acme");
  const ledger = {
    getRun: async (runId: string) => (runId === "acme-1" ? { runId, customer: "acme", status: "failed" } : undefined),
  } as unknown as Ledger;
  return {
    ledger,
    customers: [acme],
    decideDeps: () => ({ ledger, sfn: {} as never }),
    submit: async () => "x",
    ...(retry ? { retry } : {}),
  };
}

describe("retry_run on the MCP endpoint", () => {
  it("is offered only where the backend can start an execution", async () => {
    const without = await rpc(backendWith(), "tools/list", {});
    const withRetry = await rpc(
      backendWith(async () => ({ runId: "", executionId: "", turnsReused: 0, toolResultsReused: 0 })),
      "tools/list",
      {},
    );
    expect(without.result?.tools?.map((t) => t.name)).not.toContain("retry_run");
    expect(withRetry.result?.tools?.map((t) => t.name)).toContain("retry_run");
  });

  it("retries as the caller's IAM principal and answers with the new execution", async () => {
    const calls: [string, string][] = [];
    const backend = backendWith(async (runId, operator) => {
      calls.push([runId, operator]);
      return {
        runId,
        executionId: `arn:aws:states:us-east-1:1:execution:m:${runId}-retry-1`,
        turnsReused: 3,
        toolResultsReused: 4,
      };
    });
    const res = await rpc(backend, "tools/call", { name: "retry_run", arguments: { runId: "acme-1" } });
    expect(calls).toEqual([["acme-1", `mcp:${PRINCIPAL}`]]);
    expect(res.result?.isError).toBeFalsy();
    expect(JSON.parse(res.result?.content?.[0]?.text ?? "{}")).toMatchObject({
      runId: "acme-1",
      executionId: expect.stringMatching(/:acme-1-retry-1$/),
      turnsReused: 3,
      status: "running",
    });
  });

  it("answers a refused retry or an unknown run with one line, retrying nothing", async () => {
    const calls: string[] = [];
    const backend = backendWith(async (runId) => {
      calls.push(runId);
      throw new RetryRefusedError(`run ${runId} is saved; only a failed run can be retried`);
    });
    const refused = await rpc(backend, "tools/call", { name: "retry_run", arguments: { runId: "acme-1" } });
    const unknown = await rpc(backend, "tools/call", { name: "retry_run", arguments: { runId: "other-9" } });
    expect(refused.result?.isError).toBe(true);
    expect(refused.result?.content?.[0]?.text).toBe(
      "not retried: run acme-1 is saved; only a failed run can be retried",
    );
    expect(unknown.result?.content?.[0]?.text).toBe("no run other-9");
    expect(calls).toEqual(["acme-1"]);
  });
});

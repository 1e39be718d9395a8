import { rmSync } from "node:fs";
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { handle, type LambdaEvent } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { approvalRoutes } from "../../lambdas/approval-callback/routes.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { main } from "../../local/cli.js";
import { LocalStack, type RunEvent } from "../../local/stack.js";
import { CUSTOMERS_DIR, realCustomer, realCustomers, sampleBytes, tempDir } from "../support/stack.js";

const reference = () => ({ client: new ReferenceModelClient(), modelId: "reference", note: "offline reference model" });

/** A Function URL event as AWS delivers it (payload format 2.0). */
function functionUrlEvent(method: string, path: string, body = ""): LambdaFunctionURLEvent {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { "content-type": "application/x-www-form-urlencoded", host: "abc.lambda-url.us-east-1.on.aws" },
    requestContext: {
      accountId: "anonymous",
      apiId: "abc",
      domainName: "abc.lambda-url.us-east-1.on.aws",
      domainPrefix: "abc",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "192.0.2.1", userAgent: "mail client" },
      requestId: "r1",
      routeKey: "$default",
      stage: "$default",
      time: "01/Dec/2026:12:00:00 +0000",
      timeEpoch: 0,
    },
    body,
    isBase64Encoded: false,
  };
}

async function waitingApproval(stack: LocalStack, events: RunEvent[], file: string) {
  const runId = await stack.submit("acme", file, sampleBytes("acme", file));
  const run = await stack.waitSettled(runId, 60_000);
  expect(run?.status).toBe("awaiting_approval");
  const event = events.find(
    (e): e is Extract<RunEvent, { type: "awaiting_approval" }> => e.type === "awaiting_approval" && e.runId === runId,
  );
  if (!event) throw new Error(`no approval announced for ${runId}`);
  return { runId, event };
}

describe("the approval routes, written once: the Lambda's adapter and the local server", () => {
  let dataDir: string;
  let stack: LocalStack;
  const events: RunEvent[] = [];

  beforeAll(async () => {
    dataDir = tempDir("routes");
    stack = await LocalStack.start({
      dataDir,
      customers: realCustomers(),
      model: reference,
      onEvent: (e) => events.push(e),
    });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a Function URL event decides through the routes the local server mounts; the local server then sees it decided", async () => {
    // Prepare: a run waiting on a signed link; the Lambda's wiring is the stack's with the Function URL as base.
    const { runId, event } = await waitingApproval(stack, events, "03-controls-needs-approval.json");
    const acme = realCustomer("acme");
    const lambda = handle(approvalRoutes({ deps: async (_t, origin) => ({ ...stack.deps(acme), baseUrl: origin }) }));
    const invoke = async (e: LambdaFunctionURLEvent) =>
      (await lambda(e as unknown as LambdaEvent)) as Exclude<LambdaFunctionURLResult, string>;
    const path = new URL(event.approveUrl).pathname;

    // Act
    const page = await invoke(functionUrlEvent("GET", path));
    const put = await invoke(functionUrlEvent("PUT", path));
    const unknown = await invoke(functionUrlEvent("GET", "/approvals/not/a/token"));
    const decided = await invoke(functionUrlEvent("POST", path));
    const localAgain = await fetch(event.approveUrl, { method: "POST", body: new URLSearchParams({}) });
    const run = await stack.waitSettled(runId, 60_000);

    // Assess: GET confirms (its form posts back to the Function URL), only POST decided
    expect(page.statusCode).toBe(200);
    expect(page.headers?.["content-type"]).toMatch(/^text\/html/);
    expect(page.body).toContain(`action="https://abc.lambda-url.us-east-1.on.aws${path}"`);
    expect(put.statusCode).toBe(405);
    expect(unknown).toMatchObject({ statusCode: 404, body: "not found" });
    expect(decided.statusCode, decided.body).toBe(200);
    expect(decided.body).toContain("Approved");
    // Assess: the effect, counted in the ledger; the same link on the local server is spent
    const approval = await stack.ledger.getApproval(event.approvalId);
    expect(approval?.status).toBe("approved");
    expect(localAgain.status).toBe(409);
    expect(await localAgain.text()).toContain("Already decided");
    expect(run?.status).toBe("saved");
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.filter((a) => a.action === "approval.approved")).toHaveLength(1);
  });
});

describe("CLI commands written once: the same effects against the owner's API and in process", () => {
  let dataDir: string;
  beforeAll(() => {
    vi.stubEnv("ANTHROPIC_API_KEY", "");
    vi.stubEnv("USER", "ops-jo");
    dataDir = tempDir("backend");
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const cli = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, "--data-dir", dataDir, "--customers", CUSTOMERS_DIR], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    return { code, out, err };
  };

  it("approve, a refused retry and runs give the same answers and effects through either backend", async () => {
    // Prepare: two runs waiting for approval under an owner (`npm start` would be this process).
    const events: RunEvent[] = [];
    const owner = await LocalStack.start({
      dataDir,
      customers: realCustomers(),
      model: reference,
      command: "start",
      onEvent: (e) => events.push(e),
    });
    let viaOwner: { runId: string; event: Extract<RunEvent, { type: "awaiting_approval" }> };
    let inProcess: typeof viaOwner;
    let remote: Record<string, Awaited<ReturnType<typeof cli>>>;
    try {
      viaOwner = await waitingApproval(owner, events, "03-controls-needs-approval.json");
      inProcess = await waitingApproval(owner, events, "06-cxml-order-needs-approval.xml");
      // Act: through the owner's API (the CLI finds the owner file)
      remote = {
        approve: await cli("approve", viaOwner.event.approvalId, "--comment", "ok by phone"),
        again: await cli("approve", viaOwner.event.approvalId),
        retry: await cli("retry", viaOwner.runId),
        rejectNoReason: await cli("reject", inProcess.event.approvalId),
      };
      expect(remote.approve?.code, remote.approve?.err.join("\n")).toBe(0);
    } finally {
      await owner.close();
    }
    // Act: in process (no owner: the CLI opens the store itself and resumes the run)
    const local = {
      approve: await cli("approve", inProcess.event.approvalId, "--comment", "ok by phone"),
      again: await cli("approve", inProcess.event.approvalId),
      retry: await cli("retry", inProcess.runId),
      runs: await cli("runs", "--json"),
    };

    // Assess: the same lines (up to the ids) and exit codes
    const same = (r: Awaited<ReturnType<typeof cli>> | undefined, runId: string, approvalId: string) => ({
      code: r?.code,
      // The command's own lines (an in-process stack also prints its runs' progress).
      out: r?.out
        .filter((l) => l.startsWith(approvalId) || l.startsWith("run "))
        .map((l) =>
          l
            .replaceAll(runId, "<run>")
            .replaceAll(approvalId, "<approval>")
            .replace(/ACM-PO-\d+/g, "<po>"),
        ),
      err: r?.err.map((l) =>
        l
          .replaceAll(runId, "<run>")
          .replaceAll(approvalId, "<approval>")
          .replace(/ACM-PO-\d+/g, "<po>"),
      ),
    });
    for (const k of ["approve", "again", "retry"] as const) {
      expect(same(remote[k], viaOwner.runId, viaOwner.event.approvalId), k).toEqual(
        same(local[k], inProcess.runId, inProcess.event.approvalId),
      );
    }
    expect(remote.approve?.out).toEqual([
      `${viaOwner.event.approvalId} approved; run ${viaOwner.runId} continues`,
      expect.stringMatching(new RegExp(`^run ${viaOwner.runId}: saved`)),
    ]);
    expect(remote.again).toMatchObject({ code: 1, err: [expect.stringMatching(/^po-agent: .*already approved/)] });
    expect(remote.retry).toMatchObject({ code: 1, err: [expect.stringMatching(/only a failed run can be retried/)] });
    expect(remote.rejectNoReason).toMatchObject({ code: 1, err: ["po-agent: po-agent reject needs --reason TEXT"] });
    // Assess: the effects, in the ledger: both runs saved, each decision once, by the same operator
    const runs = JSON.parse(local.runs.out[0] ?? "[]") as { runId: string; outcome: string }[];
    expect(runs.filter((r) => r.runId === viaOwner.runId || r.runId === inProcess.runId)).toEqual([
      expect.objectContaining({ outcome: "saved" }),
      expect.objectContaining({ outcome: "saved" }),
    ]);
    const check = await LocalStack.start({ dataDir, customers: realCustomers(), model: reference });
    try {
      for (const { runId } of [viaOwner, inProcess]) {
        const decisions = (await check.ledger.getAudit(runId)).filter((a) => a.action === "approval.approved");
        expect(decisions.map((d) => [d.actor, (d.detail as { comment?: string }).comment])).toEqual([
          ["operator override by ops-jo (cli)", "ok by phone"],
        ]);
      }
    } finally {
      await check.close();
    }
  });
});

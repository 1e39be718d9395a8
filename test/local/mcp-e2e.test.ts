import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import type { ToolUseBlock } from "../../lambdas/shared/model/types.js";
import { LocalStack } from "../../local/stack.js";
import { customersDirWith, sampleBytes, tempDir } from "../support/stack.js";

/**
 * acme mounts the sample ERP over MCP (customers/acme.yaml): the offline model checks the vendor
 * and the budget there before saving, through the guard, the McpTool state and the ledger.
 */
describe("mounted MCP tools on the local stack", () => {
  const open: { stack: LocalStack; dataDir: string; dirs: string[] }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.stack.close();
      for (const d of [o.dataDir, ...o.dirs]) rmSync(d, { recursive: true, force: true });
    }
  });
  const start = async (customersDir = "customers", dirs: string[] = []) => {
    const dataDir = tempDir("mcp-e2e");
    const stack = await LocalStack.start({ dataDir, customers: loadCustomers(customersDir), retryIntervalMs: 0 });
    open.push({ stack, dataDir, dirs });
    return { stack, dataDir };
  };
  const calledTools = async (stack: LocalStack, runId: string) =>
    (await stack.ledger.getTurns(runId)).flatMap((t) =>
      (t.response.content as unknown as ToolUseBlock[]).filter((b) => b.type === "tool_use").map((b) => b.name),
    );

  it("looks the vendor and the budget up in the ERP before saving, each call checkpointed once", async () => {
    // Prepare
    const { stack, dataDir } = await start();
    // Act
    const runId = await stack.submit("acme", "01-packaging-saved.json", sampleBytes("acme", "01-packaging-saved.json"));
    const run = await stack.waitSettled(runId, 60_000);
    // Assess
    expect(run?.status).toBe("saved");
    const tools = await calledTools(stack, runId);
    expect(tools).toEqual(["extract", "validate", "transform", "erp.lookup_vendor", "erp.check_budget", "save"]);
    const calls = await stack.ledger.getToolCalls(runId);
    const erp = calls.filter((c) => c.name.startsWith("erp."));
    expect(erp.map((c) => [c.name, c.isError]).sort()).toEqual([
      ["erp.check_budget", false],
      ["erp.lookup_vendor", false],
    ]);
    expect(JSON.parse(erp.find((c) => c.name === "erp.check_budget")?.content ?? "{}")).toMatchObject({
      costCenter: "CC-100",
      fits: true,
    });
    expect(existsSync(join(dataDir, "erp", "erp.sqlite"))).toBe(true);
  });

  it("an ERP that cannot start: the problem is audited at run start, the lookups answer with the reason, the run goes on", async () => {
    // Prepare
    const customersDir = customersDirWith({
      acme: (doc) => doc.setIn(["mcpServers", 0, "command"], "po-agent-no-such-erp"),
    });
    const { stack } = await start(customersDir, [customersDir]);
    // Act
    const runId = await stack.submit("acme", "01-packaging-saved.json", sampleBytes("acme", "01-packaging-saved.json"));
    const run = await stack.waitSettled(runId, 60_000);
    // Assess
    expect(run?.status).toBe("saved");
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.find((a) => a.action === "mcp.problem")?.detail.problem).toMatch(
      /^MCP server erp is unavailable: .*ENOENT/,
    );
    const lookup = (await stack.ledger.getToolCalls(runId)).find((c) => c.name === "erp.lookup_vendor");
    expect(lookup).toMatchObject({
      isError: true,
      content: expect.stringMatching(/^erp\.lookup_vendor was not called/),
    });
  });

  it("a listed tool the config does not declare is dangerous: the guard asks a human before it runs", async () => {
    // Prepare
    const customersDir = customersDirWith({ acme: (doc) => doc.deleteIn(["mcpServers", 0, "tools", "lookup_vendor"]) });
    const { stack } = await start(customersDir, [customersDir]);
    // Act
    const runId = await stack.submit("acme", "01-packaging-saved.json", sampleBytes("acme", "01-packaging-saved.json"));
    const run = await stack.waitSettled(runId, 60_000);
    // Assess
    expect(run?.status).toBe("awaiting_approval");
    const approval = await stack.ledger.getApproval(run?.pendingApprovalId ?? "");
    expect(approval).toMatchObject({ rule: "effect:dangerous", call: { name: "erp.lookup_vendor" } });
    expect((await stack.ledger.getToolCalls(runId)).some((c) => c.name === "erp.lookup_vendor")).toBe(false);
  });
});

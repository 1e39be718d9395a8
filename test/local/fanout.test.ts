import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { bucketFor, LocalStack, type RunEvent } from "../../local/stack.js";

/**
 * One document, many POs, on the local stack (same ASL, local Step Functions API, offline model):
 * Ingest opens a parent run and starts one child execution per PO through StartExecution.
 */
const FIXTURES = join("test", "fixtures", "formats");

describe("multi-PO documents fan out into child runs", () => {
  let stack: LocalStack;
  let dataDir: string;
  const events: RunEvent[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "po-agent-fanout-"));
    stack = await LocalStack.start({
      dataDir,
      customers: loadCustomers("customers"),
      onEvent: (e) => events.push(e),
      retryIntervalMs: 0,
    });
  });

  afterAll(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const submit = (file: string) => stack.submit("acme", file, readFileSync(join(FIXTURES, file)));

  const savedKeys = async () => {
    const res = await stack.s3.send(new ListObjectsV2Command({ Bucket: bucketFor("acme"), Prefix: "processed/" }));
    return (res.Contents ?? []).map((o) => o.Key ?? "").sort();
  };

  /** The approval event of the run's pending approval (the latest one asked for). */
  const approvalEvent = (runId: string) => {
    const e = events.findLast(
      (x): x is Extract<RunEvent, { type: "awaiting_approval" }> => x.type === "awaiting_approval" && x.runId === runId,
    );
    if (!e) throw new Error(`no approval event for ${runId}`);
    return e;
  };

  /** Approves every approval the run asks for (an escalation, then the save) until it ends. */
  const approveUntilDone = async (runId: string) => {
    for (let round = 0; round < 5; round++) {
      const run = await stack.ledger.getRun(runId);
      if (run?.status !== "awaiting_approval") return run;
      const e = approvalEvent(runId);
      expect(e.approvalId).toBe(run.pendingApprovalId);
      const post = await fetch(e.approveUrl, { method: "POST", body: new URLSearchParams({}) });
      expect(post.status).toBe(200);
      for (let i = 0; i < 400; i++) {
        const now = await stack.ledger.getRun(runId);
        if (now?.status !== "awaiting_approval" && now?.status !== "running") break;
        if (now.status === "awaiting_approval" && now.pendingApprovalId !== e.approvalId && stack.isSettled(runId))
          break;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    return stack.ledger.getRun(runId);
  };

  const waitStatus = async (runId: string, status: string) => {
    for (let i = 0; i < 400; i++) {
      const run = await stack.ledger.getRun(runId);
      if (run?.status === status) return run;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`run ${runId} never reached ${status}; it is ${(await stack.ledger.getRun(runId))?.status}`);
  };

  const settle = async () => {
    await new Promise((r) => setTimeout(r, 100));
    await stack.waitAllSettled(120_000);
  };

  it("an X12 interchange with three 850s becomes three child runs, each with its own ledger, approval and outcome; the parent settles only when the last is decided", async () => {
    // Prepare / Act
    const parentId = await submit("x12-850-batch-three.edi");
    await settle();

    // Assess: the parent lists three children, one execution each, named by the child run id.
    const parent = await stack.ledger.getRun(parentId);
    expect(parent?.status).toBe("running");
    const childIds = parent?.children?.map((c) => c.runId) ?? [];
    expect(childIds).toEqual([1, 2, 3].map((n) => `${parentId}-p${n}`));
    expect(parent?.children?.map((c) => c.poNumber)).toEqual(["PSC-4502130", "PSC-4502131", "PSC-4502132"]);
    const executions = stack.engine.listExecutions().map((e) => e.name);
    for (const id of childIds) expect(executions.filter((n) => n === id)).toHaveLength(1);
    // The parent took no model turn; each child has its own turns, its own PO and its own approval.
    expect(await stack.ledger.getTurns(parentId)).toHaveLength(0);
    const approvals = new Set<string>();
    for (const [i, id] of childIds.entries()) {
      const child = await stack.ledger.getRun(id);
      expect(child?.parentRunId).toBe(parentId);
      expect(child?.document.position).toBe(i + 1);
      expect(child?.status).toBe("awaiting_approval");
      expect(child?.poNumber).toBe(parent?.children?.[i]?.poNumber);
      expect((await stack.ledger.getTurns(id)).length).toBeGreaterThan(0);
      const extracted = (await stack.ledger.getArtifacts(id)).filter((a) => a.origin === "document");
      expect(extracted).toHaveLength(1);
      approvals.add(approvalEvent(id).approvalId);
    }
    expect(approvals.size).toBe(3);
    const before = await savedKeys();

    // Act: approve the first two; the third is still waiting.
    for (const id of childIds.slice(0, 2)) {
      expect((await approveUntilDone(id))?.status).toBe("saved");
    }
    // Assess: a child waiting on a human keeps the parent unsettled.
    await settle();
    expect((await stack.ledger.getRun(parentId))?.status).toBe("running");
    expect((await stack.ledger.getRun(childIds[2] ?? ""))?.status).toBe("awaiting_approval");

    // Act: reject the third.
    const third = childIds[2] ?? "";
    const res = await fetch(approvalEvent(third).rejectUrl, {
      method: "POST",
      body: new URLSearchParams({ comment: "not this one" }),
    });
    expect(res.status).toBe(200);
    await waitStatus(third, "rejected");

    // Assess: the parent is split, with each child's outcome; two new order objects, one per saved child.
    const settled = await waitStatus(parentId, "split");
    expect(settled.children?.map((c) => c.outcome)).toEqual(["saved", "saved", "rejected"]);
    expect(settled.reason).toBe("3 purchase orders: 2 saved, 1 rejected");
    const after = await savedKeys();
    expect(after.filter((k) => !before.includes(k))).toEqual([
      "processed/PSC-4502130.json",
      "processed/PSC-4502131.json",
    ]);
    for (const po of ["PSC-4502130", "PSC-4502131"]) {
      expect((await stack.ledger.getOrder("acme", po))?.runId).toBe(childIds[po === "PSC-4502130" ? 0 : 1]);
    }
    expect(await stack.ledger.getOrder("acme", "PSC-4502132")).toBeUndefined();
    const audit = (await stack.ledger.getAudit(parentId)).map((a) => a.action);
    expect(audit.filter((a) => a === "run.split.settled")).toHaveLength(1);
  });

  it("the same bytes uploaded again (and the event redelivered) create no new run, execution or object", async () => {
    // Prepare
    const runsBefore = (await stack.ledger.listRuns()).length;
    const executionsBefore = stack.engine.listExecutions().length;
    const objectsBefore = await savedKeys();

    // Act
    await stack.submit("acme", "again.edi", readFileSync(join(FIXTURES, "x12-850-batch-three.edi")));
    await stack.redeliver("acme", "x12-850-batch-three.edi");
    await settle();

    // Assess
    expect((await stack.ledger.listRuns()).length).toBe(runsBefore);
    expect(stack.engine.listExecutions().length).toBe(executionsBefore);
    expect(await savedKeys()).toEqual(objectsBefore);
  });

  it("an email with two PO attachments becomes two children, both saved, and the parent settles by itself", async () => {
    // Prepare / Act
    const parentId = await submit("email-two-po-attachments.eml");
    await settle();

    // Assess
    const parent = await waitStatus(parentId, "split");
    expect(parent.children?.map((c) => [c.poNumber, c.outcome])).toEqual([
      ["ACM-PO-22901", "saved"],
      ["ACM-PO-22902", "saved"],
    ]);
    for (const c of parent.children ?? []) {
      const child = await stack.ledger.getRun(c.runId);
      expect(child?.poNumber).toBe(c.poNumber);
      expect((await stack.ledger.getOrder("acme", c.poNumber ?? ""))?.runId).toBe(c.runId);
    }
    expect(await savedKeys()).toEqual(
      expect.arrayContaining(["processed/ACM-PO-22901.json", "processed/ACM-PO-22902.json"]),
    );
  });

  it("a document Ingest cannot count (a ZIP named .pdf) still gets its one run, refused by extract as before", async () => {
    // Prepare / Act
    const runId = await stack.submit(
      "acme",
      "zip.pdf",
      readFileSync(join("samples", "customer37", "12-zip-named-as-pdf.pdf")),
    );
    const run = await stack.waitSettled(runId);

    // Assess
    expect(run?.status).toBe("failed");
    expect(run?.children).toBeUndefined();
    expect(run?.reason).toContain("cannot read the document: the document is a ZIP archive");
  });

  it("a CSV export with two PO numbers becomes two children, each reading only its own lines", async () => {
    // Prepare / Act
    const parentId = await submit("csv-erp-export-two-pos.csv");
    await settle();

    // Assess: each child's extracted PO is its own (two lines each), not the whole file.
    const parent = await stack.ledger.getRun(parentId);
    expect(parent?.children).toHaveLength(2);
    for (const c of parent?.children ?? []) {
      const [doc] = (await stack.ledger.getArtifacts(c.runId)).filter((a) => a.origin === "document");
      const po = doc?.po as { poNumber?: string; lines?: unknown[] } | undefined;
      expect(po?.poNumber).toBe(c.poNumber);
      expect(po?.lines).toHaveLength(2);
    }
  });
});

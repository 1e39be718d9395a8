import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { bucketFor, LocalStack, type RunEvent } from "../../local/stack.js";

/**
 * End to end on the local engine with the emulated services and real SDK clients: the same
 * statemachines/agent.asl.json, the offline reference model, approvals through signed links.
 */
describe("local stack end to end", () => {
  let stack: LocalStack;
  let dataDir: string;
  const events: RunEvent[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "po-agent-e2e-"));
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

  const submitSample = async (customer: string, file: string) => {
    const path = join("samples", customer, file);
    return stack.submit(customer, path, readFileSync(path));
  };

  const approvalEvent = async (runId: string) => {
    for (let i = 0; i < 200; i++) {
      const e = events.find(
        (x): x is Extract<RunEvent, { type: "awaiting_approval" }> =>
          x.type === "awaiting_approval" && x.runId === runId,
      );
      if (e) return e;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no approval event for ${runId}`);
  };

  const waitStatus = async (runId: string, status: string) => {
    for (let i = 0; i < 400; i++) {
      const run = await stack.ledger.getRun(runId);
      if (run?.status === status) return run;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`run ${runId} never reached ${status}; it is ${(await stack.ledger.getRun(runId))?.status}`);
  };

  it("saves a PO the policy allows, paying one model call per turn", async () => {
    // Prepare / Act
    const runId = await submitSample("acme", "01-packaging-saved.json");
    const run = await stack.waitSettled(runId);

    // Assess
    expect(run?.status).toBe("saved");
    const turns = await stack.ledger.getTurns(runId);
    expect(turns.length).toBeGreaterThanOrEqual(3);
    expect(run?.counters.modelCalls).toBe(turns.length);
    expect(run?.poNumber).toBe("ACM-PO-22817");
    // The per-run cost record: tokens by kind from the counters, and an AWS estimate.
    expect(run?.cost?.tokens.input).toBe(run?.counters.inputTokens);
    expect(run?.cost?.aws.stateTransitions).toBeGreaterThan(10);
    expect(run?.cost?.aws.totalUsd).toBeGreaterThan(0);
    const order = await stack.ledger.getOrder("acme", "ACM-PO-22817");
    expect(order?.runId).toBe(runId);
    const saved = await stack.s3.send(new GetObjectCommand({ Bucket: bucketFor("acme"), Key: order?.objectKey }));
    expect(JSON.parse((await saved.Body?.transformToString()) ?? "null")).toMatchObject({ poNumber: "ACM-PO-22817" });
    // validate and transform ran in the same turn (the Map runs them in parallel)
    const parallel = turns.find((t) => t.dispositions.length === 2);
    expect(parallel?.dispositions.map((d) => d.name).sort()).toEqual(["transform", "validate"]);
  });

  it("escalates an over-limit PO, emails the approver, and saves it after the signed link is approved", async () => {
    // Prepare
    const runId = await submitSample("acme", "03-controls-needs-approval.json");
    const waiting = await stack.waitSettled(runId);
    expect(waiting?.status).toBe("awaiting_approval");
    expect(await stack.ledger.getOrder("acme", waiting?.poNumber ?? "")).toBeUndefined();
    const event = await approvalEvent(runId);

    // The approver got an email with both links (the emulated SES inbox).
    const store = (await (await fetch(`${stack.services.sesEndpoint}/store`)).json()) as {
      emails: { subject: string; body: { html: string; text: string }; destination: { to: string[] } }[];
    };
    const mail = store.emails.find((m) => m.subject.includes(waiting?.poNumber ?? "?"));
    expect(mail?.destination.to).toContain(event.approver);
    expect(mail?.body.html).toContain("/approvals/");
    expect(mail?.body.text).toContain(waiting?.poNumber);

    // Act: a link scanner's GET decides nothing; the POST from the page does.
    const page = await fetch(event.approveUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('method="post"');
    expect((await stack.ledger.getApproval(event.approvalId))?.status).toBe("pending");
    const post = await fetch(event.approveUrl, { method: "POST", body: new URLSearchParams({}) });
    expect(post.status).toBe(200);

    // Assess
    const run = await waitStatus(runId, "saved");
    expect(run.reason).toContain("approved by");
    expect((await stack.ledger.getApproval(event.approvalId))?.status).toBe("approved");
    expect(await stack.ledger.getOrder("acme", run.poNumber ?? "")).toBeDefined();
    // The link is single-use.
    expect((await fetch(event.approveUrl, { method: "POST", body: new URLSearchParams({}) })).status).toBe(409);
    const audit = await stack.ledger.getAudit(runId);
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(["guard.approval", "approval.requested", "approval.approved", "order.saved"]),
    );
  });

  it("ends rejected with the approver's reason when the reject link is used", async () => {
    const runId = await submitSample("customer37", "03-over-limit-wednesday.json");
    expect((await stack.waitSettled(runId))?.status).toBe("awaiting_approval");
    const event = await approvalEvent(runId);

    const res = await fetch(event.rejectUrl, {
      method: "POST",
      body: new URLSearchParams({ reason: "budget frozen until Q1" }),
    });
    expect(res.status).toBe(200);

    const run = await waitStatus(runId, "rejected");
    expect(run.reason).toContain("budget frozen until Q1");
    expect(await stack.ledger.getOrder("customer37", run.poNumber ?? "")).toBeUndefined();
  });

  it("fails a malformed document visibly, keeping the document and the reason", async () => {
    const runId = await submitSample("customer37", "07-malformed-truncated.json");
    const run = await stack.waitSettled(runId);

    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/JSON/);
    expect(run?.reason).toContain("(read_document shows its raw text)"); // text a model could still read
    const kept = await stack.s3.send(new GetObjectCommand({ Bucket: bucketFor("customer37"), Key: run?.document.key }));
    expect(await kept.Body?.transformToString()).toBe(
      readFileSync("samples/customer37/07-malformed-truncated.json", "utf8"),
    );
  });

  it("reports a ZIP disguised as a PDF through the model, with the specific reason", async () => {
    const runId = await submitSample("customer37", "12-zip-named-as-pdf.pdf");
    const run = await stack.waitSettled(runId);

    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/^cannot read the document: the document is a ZIP archive/);
    // read_document could show nothing of a ZIP: the reason must not send the reader there.
    expect(run?.reason).not.toContain("read_document");
    expect(run?.reason).toMatch(/it holds no text to read\)$/);
  });

  it("fails a scanned PDF offline without sending the reader to read_document, which has no text for it", async () => {
    const runId = await submitSample("customer37", "10-scanned-pdf-no-text-layer.pdf");
    const run = await stack.waitSettled(runId);

    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/^cannot read the document: the PDF has no text layer/);
    expect(run?.reason).not.toContain("read_document");
  });

  it("does not run the same bytes twice", async () => {
    const first = await submitSample("acme", "02-fasteners-saved.csv");
    expect((await stack.waitSettled(first))?.status).toBe("saved");
    const turnsBefore = (await stack.ledger.getTurns(first)).length;

    const again = await stack.submit(
      "acme",
      "copy-of-fasteners.csv",
      readFileSync("samples/acme/02-fasteners-saved.csv"),
    );
    await new Promise((r) => setTimeout(r, 300));

    expect(again).toBe(first);
    expect(events.some((e) => e.type === "skipped" && e.document === "incoming/copy-of-fasteners.csv")).toBe(true);
    expect((await stack.ledger.getTurns(first)).length).toBe(turnsBefore);
  });
});

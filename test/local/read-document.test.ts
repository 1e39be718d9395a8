import { GetObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { ScriptedModelClient } from "../../lambdas/shared/model/scripted.js";
import type { ModelRequest, ToolResultBlock } from "../../lambdas/shared/model/types.js";
import { bucketFor } from "../../local/stack.js";
import { PRICED_MODEL, reply, sampleBytes, startTestStack, type TestStack, text, toolUse } from "../support/stack.js";

let current: TestStack | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const lastResult = (request: ModelRequest): ToolResultBlock | undefined =>
  request.messages.at(-1)?.content.find((b): b is ToolResultBlock => b.type === "tool_result");

/** What a capable model does with an X12 850 the parser refuses: reads the segments and drafts the PO. */
function draftFromX12(raw: string) {
  const segments = raw.split("~").map((s) => s.trim().split("*"));
  const seg = (id: string) => segments.find((s) => s[0] === id) ?? [];
  const beg = seg("BEG");
  const date = beg[5] ?? "";
  const lines = segments
    .filter((s) => s[0] === "PO1")
    .map((s) => {
      const qty = Number(s[2]);
      const price = Math.round(Number(s[4]) * 100);
      return {
        id: s[1] ?? "",
        description: s[7] ?? "",
        quantity: String(qty),
        unit: s[3] ?? "EA",
        unitPriceMinor: price,
        amountMinor: qty * price,
      };
    });
  const freight = Number(seg("SAC")[5] ?? 0);
  const tax = Math.round(Number(seg("TXI")[2] ?? 0) * 100);
  const supplier = seg("N1").length ? segments.find((s) => s[0] === "N1" && s[1] === "SE") : undefined;
  return {
    poNumber: beg[3] ?? "",
    orderDate: `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`,
    buyer: { name: "Acme Manufacturing" },
    supplier: { name: supplier?.[2] ?? "", id: supplier?.[4] ?? "" },
    currency: seg("CUR")[2] ?? "USD",
    lines,
    charges: [{ reason: "Freight", amountMinor: freight }],
    tax: { amountMinor: tax },
    totalMinor: lines.reduce((n, l) => n + l.amountMinor, 0) + freight + tax,
  };
}

describe("read_document: when no parser can read the document, the model can", () => {
  it("a bare X12 850 (no ISA/GS envelope): raw text → a drafted PO → a human confirms the diff → saved", async () => {
    // Prepare: the sample X12 without its interchange and group headers (the parser needs the ISA
    // for its separators, so it refuses the file; the segments are still readable by a model).
    const x12 = sampleBytes("acme", "07-x12-850-saved.edi")
      .toString("utf8")
      .replace(/^ISA[^~]*~\s*/, "")
      .replace(/GS\*[^~]*~\s*/, "");
    let ref: unknown;
    const client = new ScriptedModelClient((request, i) => {
      if (i === 0) return reply([toolUse("t_extract", "extract", {})]);
      if (i === 1) return reply([toolUse("t_read", "read_document", {})]);
      const result = lastResult(request);
      if (i === 2) {
        const page = JSON.parse(result?.content ?? "{}") as { text: string };
        return reply([
          toolUse("t_draft", "draft_po", {
            reason: "parser needs N1*BY; read from the segments",
            po: draftFromX12(page.text),
          }),
        ]);
      }
      if (i === 3) {
        ref = JSON.parse(result?.content ?? "{}");
        const { artifactId, version } = ref as { artifactId: string; version: number };
        ref = { artifactId, version };
        return reply([toolUse("t_validate", "validate", ref)]);
      }
      if (i === 4) return reply([toolUse("t_save", "save", ref)]);
      return reply([text("OUTCOME: saved — drafted from the raw X12 and confirmed by a human")]);
    });
    current = await startTestStack({ model: () => ({ client, modelId: PRICED_MODEL, note: "scripted" }) });
    const { stack } = current;

    // Act
    const runId = await stack.submit("acme", "07-x12-bare.edi", Buffer.from(x12));
    const waiting = await stack.waitSettled(runId, 30_000);
    const approval = waiting?.pendingApprovalId ? await stack.ledger.getApproval(waiting.pendingApprovalId) : undefined;
    await stack.decideByOperator(approval?.approvalId ?? "", "approved", "reviewer", "checked against the EDI");
    const run = await stack.waitSettled(runId, 30_000);

    // Assess: the extract error named read_document; the page had the raw segments with a stable id
    const [, second, third] = client.calls;
    expect(second && lastResult(second)?.content).toMatch(/read_document/);
    expect(JSON.parse((third && lastResult(third)?.content) ?? "{}")).toMatchObject({ id: "document#p1", of: 1 });
    // Assess: a human saw that the model drafted it, then the run saved exactly that version
    expect(waiting?.status).toBe("awaiting_approval");
    expect(approval?.rule).toMatch(/model-draft/);
    expect(approval?.diff?.[0]).toMatch(/drafted all of it from the raw text/);
    expect(run?.status, run?.reason).toBe("saved");
    const saved = await stack.s3.send(
      new GetObjectCommand({ Bucket: bucketFor("acme"), Key: "processed/ACM-PO-22866.json" }),
    );
    expect(JSON.parse(await (saved.Body?.transformToString() ?? "{}"))).toMatchObject({
      poNumber: "ACM-PO-22866",
      totalMinor: 214_014,
      source: { method: "model" },
    });
  });

  it("an email whose attachment failed: fetch_context does not say 'no thread'; read_document lists its parts", async () => {
    // Prepare
    const client = new ScriptedModelClient((_request, i) => {
      if (i === 0) return reply([toolUse("t_extract", "extract", {})]);
      if (i === 1)
        return reply([toolUse("t_ctx", "fetch_context", { id: "m1" }), toolUse("t_raw", "read_document", {})]);
      return reply([text("OUTCOME: failed — no purchase order in the email")]);
    });
    current = await startTestStack({ model: () => ({ client, modelId: PRICED_MODEL, note: "scripted" }) });
    const file = "11-email-no-usable-attachment.eml";

    // Act
    const runId = await current.stack.submit("customer37", file, sampleBytes("customer37", file));
    await current.stack.waitSettled(runId, 30_000);

    // Assess
    const results = (client.calls[2]?.messages.at(-1)?.content ?? []).filter(
      (b): b is ToolResultBlock => b.type === "tool_result",
    );
    const [ctx, raw] = results;
    expect(ctx?.content).not.toMatch(/no thread/);
    expect(ctx?.content).toMatch(/read_document/);
    const page = JSON.parse(raw?.content ?? "{}") as { id: string; parts: { id: string; label: string }[] };
    expect(page.id).toBe("body#p1");
    expect(page.parts.map((p) => p.id)).toEqual(["body", "a1", "a2"]);
    expect(page.parts.map((p) => p.label).join(" ")).toMatch(/logo\.png.*terms\.txt/);
  });
});

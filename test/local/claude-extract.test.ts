import { afterEach, describe, expect, it } from "vitest";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import { sampleBytes, startTestStack, type TestStack } from "../support/stack.js";

/**
 * With Claude as the model, a PDF without a text layer is sent as a document block and the
 * answer is checked against the same PO schema. "Claude" here is a stand-in that answers like the
 * API would; the agent's turns come from the offline model, so only the extraction is scripted.
 */
const SCANNED = "10-scanned-pdf-no-text-layer.pdf";

function claudeLike(answer: (request: ModelRequest) => string): { client: ModelClient; extractions: ModelRequest[] } {
  const turns = new ReferenceModelClient();
  const extractions: ModelRequest[] = [];
  return {
    extractions,
    client: {
      provider: "anthropic",
      async create(request: ModelRequest): Promise<ModelResponse> {
        if (request.tools.length > 0)
          return { ...(await turns.create(request)), model: "claude-sonnet-5", usageEstimated: false };
        extractions.push(request);
        return {
          model: "claude-sonnet-5",
          content: [{ type: "text", text: answer(request) }],
          stop_reason: "end_turn",
          usage: { input_tokens: 1_600, output_tokens: 300 },
        };
      },
    },
  };
}

let current: TestStack | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe("extraction of a scanned PDF by Claude (document block)", () => {
  it("sends the PDF as a document block and continues the run with the schema-checked answer", async () => {
    // Prepare: the answer a model would give for the scan (a Monday PO within the auto-approval limit).
    const po = {
      poNumber: "PSC-77001",
      orderDate: "2026-11-23",
      buyer: { name: "Prairie State Components" },
      supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
      currency: "USD",
      lines: [
        { id: "1", description: "Copy paper, A4, 5-ream case", quantity: "10", unit: "case", unitPrice: "42.00" },
      ],
      total: "420.00",
    };
    const model = claudeLike(() => `\`\`\`json\n${JSON.stringify(po)}\n\`\`\``);
    current = await startTestStack({
      model: () => ({ client: model.client, modelId: "claude-sonnet-5", note: "claude-like" }),
    });

    // Act
    const runId = await current.stack.submit("customer37", SCANNED, sampleBytes("customer37", SCANNED));
    const run = await current.stack.waitSettled(runId, 30_000);

    // Assess: a PO read by a model (not a parser) waits for a human, whatever its amount
    expect(run?.status, run?.reason).toBe("awaiting_approval");
    const approval = run?.pendingApprovalId ? await current.stack.ledger.getApproval(run.pendingApprovalId) : undefined;
    expect(approval?.rule).toMatch(/model-draft/);
    expect(approval?.call.name).toBe("save");
    expect(run?.poNumber).toBe("PSC-77001");
    const [request] = model.extractions;
    const block = request?.messages[0]?.content[0];
    expect(block?.type).toBe("document");
    expect(block?.type === "document" ? block.source.media_type : "").toBe("application/pdf");
    const extract = (await current.stack.ledger.getToolCalls(runId)).find((c) => c.name === "extract");
    expect(JSON.parse(extract?.content ?? "{}")).toMatchObject({ format: "pdf", extractedBy: "model" });
    // The extraction call is paid and counted with the turns.
    expect(run?.counters.modelCalls).toBe((await current.stack.ledger.getTurns(runId)).length + 1);
  });

  it("fails the document with the reason when the model's answer does not fit the schema", async () => {
    const model = claudeLike(() => '{"poNumber": "PSC-1", "total": "lots"}');
    current = await startTestStack({
      model: () => ({ client: model.client, modelId: "claude-sonnet-5", note: "claude-like" }),
    });

    const runId = await current.stack.submit("customer37", SCANNED, sampleBytes("customer37", SCANNED));
    const run = await current.stack.waitSettled(runId, 30_000);

    expect(run?.status).toBe("failed");
    expect(run?.reason).toMatch(/the model's answer does not fit the PO schema/);
    expect(model.extractions).toHaveLength(1);
  });
});

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { ingest } from "../../lambdas/shared/agent/ingest.js";
import { runTool } from "../../lambdas/shared/agent/tool-run.js";
import { orchestrate } from "../../lambdas/shared/agent/turn.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import { ALL_TOOLS } from "../../lambdas/shared/tools/all.js";
import { memoryS3 } from "./memory-s3.js";

/**
 * The Extract Lambda resolves the model (and reads its key) only for a document that needs one
 * (AgentDeps.documentModel): a text document never asks for it, a scan asks once, and with the
 * offline model the scan is refused exactly as when the model was resolved up front.
 */
const customer = loadCustomerFile("customers/customer37.yaml");
const BUCKET = "customer37-intake";
const SCANNED = "10-scanned-pdf-no-text-layer.pdf";

/** A Claude stand-in for the extraction: answers a PO as JSON and records each request. */
function claudeLike(): { client: ModelClient; requests: ModelRequest[] } {
  const requests: ModelRequest[] = [];
  const po = {
    poNumber: "PSC-77001",
    orderDate: "2026-11-23",
    buyer: { name: "Prairie State Components" },
    supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
    currency: "USD",
    lines: [{ id: "1", description: "Copy paper, A4, 5-ream case", quantity: "10", unit: "case", unitPrice: "42.00" }],
    total: "420.00",
  };
  return {
    requests,
    client: {
      provider: "anthropic",
      async create(request: ModelRequest): Promise<ModelResponse> {
        requests.push(request);
        return {
          model: "claude-sonnet-5",
          content: [{ type: "text", text: JSON.stringify(po) }],
          stop_reason: "end_turn",
          usage: { input_tokens: 1_600, output_tokens: 300 },
        };
      },
    },
  };
}

/** Ingests `file` and lets the offline model ask for its first tool call (extract); returns that call. */
async function firstExtract(file: string) {
  const s3 = memoryS3();
  const ledger = new MemoryLedger();
  const deps: AgentDeps = {
    ledger,
    documents: new DocumentStore(s3.client),
    customer,
    bucket: BUCKET,
    model: { client: new ReferenceModelClient(), modelId: "reference" },
    tools: ALL_TOOLS,
  };
  const key = `incoming/${file}`;
  s3.objects.set(`${BUCKET}/${key}`, readFileSync(`samples/customer37/${file}`));
  const { runId } = await ingest(deps, { bucket: BUCKET, key, executionId: `exec-${file}` });
  const step = await orchestrate(deps, { runId });
  const call = step.type === "tools" ? step.calls.find((c) => c.name === "extract") : undefined;
  if (!call) throw new Error(`the offline model did not call extract first: ${JSON.stringify(step)}`);
  // The Extract Lambda's deps: no model up front, one resolved on demand.
  const { model: _model, ...lane } = deps;
  return { ledger, deps, lane, runId, call };
}

describe("the extract tool resolves the model only for a document that needs it", () => {
  it("a text document is read without asking for the model", async () => {
    // Prepare
    const { ledger, lane, runId, call } = await firstExtract("01-auto-approve-monday.json");
    let asked = 0;
    const documentModel = async () => {
      asked++;
      return { client: claudeLike().client, modelId: "claude-sonnet-5" };
    };
    // Act
    await runTool({ ...lane, documentModel }, { runId, call });
    // Assess
    expect(asked).toBe(0);
    const [artifact, ...more] = await ledger.getArtifacts(runId);
    expect(more).toEqual([]);
    expect(artifact?.origin).toBe("document");
  });

  it("a scan asks once; with the offline model it is refused with the same reason as before", async () => {
    // Prepare: the same call run with the model given up front (as before) and resolved on demand
    const upFront = await firstExtract(SCANNED);
    const onDemand = await firstExtract(SCANNED);
    let asked = 0;
    const documentModel = async () => {
      asked++;
      return { client: new ReferenceModelClient(), modelId: "reference" };
    };
    // Act
    await runTool(upFront.deps, { runId: upFront.runId, call: upFront.call });
    await runTool({ ...onDemand.lane, documentModel }, { runId: onDemand.runId, call: onDemand.call });
    // Assess
    expect(asked).toBe(1);
    const [before] = await upFront.ledger.getToolCalls(upFront.runId);
    const [after] = await onDemand.ledger.getToolCalls(onDemand.runId);
    expect(after?.isError).toBe(true);
    expect(after?.content).toMatch(/no text layer/);
    expect(after?.content).toBe(before?.content);
    expect(await onDemand.ledger.getArtifacts(onDemand.runId)).toEqual([]);
  });

  it("a scan with Claude resolved on demand is read as a document block into a model draft", async () => {
    // Prepare
    const { ledger, lane, runId, call } = await firstExtract(SCANNED);
    const claude = claudeLike();
    let asked = 0;
    const documentModel = async () => {
      asked++;
      return { client: claude.client, modelId: "claude-sonnet-5" };
    };
    // Act
    await runTool({ ...lane, documentModel }, { runId, call });
    // Assess: one extraction request with the PDF as a document block, one draft stored
    expect(asked).toBe(1);
    expect(claude.requests).toHaveLength(1);
    expect(claude.requests[0]?.messages[0]?.content[0]?.type).toBe("document");
    const artifacts = await ledger.getArtifacts(runId);
    expect(artifacts.map((a) => [a.needsHuman, (a.po as { poNumber?: string }).poNumber])).toEqual([
      [["model-draft"], "PSC-77001"],
    ]);
  });
});

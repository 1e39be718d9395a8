import type { ApprovalRecord, RunRecord, ToolCallRecord, TurnRecord } from "../../lambdas/shared/ledger/records.js";
import { ZERO_COUNTERS } from "../../lambdas/shared/ledger/records.js";

/** Ledger records of one saved run (PO 48291), shared by the trace and console tests. */
export const ARN = "arn:aws:states:us-east-1:000000000000:execution:PoAgent-local:acme-0123456789abcdef0123";
export const RUN_ID = "acme-0123456789abcdef0123";

export function runRecord(over: Partial<RunRecord> = {}): RunRecord {
  return {
    schemaVersion: 1,
    runId: RUN_ID,
    customer: "acme",
    document: { bucket: "po-agent-acme", key: "incoming/po-48291.json", sha256: "ab", size: 120 },
    executionId: "x",
    status: "saved",
    reason: "saved PO 48291",
    poNumber: "48291",
    turn: 2,
    createdAt: "2026-03-05T10:00:00.000Z",
    updatedAt: "2026-03-05T10:00:05.000Z",
    finishedAt: "2026-03-05T10:00:05.000Z",
    durationMs: 5000,
    counters: { ...ZERO_COUNTERS, modelCalls: 2, toolCalls: 1, inputTokens: 1500, outputTokens: 300, costUsd: 0.0123 },
    ...over,
  };
}

export function turnRecord(turn: number, over: Partial<TurnRecord> = {}): TurnRecord {
  return {
    schemaVersion: 2,
    runId: RUN_ID,
    turn,
    response: {
      model: "claude-sonnet-5",
      content: [{ type: "tool_use", id: `tu-${turn}`, name: "save", input: { po: { poNumber: "48291" } } }],
      stop_reason: "tool_use",
      usage: { input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 900 },
    },
    dispositions: [{ kind: "run", toolUseId: `tu-${turn}`, name: "save", argsHash: "h" }],
    costUsd: 0.01,
    createdAt: `2026-03-05T10:00:0${turn}.000Z`,
    ...over,
  };
}

export function toolCallRecord(over: Partial<ToolCallRecord> = {}): ToolCallRecord {
  return {
    schemaVersion: 2,
    runId: RUN_ID,
    toolUseId: "tu-1",
    name: "save",
    argsHash: "h",
    content: '{"saved":true}',
    isError: false,
    durationMs: 42,
    createdAt: "2026-03-05T10:00:02.000Z",
    ...over,
  };
}

export function approvalRecord(over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    schemaVersion: 2,
    approvalId: "ap-1",
    runId: RUN_ID,
    customer: "acme",
    turn: 1,
    call: { toolUseId: "tu-1", name: "save", input: {} },
    callHash: "h",
    reason: "over $5,000",
    rule: "default",
    approvers: ["priya"],
    summary: { poNumber: "48291", supplierName: "Hudson Valley Packaging", amount: "USD 12,480.00" },
    status: "approved",
    emailedTo: [],
    usedNonces: [],
    decidedBy: "priya",
    decidedAt: "2026-03-05T10:00:03.500Z",
    createdAt: "2026-03-05T10:00:01.500Z",
    ...over,
  };
}

/**
 * What every phase of the agent core shares: its injected dependencies and the run's end states.
 * The same phases run in Lambda (one per handler) and in the local runtime.
 */
import type { DocumentStore } from "../aws/documents.js";
import type { CustomerConfig } from "../config/schema.js";
import type { AwsUsage } from "../cost-estimate.js";
import type { Ledger } from "../ledger/ledger.js";
import type { McpToolset } from "../mcp/client.js";
import type { RetryPolicy } from "../model/retry.js";
import type { ModelClient } from "../model/types.js";
import { noopTelemetry, type Telemetry } from "../telemetry.js";
import type { Tool, ToolContext } from "../tools/types.js";
import type { guardCall } from "./guard.js";

/** Everything the agent core touches, injected: the same core runs in Lambda and locally. */
export interface AgentDeps {
  ledger: Ledger;
  documents: DocumentStore;
  customer: CustomerConfig;
  /** Bucket for large tool results and saved orders (the customer's intake bucket). */
  bucket: string;
  model?: { client: ModelClient; modelId: string };
  /**
   * The model that reads a scan or a photo for the extract tool, resolved only when a document needs
   * it (the Extract Lambda: the model key is read, and its Secrets Manager client loaded, for such a
   * document only). @default - `model`
   */
  documentModel?: () => Promise<{ client: ModelClient; modelId: string }>;
  /** @default DEFAULTS.modelRetry */
  modelRetry?: RetryPolicy;
  /** Traces, metrics and logs about the run (Powertools in Lambda, the trace store locally). @default - none */
  telemetry?: Telemetry;
  /**
   * The customer's MCP servers, connected and listed (once per process and customer: the caller
   * caches). Their tools join the built-ins for the model, the guard and runTool. @default - none
   */
  mcp?: () => Promise<Pick<McpToolset, "tools" | "problems">>;
  /**
   * The built-in tools this process runs (a tool Lambda: its lane's, `tools/<lane>.ts`; locally:
   * all). Their specs come from tools/registry.ts, so the core imports no implementation.
   * @default - none: runTool refuses every built-in tool
   */
  tools?: readonly Tool[];
  /** Reads documents for the extract tool (locally: off the event loop). @default - in this thread */
  readDocument?: ToolContext["readDocument"];
  now?: () => Date;
  /**
   * What the run's execution used so far, counted from its history (cost-estimate.ts); Finalize and
   * RecordFailure price it into the cost record. @default - estimated from the run's shape
   */
  executionUsage?: (executionArn: string, extraTransitions: number) => Promise<AwsUsage>;
  /**
   * The guard, injectable only so the compromised-model suite can prove its check fails without
   * it (a guard that lets everything run must let attacks through). @default guardCall
   */
  guard?: typeof guardCall;
  /**
   * The order write, injectable only so the durability check can prove it counts duplicate writes
   * (a save that skips the claim must show them). @default saveOrderOnce
   */
  saveOrder?: SaveOrder;
}

/** The save tool's write of an order (see save.ts). */
export type SaveOrder = (
  deps: Pick<AgentDeps, "ledger" | "documents" | "bucket" | "customer">,
  run: { runId: string },
  order: { poNumber: string; po: unknown; idempotencyKey: string },
  sink?: { audit: { actor: string; action: string; detail: Record<string, unknown> }[] },
) => Promise<{ created: boolean }>;

export const TERMINAL = new Set(["saved", "rejected", "failed", "handed_to_human"]);

export type Ending = "saved" | "rejected" | "failed" | "handed_to_human";

export const telemetryOf = (deps: AgentDeps): Telemetry => deps.telemetry ?? noopTelemetry;

const NO_MCP: Pick<McpToolset, "tools" | "problems"> = { tools: [], problems: [] };

export const mcpOf = async (deps: AgentDeps) => (deps.mcp ? deps.mcp() : NO_MCP);

/** Run ids are derived from content: the same bytes for the same customer are one run. */
export function runIdFor(customer: string, documentSha256: string): string {
  return `${customer}-${documentSha256.slice(0, 20)}`;
}

import type { z } from "zod/v3";
import type { Effect } from "../catalogue.js";
import type { CustomerConfig } from "../config/schema.js";
import type { PreparedContext } from "../context/types.js";
import type { ArtifactRecord } from "../ledger/records.js";
import type { ContentBlock } from "../model/types.js";
import type { ParsedDocument, ParseOptions } from "../po/parse.js";

export type { Effect } from "../catalogue.js";

/** Everything a tool may touch, injected so tools stay testable without AWS. */
export interface ToolContext {
  runId: string;
  customer: CustomerConfig;
  /** The document this run is about. */
  document: { bucket: string; key: string; sha256: string; position?: number };
  loadDocument(): Promise<Uint8Array>;
  /** Orders already saved for this customer, by PO number (duplicate detection). */
  findSavedOrder(poNumber: string): Promise<{ runId: string } | undefined>;
  /**
   * This run's PO versions (the ledger's, never another run's). `put` stores a new version once:
   * a replay that would store the same content on the same parent returns the stored version.
   */
  artifacts: {
    list(): Promise<ArtifactRecord[]>;
    put(version: Omit<ArtifactRecord, "schemaVersion" | "createdAt" | "runId" | "version">): Promise<ArtifactRecord>;
    markValidated(
      ref: { artifactId: string; version: number },
      result: { errors: number; warnings: number },
    ): Promise<void>;
  };
  /** Idempotent write of a saved order; `idempotencyKey` makes a replay a no-op. */
  saveOrder(order: { poNumber: string; po: unknown; idempotencyKey: string }): Promise<{ created: boolean }>;
  /** This run's prepared email-thread context (written by extract, read by fetch_context). */
  loadPreparedContext(): Promise<PreparedContext | undefined>;
  /**
   * Claude reads a PDF without a text layer, or an image, as a document block and answers with
   * the PO as JSON. Set when the run's model is Claude (not the offline model), or may be (a model
   * resolved on this call, AgentDeps.documentModel): `undefined` then says it is not.
   */
  extractWithModel?(content: ContentBlock[]): Promise<string | undefined>;
  savePreparedContext(context: PreparedContext): Promise<void>;
  /** Reads the document (the local runtime: in a worker with a time budget). @default - po/parse readDocument */
  readDocument?(bytes: Uint8Array, fileName: string, opts: ParseOptions): Promise<ParsedDocument>;
}

/** What a tool hands back: `content` is what the model reads; `isError` marks a recoverable failure. */
export interface ToolOutput {
  content: string;
  isError?: boolean;
}

/**
 * What the model, the guard and the policy know of a tool: light (a zod schema, no implementation),
 * so the orchestrator and the guard never load a parser.
 */
export interface ToolSpec<I = unknown> {
  name: string;
  description: string;
  effect: Effect;
  /** Parses the model's arguments to what `run` receives (the input side may differ: defaults). */
  input: z.ZodType<I, z.ZodTypeDef, unknown>;
}

/** Tools are data: name, description, effect, input schema, run. */
export interface Tool<I = unknown> extends ToolSpec<I> {
  run(input: I, ctx: ToolContext): Promise<ToolOutput>;
}

/**
 * What the CLI commands act on, written once: either the stack this process opened on the data dir
 * (InProcessBackend) or the `po-agent` process that owns it, through its control API (HttpBackend,
 * served by api-routes.ts over an InProcessBackend). Both answer the same questions with the same
 * effects; a command never knows which one it has.
 */
import { RetryRefusedError } from "../lambdas/shared/agent/core.js";
import { ApprovalError } from "../lambdas/shared/errors.js";
import type { AuditRecord, RunRecord } from "../lambdas/shared/ledger/records.js";
import { KEY_HEADER } from "./control.js";
import type { LocalStack } from "./stack.js";
import type { RunBundle } from "./trace.js";

export type Decision = "approved" | "rejected";

export interface DecideOutcome {
  /** False when someone else decided first (the approval's status says how). */
  decided: boolean;
  status: string;
  runId: string;
}

export interface RetryOutcome {
  runId: string;
  executionName: string;
  turnsReused: number;
  toolResultsReused: number;
}

export interface RunState {
  run: RunRecord;
  /** Finished, or parked waiting for a human. */
  settled: boolean;
}

/** Who decides through a backend: the operator at a terminal (`cli:<user>`) or the console form. */
export interface OperatorDecision {
  decision: Decision;
  by: string;
  comment?: string;
  channel: "cli" | "console";
}

export interface ControlBackend {
  /** One line saying where the work happens (the model in use, or the process that owns the store). */
  describe(customer: string): string;
  customers(): string[];
  /** Stores the document and returns once its run record exists (IntakeError otherwise). */
  submit(customer: string, fileName: string, body: Uint8Array): Promise<string>;
  runState(runId: string): Promise<RunState | undefined>;
  /** Waits until the run finished or waits for a human. */
  waitSettled(runId: string): Promise<RunRecord | undefined>;
  listRuns(): Promise<RunRecord[]>;
  getAudit(runId: string): Promise<AuditRecord[]>;
  /** The ledger's view of a run for its trace (turns, tool calls, approvals). */
  runBundle(runId: string): Promise<RunBundle | undefined>;
  /** An operator's decision through decide(); the run continues (or is resumed) afterwards. */
  decide(approvalId: string, d: OperatorDecision): Promise<DecideOutcome>;
  /** A failed run resumes from the ledger under a new execution. */
  retry(runId: string, operator: string): Promise<RetryOutcome>;
  close(): Promise<void>;
}

/** A submission was stored but its run could not be confirmed. */
export class IntakeError extends Error {
  override readonly name: string = "IntakeError";
}

/** A refusal the user can act on (no such approval, not retryable, …): printed as one line. */
export class ControlRefusedError extends Error {
  override readonly name: string = "ControlRefusedError";
}

const refusal = (err: unknown): never => {
  if (err instanceof ApprovalError || err instanceof RetryRefusedError) {
    throw new ControlRefusedError(err.message, { cause: err });
  }
  throw err;
};

/** The backend of the process that owns the store: the stack itself. */
export class InProcessBackend implements ControlBackend {
  constructor(
    private readonly stack: LocalStack,
    /** Closes the stack with the backend (a CLI command's own stack; not the owner's). */
    private readonly owned = false,
  ) {}

  describe(customer: string): string {
    return this.stack.models.get(customer)?.note ?? "";
  }

  customers(): string[] {
    return this.stack.opts.customers.map((c) => c.name);
  }

  submit(customer: string, fileName: string, body: Uint8Array): Promise<string> {
    if (!this.customers().includes(customer)) {
      throw new ControlRefusedError(`unknown customer "${customer}"; known: ${this.customers().join(", ")}`);
    }
    return this.stack.submitDurably(customer, fileName, body);
  }

  async runState(runId: string): Promise<RunState | undefined> {
    const run = await this.stack.ledger.getRun(runId);
    return run ? { run, settled: this.stack.isSettled(runId) } : undefined;
  }

  waitSettled(runId: string): Promise<RunRecord | undefined> {
    return this.stack.waitSettled(runId);
  }

  listRuns(): Promise<RunRecord[]> {
    return this.stack.ledger.listRuns();
  }

  getAudit(runId: string): Promise<AuditRecord[]> {
    return this.stack.ledger.getAudit(runId);
  }

  async runBundle(runId: string): Promise<RunBundle | undefined> {
    const ledger = this.stack.ledger;
    const run = await ledger.getRun(runId);
    if (!run) return undefined;
    const turns = await ledger.getTurns(runId);
    const approvalIds = turns.flatMap((t) =>
      t.dispositions.flatMap((d) => (d.kind === "approval" ? [d.approvalId] : [])),
    );
    const approvals = (await Promise.all(approvalIds.map((id) => ledger.getApproval(id)))).filter(
      (a): a is NonNullable<typeof a> => a !== undefined,
    );
    return { run, turns, toolCalls: await ledger.getToolCalls(runId), approvals };
  }

  async decide(approvalId: string, d: OperatorDecision): Promise<DecideOutcome> {
    const result = await this.stack.decideByOperator(approvalId, d.decision, d.by, d.comment, d.channel).catch(refusal);
    // The owner's execution is live and continues on the task token; a command's own stack has to
    // start it again (it replays up to the decision from the ledger). Started at most once.
    if (result.decided) await this.stack.resumeRuns((r) => r.runId === result.approval.runId);
    return { decided: result.decided, status: result.approval.status, runId: result.approval.runId };
  }

  async retry(runId: string, operator: string): Promise<RetryOutcome> {
    const r = await this.stack.retryRun(runId, operator).catch(refusal);
    return {
      runId: r.runId,
      executionName: r.executionName,
      turnsReused: r.turnsReused,
      toolResultsReused: r.toolResultsReused,
    };
  }

  async close(): Promise<void> {
    if (this.owned) await this.stack.close();
  }
}

/** The running owner of the data dir, through its control API (the owner file gives URL and key). */
export class HttpBackend implements ControlBackend {
  constructor(
    readonly url: string,
    private readonly key: string,
    private readonly known: string[],
    private readonly pollMs = 200,
  ) {}

  describe(): string {
    return `submitted to the running local stack at ${this.url}`;
  }

  customers(): string[] {
    return this.known;
  }

  async submit(customer: string, fileName: string, body: Uint8Array): Promise<string> {
    const r = await this.post<{ runId: string }>("/api/submit", {
      customer,
      fileName,
      contentBase64: Buffer.from(body).toString("base64"),
    });
    return r.runId;
  }

  runState(runId: string): Promise<RunState | undefined> {
    return this.get<RunState>(`/api/runs/${encodeURIComponent(runId)}`, true);
  }

  async waitSettled(runId: string): Promise<RunRecord | undefined> {
    for (;;) {
      const state = await this.runState(runId);
      if (state?.settled) return state.run;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  async listRuns(): Promise<RunRecord[]> {
    return (await this.get<RunRecord[]>("/api/runs")) ?? [];
  }

  async getAudit(runId: string): Promise<AuditRecord[]> {
    return (await this.get<AuditRecord[]>(`/api/runs/${encodeURIComponent(runId)}/audit`)) ?? [];
  }

  runBundle(runId: string): Promise<RunBundle | undefined> {
    return this.get<RunBundle>(`/api/runs/${encodeURIComponent(runId)}/bundle`, true);
  }

  decide(approvalId: string, d: OperatorDecision): Promise<DecideOutcome> {
    return this.post<DecideOutcome>(`/api/approvals/${encodeURIComponent(approvalId)}/decide`, {
      decision: d.decision,
      by: `cli:${d.by}`,
      ...(d.comment !== undefined ? { comment: d.comment } : {}),
    });
  }

  retry(runId: string, operator: string): Promise<RetryOutcome> {
    return this.post<RetryOutcome>(`/api/runs/${encodeURIComponent(runId)}/retry`, { operator });
  }

  async close(): Promise<void> {}

  /** Whether the owner answers at all (a stale or hung owner is named, never raced for the store). */
  async answers(): Promise<boolean> {
    try {
      const res = await this.fetch("/api/runs", { signal: AbortSignal.timeout(5000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  private fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set(KEY_HEADER, this.key);
    return fetch(`${this.url}${path}`, { ...init, headers });
  }

  private async get<T>(path: string, missingIsUndefined = false): Promise<T | undefined> {
    const res = await this.fetch(path);
    if (res.status === 404 && missingIsUndefined) return undefined;
    return this.answer<T>(path, res);
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    const res = await this.fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return this.answer<T>(path, res);
  }

  private async answer<T>(path: string, res: Response): Promise<T> {
    const text = await res.text();
    if (!res.ok) {
      let why = text;
      try {
        why = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // Not JSON: the text itself.
      }
      throw new ControlRefusedError(
        res.status === 400 || res.status === 409
          ? why.slice(0, 300)
          : `the running local stack refused ${path}: ${why.slice(0, 300)}`,
      );
    }
    return JSON.parse(text) as T;
  }
}

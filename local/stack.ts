import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SESv2Client } from "@aws-sdk/client-sesv2";
import type { SFNClient } from "@aws-sdk/client-sfn";
import { type ApprovalDeps, decide, type ResolvedApprovalDeps } from "../lambdas/shared/agent/approvals.js";
import { type AgentDeps, retryRun } from "../lambdas/shared/agent/core.js";
import { decisionValueOf } from "../lambdas/shared/approval/decision.js";
import { verifyApprovalLink } from "../lambdas/shared/approval/links.js";
import { DocumentStore } from "../lambdas/shared/aws/documents.js";
import { historyUsage } from "../lambdas/shared/aws/execution-history.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { ApprovalError } from "../lambdas/shared/errors.js";
import type { Ledger } from "../lambdas/shared/ledger/ledger.js";
import type { RunRecord } from "../lambdas/shared/ledger/records.js";
import { type McpToolset, openToolsets } from "../lambdas/shared/mcp/client.js";
import type { RetryPolicy } from "../lambdas/shared/model/retry.js";
import type { SelectedModel } from "../lambdas/shared/model/select.js";
import type { ModelRequest, ModelResponse } from "../lambdas/shared/model/types.js";
import { type ParseOptions, readDocument } from "../lambdas/shared/po/parse.js";
import { ALL_TOOLS } from "../lambdas/shared/tools/all.js";
import { InProcessBackend } from "./backend.js";
import { createDoor, type HttpHandler, listenHttp } from "./door.js";
import type { EventLog, LocalEngine } from "./engine.js";
import { ExecutionHistories } from "./execution-history.js";
import { Intake } from "./intake.js";
import { invokeLambda } from "./lambdas.js";
import { acquireOwner, type OwnerLock } from "./owner.js";
import { ParsePool } from "./parse-pool.js";
import { closeServer } from "./ports.js";
import {
  bucketFor,
  buildEngine,
  chooseModels,
  type FUNCTION_ROLES,
  localSfnClient,
  openClients,
  REGION,
  REPO_DIR,
  type RunEvent,
  type RuntimeFaults,
  SENDER,
} from "./runtime.js";
import { type LocalServices, startServices } from "./services.js";
import { TraceStore } from "./trace.js";

// The runtime's parts, re-exported: other code imports the stack's names from here.
export { IntakeError } from "./backend.js";
export {
  ASL_PATH,
  bucketFor,
  FUNCTION_ROLES,
  localFunctionArn,
  type RunEvent,
  type RuntimeFaults,
  TABLE_NAME,
} from "./runtime.js";

export interface LocalStackOptions {
  /** State kept across restarts (DynamoDB, S3, signing key). */
  dataDir: string;
  customers: CustomerConfig[];
  /** Port of the console / approval links / local Step Functions API. @default - a free port */
  httpPort?: number;
  /** Chooses the model per customer. @default - Anthropic when ANTHROPIC_API_KEY is set, else the offline reference model */
  model?: (customer: CustomerConfig) => SelectedModel;
  onEvent?: (event: RunEvent) => void;
  /** Retry waits in ms instead of the definition's backoff (tests). @default - the definition's */
  retryIntervalMs?: number;
  /** Model retry policy (tests and benchmarks shorten the waits). @default - DEFAULTS.modelRetry */
  modelRetry?: RetryPolicy;
  /** Fault hooks (durability tests and benchmark: test/support/faults.ts). @default - no faults */
  faults?: RuntimeFaults;
  /** Called for every model answer actually received (paid), before anything is stored. */
  onModelAnswer?: (customer: string, request: ModelRequest, response: ModelResponse) => void;
  /** What this process runs, recorded in the data dir's owner file (`start`, `mcp`, …). @default "stack" */
  command?: string;
  /**
   * Read documents in worker threads with a time and memory budget (parse-pool.ts). Long-running
   * processes (`start`, `mcp`) turn it on; a worker costs ~100 MiB and seconds of start-up, which
   * a one-shot command or a test does not need. @default false
   */
  parseInWorker?: boolean;
}

interface Tracked {
  runId: string;
  executionArn: string;
  done: Promise<void>;
  finished: boolean;
}

/**
 * The whole stack in one process, as a composition root: the emulators and clients with the
 * local Step Functions engine (runtime.ts) whose Lambda tasks run the agent core in this process
 * (lambdas.ts), one HTTP server for the console, the approval links and the APIs (door.ts), and
 * intake from the customers' buckets (intake.ts). This class owns the runs' executions.
 */
export class LocalStack {
  readonly ledger: Ledger;
  readonly s3: S3Client;
  readonly httpUrl: string;
  readonly models: Map<string, SelectedModel>;
  /** Per-run traces under <dataDir>/traces (po-agent trace, the console). */
  readonly traces: TraceStore;
  /** Executions' histories as GetExecutionHistory returns them (Finalize counts a run's cost from them). */
  readonly histories = new ExecutionHistories();
  readonly engine: LocalEngine;
  private readonly tracked = new Map<string, Tracked>();
  /** Runs whose approval request was sent and whose execution now waits on a task token. */
  private readonly parked = new Set<string>();
  /** The customers' MCP servers, connected on first use and kept until close(). */
  private readonly toolsets = new Map<string, Promise<McpToolset>>();
  private closed = false;
  /** This start's key for the console and APIs (see control.ts); the owner file carries it to the CLI. */
  readonly controlKey = randomBytes(24).toString("base64url");
  /** Documents are read in worker threads with a time and memory budget when parseInWorker is set. */
  private readonly parsing: ParsePool | undefined;
  private readonly intake: Intake;
  /** The door (door.ts): every request to the HTTP server once the stack exists. */
  private readonly handleHttp: HttpHandler;

  private constructor(
    readonly opts: LocalStackOptions,
    readonly services: LocalServices,
    private readonly server: Server,
    private readonly clients: { dynamodb: DynamoDBClient; ses: SESv2Client; sfn: SFNClient },
    private readonly signingKey: string,
    private readonly owner: OwnerLock,
    httpUrl: string,
    ledger: Ledger,
    s3: S3Client,
  ) {
    this.httpUrl = httpUrl;
    this.traces = new TraceStore(opts.dataDir);
    this.ledger = ledger;
    this.s3 = s3;
    this.models = chooseModels(opts);
    if (opts.parseInWorker) {
      this.parsing = new ParsePool();
      this.parsing.warm();
    }
    const host = {
      ledger,
      s3,
      sfn: clients.sfn,
      customers: opts.customers,
      customer: (name: string) => this.customer(name),
      customerForBucket: (bucket: string) => this.customerForBucket(bucket),
      deps: (customer: CustomerConfig) => this.deps(customer),
      parked: this.parked,
      onEvent: opts.onEvent,
    };
    this.engine = buildEngine({
      invoke: (role: keyof typeof FUNCTION_ROLES, payload: unknown) => invokeLambda(host, role, payload),
      onEvent: (arn, event) => this.onEngineEvent(arn, event),
      onTask: (arn, task) => this.histories.onTask(arn, task),
      ...(opts.retryIntervalMs !== undefined ? { retryIntervalMs: opts.retryIntervalMs } : {}),
    });
    this.intake = new Intake({
      ...host,
      startExecution: (customer, runId, bucket, key, size, versionId) =>
        this.startExecution(customer, runId, bucket, key, size, versionId),
      trackFinished: (runId) => this.track(runId, Promise.resolve()),
      isFinished: (runId) => this.tracked.get(runId)?.finished === true,
      isClosed: () => this.closed,
    });
    this.handleHttp = createDoor({
      httpUrl,
      controlKey: this.controlKey,
      sesEndpoint: services.sesEndpoint,
      ledger,
      s3,
      traces: this.traces,
      engine: this.engine,
      histories: this.histories,
      customer: (name) => this.customer(name),
      approvalDeps: (token) => this.approvalDepsFor(token),
      backend: new InProcessBackend(this),
      startNamedExecution: (name, input) => this.startNamedExecution(name, input),
    });
  }

  /** The wiring for an approval link: the customer of the approval it names (a bad link renders its reason). */
  private async approvalDepsFor(token: string): Promise<ApprovalDeps> {
    let customer = this.opts.customers[0] as CustomerConfig;
    try {
      const claims = verifyApprovalLink(this.signingKey, token, Math.floor(Date.now() / 1000));
      const record = await this.ledger.getApproval(claims.approvalId);
      if (record) customer = this.customer(record.customer);
    } catch {
      // handleApprovalRequest renders the precise reason.
    }
    return this.deps(customer);
  }

  /** Documents read in parse workers so far (0 without parseInWorker). */
  get documentsReadInWorkers(): number {
    return this.parsing?.completed ?? 0;
  }

  /** The console URL to print: it carries this start's key once, which the console turns into a cookie. */
  get consoleUrl(): string {
    return `${this.httpUrl}/?key=${this.controlKey}`;
  }

  static async start(opts: LocalStackOptions): Promise<LocalStack> {
    mkdirSync(opts.dataDir, { recursive: true });
    // The ledger, documents and task tokens live here: other local users may not read them.
    chmodSync(opts.dataDir, 0o700);
    const owner = acquireOwner(opts.dataDir, opts.command ?? "stack");
    let services: LocalServices;
    try {
      services = await startServices({
        dataDir: opts.dataDir,
        buckets: opts.customers.map((c) => bucketFor(c.name)),
      });
    } catch (err) {
      owner.release();
      throw err;
    }
    try {
      const { dynamodb, s3, ses, ledger, signingKey } = await openClients(services, opts.dataDir, opts.faults);
      // The server listens before the stack exists (the SFN client needs its URL) and answers 503 until then.
      let stack: LocalStack | undefined;
      const { server, httpUrl } = await listenHttp(opts.httpPort ?? 0, () => stack?.handleHttp);
      const sfn = localSfnClient(httpUrl, () => stack?.controlKey);
      stack = new LocalStack(opts, services, server, { dynamodb, ses, sfn }, signingKey, owner, httpUrl, ledger, s3);
      owner.update({ httpUrl, key: stack.controlKey });
      for (const d of stack.traces.damaged()) {
        opts.onEvent?.({
          type: "warning",
          message: `${d.file}: line(s) ${d.lines.slice(0, 5).join(", ")}${d.lines.length > 5 ? ", …" : ""} are not JSON; the run's timeline is shown without them (the file is kept: repair or move it away to silence this)`,
        });
      }
      const intake = stack.intake;
      services.onObjectCreated((e) => {
        intake.onObjectCreated(e.bucket, e.key, e.eTag).catch((err: unknown) => {
          opts.onEvent?.({ type: "skipped", customer: e.bucket, document: e.key, reason: String(err) });
        });
      });
      return stack;
    } catch (err) {
      await services.close();
      owner.release();
      throw err;
    }
  }

  customer(name: string): CustomerConfig {
    const c = this.opts.customers.find((x) => x.name === name);
    if (!c) throw new Error(`unknown customer "${name}"; known: ${this.opts.customers.map((x) => x.name).join(", ")}`);
    return c;
  }

  private customerForBucket(bucket: string): CustomerConfig | undefined {
    return this.opts.customers.find((c) => bucketFor(c.name) === bucket);
  }

  deps(customer: CustomerConfig): ResolvedApprovalDeps {
    const model = this.models.get(customer.name);
    const deps: AgentDeps = {
      ledger: this.ledger,
      documents: new DocumentStore(this.s3),
      customer,
      bucket: bucketFor(customer.name),
      model: model ? { client: model.client, modelId: model.modelId } : undefined,
      modelRetry: this.opts.modelRetry,
      telemetry: this.traces.telemetry(),
      mcp: () => this.toolset(customer),
      // Every lane runs in this process (a Lambda loads only its own lane's tools).
      tools: ALL_TOOLS,
      executionUsage: historyUsage(async () => this.clients.sfn),
      ...(this.parsing
        ? {
            readDocument: (bytes: Uint8Array, name: string, o: ParseOptions) =>
              this.parsing?.read(bytes, name, o) ?? readDocument(bytes, name, o),
          }
        : {}),
    };
    return {
      ...deps,
      ses: this.clients.ses,
      sfn: this.clients.sfn,
      senderEmail: SENDER,
      baseUrl: this.httpUrl,
      signingKey: this.signingKey,
    };
  }

  private toolset(customer: CustomerConfig): Promise<McpToolset> {
    let t = this.toolsets.get(customer.name);
    if (!t) {
      const faults = this.opts.faults;
      t = openToolsets(customer, { cwd: REPO_DIR, env: { PO_AGENT_DATA_DIR: this.opts.dataDir } }).then((opened) =>
        faults?.wrapMcpTools ? faults.wrapMcpTools(opened) : opened,
      );
      this.toolsets.set(customer.name, t);
    }
    return t;
  }

  private onEngineEvent(executionArn: string, event: EventLog): void {
    this.histories.onEvent(executionArn, event);
    this.traces.onEngineEvent(executionArn, event);
    const runId = executionArn.split(":").pop() ?? executionArn;
    if (event.type === "StateEntered" && "state" in event) {
      this.opts.onEvent?.({ type: "state", runId, state: event.state.name });
    }
  }

  /** `po-agent retry`: a failed run resumes from the ledger under a new execution (core retryRun). */
  async retryRun(runId: string, operator: string) {
    const retried = await retryRun({ ledger: this.ledger }, { runId, operator });
    const run = await this.ledger.requireRun(runId);
    const customer = this.customer(run.customer);
    const { bucket, key, size, versionId } = run.document;
    this.startExecution(customer, runId, bucket, key, size, versionId, retried.executionName);
    return retried;
  }

  private startExecution(
    customer: CustomerConfig,
    runId: string,
    bucket: string,
    key: string,
    size: number,
    versionId: string | undefined,
    executionName: string = runId,
  ): void {
    const current = this.tracked.get(runId);
    if (current && !current.finished) return;
    const input = {
      version: "0",
      "detail-type": "Object Created",
      source: "aws.s3",
      region: REGION,
      detail: { bucket: { name: bucket }, object: { key, size, "version-id": versionId ?? "" } },
    };
    try {
      this.launch(runId, input, customer.name, key, executionName);
    } catch (err) {
      if ((err as { name?: string }).name === "ExecutionAlreadyExists") return;
      throw err;
    }
  }

  /** StartExecution of the local Step Functions API (Ingest's child runs): started and tracked like an upload's. */
  private startNamedExecution(name: string, input: unknown): { executionArn: string } {
    const current = this.tracked.get(name);
    if (current && !current.finished) {
      throw Object.assign(new Error(`Execution Already Exists: '${current.executionArn}'`), {
        name: "ExecutionAlreadyExists",
      });
    }
    const detail = (input as { detail?: { bucket?: { name?: string }; object?: { key?: string } } }).detail;
    const customer = this.customerForBucket(detail?.bucket?.name ?? "")?.name ?? "(unknown)";
    return this.launch(name, input, customer, detail?.object?.key ?? "");
  }

  private launch(
    runId: string,
    input: unknown,
    customer: string,
    key: string,
    executionName: string = runId,
  ): { executionArn: string } {
    const started = this.engine.startExecution({ name: executionName, input });
    this.opts.onEvent?.({ type: "started", runId, customer, document: key });
    const done = started.result.then(async (result) => {
      if (this.closed) return;
      const run = await this.ledger.getRun(runId).catch(() => undefined);
      this.opts.onEvent?.({
        type: "finished",
        runId,
        status: run?.status ?? result.status,
        reason: run?.reason ?? result.cause,
      });
    });
    this.track(runId, done, started.executionArn);
    return { executionArn: started.executionArn };
  }

  private track(runId: string, done: Promise<void>, executionArn = ""): void {
    const t: Tracked = { runId, executionArn, done, finished: false };
    t.done = done.finally(() => {
      t.finished = true;
    });
    this.tracked.set(runId, t);
  }

  /** Delivers the S3 event for an object again (EventBridge delivers at least once). */
  redeliver(customerName: string, fileName: string): Promise<void> {
    return this.intake.redeliver(customerName, fileName);
  }

  /** Drops a file into the customer's intake bucket, as a user or an upstream system would. */
  submit(customerName: string, fileName: string, body: Uint8Array): Promise<string> {
    return this.intake.submit(customerName, fileName, body);
  }

  /** Submits and returns only once the run record exists (intake.ts); throws IntakeError otherwise. */
  submitDurably(customerName: string, fileName: string, body: Uint8Array, timeoutMs = 60_000): Promise<string> {
    return this.intake.submitDurably(customerName, fileName, body, timeoutMs);
  }

  /** Starts every stored upload that has no run yet (intake.ts). Returns the run ids started. */
  recoverIntake(): Promise<string[]> {
    return this.intake.recoverIntake();
  }

  /** Restarts the executions of runs that were running or waiting when the process stopped (and, unfiltered, unstarted uploads). */
  async resumeRuns(filter?: (run: RunRecord) => boolean): Promise<RunRecord[]> {
    // A full resume also starts uploads that never got a run (the process stopped before Ingest).
    if (!filter) await this.recoverIntake();
    const runs = (await this.ledger.listRuns()).filter(
      (r) => (r.status === "running" || r.status === "awaiting_approval") && (filter?.(r) ?? true),
    );
    for (const r of runs) {
      const customer = this.opts.customers.find((c) => c.name === r.customer);
      if (!customer) continue;
      this.startExecution(customer, r.runId, r.document.bucket, r.document.key, r.document.size, r.document.versionId);
    }
    return runs;
  }

  /** True when the run's execution finished or is parked on a task token (waiting for a human). */
  isSettled(runId: string): boolean {
    const t = this.tracked.get(runId);
    if (!t) return false;
    if (t.finished) return true;
    return this.parked.has(runId) && this.engine.pendingTasks().some((p) => p.executionArn === t.executionArn);
  }

  /** Waits until the run has settled (finished or waiting for approval). */
  async waitSettled(runId: string, timeoutMs = 120_000): Promise<RunRecord | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isSettled(runId)) {
      if (Date.now() > deadline) throw new Error(`run ${runId} did not settle within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.ledger.getRun(runId);
  }

  /** Waits until every run this process knows of has settled. */
  async waitAllSettled(timeoutMs = 300_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = [...this.tracked.keys()].filter((id) => !this.isSettled(id));
      if (open.length === 0) return;
      if (Date.now() > deadline) throw new Error(`runs did not settle within ${timeoutMs} ms: ${open.join(", ")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  trackedRunIds(): string[] {
    return [...this.tracked.keys()];
  }

  /** `po-agent approve|reject`: the same decision path as the email link, attributed to the operator. */
  /**
   * `po-agent approve|reject` and the console: an operator override through the one decide() path
   * (off unless the customer config enables operatorOverride). A refusal is an ApprovalError naming why.
   */
  async decideByOperator(
    approvalId: string,
    decision: unknown,
    by: string,
    comment?: string,
    channel: "cli" | "console" = "cli",
  ) {
    const approval = await this.ledger.getApproval(approvalId);
    if (!approval) throw new ApprovalError(`no approval with id ${approvalId}`);
    const result = await decide(
      { ledger: this.ledger, sfn: this.clients.sfn, customer: this.customer(approval.customer) },
      { approvalId, decision: decisionValueOf(decision), decider: { via: "operator", operator: by, channel }, comment },
    );
    if (result.refused && !/^the approval is |^someone decided it first/.test(result.refused)) {
      throw new ApprovalError(`approval ${approvalId} not decided: ${result.refused}`);
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.engine.abortAll();
    await this.parsing?.close();
    await Promise.all([...this.toolsets.values()].map((t) => t.then((x) => x.close()).catch(() => {})));
    await closeServer(this.server);
    await this.services.close();
    for (const c of Object.values(this.clients)) c.destroy();
    this.s3.destroy();
    this.owner?.release();
  }
}

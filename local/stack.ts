import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SESv2Client } from "@aws-sdk/client-sesv2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { z } from "zod";
import { APPROVAL_LINK_PATH, approvalRoutes } from "../lambdas/approval-callback/routes.js";
import {
  ApprovalClockInput,
  type ApprovalDeps,
  approvalClock,
  approvalLinks,
  approverIndexOf,
  decide,
  decisionValueOf,
  RequestApprovalInput,
  requestApproval,
} from "../lambdas/shared/agent/approvals.js";
import {
  type AgentDeps,
  finalize,
  orchestrate,
  recordFailure,
  retryRun,
  runIdFor,
  runTool,
} from "../lambdas/shared/agent/core.js";
import { ingestDocument, sfnChildStarter } from "../lambdas/shared/agent/fanout.js";
import { verifyApprovalLink } from "../lambdas/shared/approval/links.js";
import { DocumentStore } from "../lambdas/shared/aws/documents.js";
import { historyUsage } from "../lambdas/shared/aws/execution-history.js";
import { ROLE_OF_PLACEHOLDER } from "../lambdas/shared/catalogue.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { ApprovalError, ConfigError } from "../lambdas/shared/errors.js";
import { Ledger, sha256 } from "../lambdas/shared/ledger/ledger.js";
import type { RunRecord } from "../lambdas/shared/ledger/records.js";
import { type McpToolset, openToolsets } from "../lambdas/shared/mcp/client.js";
import { ReferenceModelClient } from "../lambdas/shared/model/reference.js";
import type { RetryPolicy } from "../lambdas/shared/model/retry.js";
import { type SelectedModel, selectModelClient } from "../lambdas/shared/model/select.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../lambdas/shared/model/types.js";
import { type ParseOptions, readDocument } from "../lambdas/shared/po/parse.js";
import { pdfTextLines } from "../lambdas/shared/po/pdf.js";
import { Step, ToolCallRef } from "../lambdas/shared/steps.js";
import { ALL_TOOLS } from "../lambdas/shared/tools/all.js";
import { meterDynamoDb, meterS3, withUsage } from "../lambdas/shared/usage-meter.js";
import { controlRoutes } from "./api-routes.js";
import { InProcessBackend, IntakeError } from "./backend.js";
import { handleConsoleRequest } from "./console/index.js";
import {
  checkRequest,
  type DoorOptions,
  exchangeKeyForCookie,
  KEY_HEADER,
  refuse,
  SECURITY_HEADERS,
} from "./control.js";
import { type EventLog, type LambdaRoute, LocalEngine, substitute } from "./engine.js";
import { ExecutionHistories } from "./execution-history.js";
import { acquireOwner, type OwnerLock } from "./owner.js";
import { ParsePool } from "./parse-pool.js";
import { closeServer, LOOPBACK, listen } from "./ports.js";
import { type LocalServices, startServices } from "./services.js";
import { createSfnApiHandler } from "./sfn-api.js";
import { TraceStore } from "./trace.js";

export const ASL_PATH = fileURLToPath(new URL("../statemachines/agent.asl.json", import.meta.url));
export const TABLE_NAME = "po-agent-ledger";
const REGION = "us-east-1";
const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:000000000000:stateMachine:PoAgent-local`;
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };
const SENDER = "po-agent@local.test";

/** The Lambda roles of the state machine, by their placeholder in the ASL file (from the catalogue). */
export const FUNCTION_ROLES = ROLE_OF_PLACEHOLDER;

/** Where stdio MCP servers of the customer configs start (their paths are relative to the repository). */
const REPO_DIR = fileURLToPath(new URL("../", import.meta.url));

export const localFunctionArn = (role: string) =>
  `arn:aws:lambda:${REGION}:000000000000:function:PoAgent-local-${role}`;
export const bucketFor = (customer: string) => `po-agent-${customer}`;

export type RunEvent =
  | { type: "started"; runId: string; customer: string; document: string }
  | { type: "state"; runId: string; state: string }
  | {
      type: "awaiting_approval";
      runId: string;
      approvalId: string;
      approveUrl: string;
      rejectUrl: string;
      approver: string;
    }
  | { type: "finished"; runId: string; status: string; reason?: string }
  | { type: "skipped"; customer: string; document: string; reason: string }
  /** Something under the data dir the user should know about (one line, names the file). */
  | { type: "warning"; message: string };

/**
 * Where a test or benchmark may inject faults into the runtime's clients (test/support/faults.ts
 * implements them with seeded draws). The runtime carries these hooks, not the machinery behind them.
 */
export interface RuntimeFaults {
  /** Wraps the document reads (a missing object, decided per key). */
  hideDocuments(s3: S3Client): void;
  /** Wraps the ledger's client (throttling inside the SDK's retries). */
  throttleDynamo(dynamodb: DynamoDBClient): void;
  /** Decides the core's crash points (a SIGKILL of this process). */
  installCrashes(): void;
  /** Wraps a customer's model client; `onPaid` sees every answer actually received. */
  wrapModel(inner: ModelClient, onPaid?: (request: ModelRequest, response: ModelResponse) => void): ModelClient;
}

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
 * The whole stack in one process: emulated S3, DynamoDB and SES, the local Step Functions
 * engine running statemachines/agent.asl.json, the agent core as in-process "Lambdas", and one
 * HTTP server for the console, the approval links and the Step Functions callback API.
 */
export class LocalStack {
  readonly ledger: Ledger;
  readonly s3: S3Client;
  readonly httpUrl: string;
  readonly models = new Map<string, SelectedModel>();
  /** Per-run traces under <dataDir>/traces (po-agent trace, the console). */
  readonly traces: TraceStore;
  /** Executions' histories as GetExecutionHistory returns them (Finalize counts a run's cost from them). */
  readonly histories = new ExecutionHistories();
  private readonly tracked = new Map<string, Tracked>();
  /** Runs whose approval request was sent and whose execution now waits on a task token. */
  private readonly parked = new Set<string>();
  /** The customers' MCP servers, connected on first use and kept until close(). */
  private readonly toolsets = new Map<string, Promise<McpToolset>>();
  private closed = false;
  /** This start's key for the console and APIs (see control.ts); the owner file carries it to the CLI. */
  readonly controlKey = randomBytes(24).toString("base64url");
  private owner: OwnerLock | undefined;
  /** Documents are read in worker threads with a time and memory budget when parseInWorker is set. */
  private parsing: ParsePool | undefined;
  /** The approval links (the approval-callback Lambda's routes) and the control API, behind the door. */
  private readonly routes: (req: IncomingMessage, res: ServerResponse) => Promise<void>;

  private constructor(
    readonly opts: LocalStackOptions,
    readonly services: LocalServices,
    private readonly server: Server,
    readonly engine: LocalEngine,
    private readonly clients: { dynamodb: DynamoDBClient; ses: SESv2Client; sfn: SFNClient },
    private readonly signingKey: string,
    httpUrl: string,
    ledger: Ledger,
    s3: S3Client,
  ) {
    this.httpUrl = httpUrl;
    this.traces = new TraceStore(opts.dataDir);
    this.ledger = ledger;
    this.s3 = s3;
    const app = new Hono();
    app.route("/", approvalRoutes({ deps: (token) => this.approvalDepsFor(token) }));
    app.route("/", controlRoutes(new InProcessBackend(this)));
    app.notFound((c) => c.text("not found", 404));
    // overrideGlobalObjects: false keeps Node's own Request/Response for the rest of the process.
    const listener = getRequestListener(app.fetch, { overrideGlobalObjects: false });
    this.routes = async (req, res) => {
      await listener(req, res);
    };
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
      const dynamodb = new DynamoDBClient({
        region: REGION,
        endpoint: services.dynamodbEndpoint,
        credentials: CREDENTIALS,
      });
      const s3 = new S3Client({
        region: REGION,
        endpoint: services.s3Endpoint,
        credentials: CREDENTIALS,
        forcePathStyle: true,
      });
      const ses = new SESv2Client({ region: REGION, endpoint: services.sesEndpoint, credentials: CREDENTIALS });
      // Injected faults see the key as the core asked for it, before the local version rewrite.
      opts.faults?.hideDocuments(s3);
      emulateObjectVersions(s3);
      meterDynamoDb(dynamodb);
      meterS3(s3);
      opts.faults?.throttleDynamo(dynamodb);
      opts.faults?.installCrashes();
      await ensureTable(dynamodb);
      const ledger = new Ledger(dynamodb, TABLE_NAME);
      const signingKey = loadSigningKey(opts.dataDir);

      // The engine is built after the server so its routes can close over the stack.
      let stack: LocalStack | undefined;
      const server = createServer((req, res) => {
        if (!stack) {
          res.writeHead(503).end("starting");
          return;
        }
        stack.handleHttp(req, res).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
          res.end(`internal error: ${err instanceof Error ? err.message : String(err)}`);
        });
      });
      const port = await listen(server, opts.httpPort ?? 0);
      const httpUrl = `http://${LOOPBACK}:${port}`;
      const sfn = new SFNClient({ region: REGION, endpoint: httpUrl, credentials: CREDENTIALS });
      sfn.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers && stack) request.headers[KEY_HEADER] = stack.controlKey;
          return next(args);
        },
        { step: "build", name: "poAgentLocalKey" },
      );

      const routes: Record<string, LambdaRoute> = {};
      const holder: { stack?: LocalStack } = {};
      for (const [placeholder, role] of Object.entries(FUNCTION_ROLES)) {
        routes[localFunctionArn(role)] = (payload) => {
          if (!holder.stack) throw new Error("local stack not started");
          // Metered as the handler wrapper meters a Lambda: the usage rides into the history.
          const stack = holder.stack;
          return withUsage(() => stack.invoke(placeholder as keyof typeof FUNCTION_ROLES, payload));
        };
      }
      const substitutions = Object.fromEntries(
        Object.entries(FUNCTION_ROLES).map(([p, role]) => [p, localFunctionArn(role)]),
      );
      const engine = new LocalEngine({
        definition: substitute(readFileSync(ASL_PATH, "utf8"), substitutions),
        routes,
        onEvent: (arn, event) => holder.stack?.onEngineEvent(arn, event),
        onTask: (arn, task) => holder.stack?.histories.onTask(arn, task),
        ...(opts.retryIntervalMs !== undefined ? { retryIntervalOverrides: opts.retryIntervalMs } : {}),
        stateMachineArn: STATE_MACHINE_ARN,
      });
      stack = new LocalStack(opts, services, server, engine, { dynamodb, ses, sfn }, signingKey, httpUrl, ledger, s3);
      holder.stack = stack;
      stack.owner = owner;
      if (opts.parseInWorker) {
        stack.parsing = new ParsePool();
        stack.parsing.warm();
      }
      owner.update({ httpUrl, key: stack.controlKey });
      for (const d of stack.traces.damaged()) {
        opts.onEvent?.({
          type: "warning",
          message: `${d.file}: line(s) ${d.lines.slice(0, 5).join(", ")}${d.lines.length > 5 ? ", …" : ""} are not JSON; the run's timeline is shown without them (the file is kept: repair or move it away to silence this)`,
        });
      }
      for (const c of opts.customers) {
        const chosen = opts.model?.(c) ?? defaultModel(c);
        const onPaid = opts.onModelAnswer
          ? (rq: ModelRequest, rs: ModelResponse) => opts.onModelAnswer?.(c.name, rq, rs)
          : undefined;
        const client = opts.faults
          ? opts.faults.wrapModel(chosen.client, onPaid)
          : onPaid
            ? observeAnswers(chosen.client, onPaid)
            : chosen.client;
        stack.models.set(c.name, { ...chosen, client });
      }
      services.onObjectCreated((e) => {
        stack?.onObjectCreated(e.bucket, e.key, e.eTag).catch((err: unknown) => {
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

  deps(customer: CustomerConfig): ApprovalDeps {
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
      t = openToolsets(customer, { cwd: REPO_DIR, env: { PO_AGENT_DATA_DIR: this.opts.dataDir } });
      this.toolsets.set(customer.name, t);
    }
    return t;
  }

  private async customerOfRun(runId: string): Promise<CustomerConfig> {
    const run = await this.ledger.requireRun(runId);
    return this.customer(run.customer);
  }

  /** The in-process "Lambdas": the same core functions the AWS handlers call. */
  private async invoke(role: keyof typeof FUNCTION_ROLES, payload: unknown): Promise<unknown> {
    const p = (payload ?? {}) as Record<string, unknown>;
    switch (role) {
      case "IngestFunctionArn": {
        const input = z
          .object({
            bucket: z.string(),
            key: z.string(),
            versionId: z.string().optional(),
            executionId: z.string(),
            stateMachineArn: z.string().optional(),
          })
          .parse(p);
        const customer = this.customerForBucket(input.bucket);
        if (!customer) throw new Error(`no customer owns bucket ${input.bucket}`);
        // Children of a multi-PO document are started through the (local) Step Functions API, as in AWS.
        return ingestDocument({ ...this.deps(customer), startChild: sfnChildStarter(this.clients.sfn) }, input);
      }
      case "OrchestrateFunctionArn": {
        const input = z.object({ runId: z.string() }).parse(p);
        this.parked.delete(input.runId);
        return orchestrate(this.deps(await this.customerOfRun(input.runId)), input);
      }
      case "ExtractFunctionArn":
      case "ValidateFunctionArn":
      case "TransformFunctionArn":
      case "SaveFunctionArn":
      case "McpToolFunctionArn": {
        const input = z.object({ runId: z.string(), call: ToolCallRef }).parse(p);
        return runTool(this.deps(await this.customerOfRun(input.runId)), input);
      }
      case "RequestApprovalFunctionArn": {
        const input = RequestApprovalInput.parse(p);
        const deps = this.deps(await this.customerOfRun(input.runId));
        const result = await requestApproval(deps, input);
        await this.announceApproval(deps, input.runId, input.approvalId, input.stage);
        this.parked.add(input.runId);
        return result;
      }
      case "ApprovalTimeoutFunctionArn": {
        const input = ApprovalClockInput.parse(p);
        return approvalClock(this.deps(await this.customerOfRun(input.runId)), input);
      }
      case "FinalizeFunctionArn": {
        const input = z.object({ runId: z.string(), step: Step }).parse(p);
        return finalize(this.deps(await this.customerOfRun(input.runId)), input);
      }
      case "RecordFailureFunctionArn": {
        const state = (p.state ?? {}) as { run?: { runId?: string }; detail?: { bucket?: { name?: string } } };
        const customer = state.run?.runId
          ? await this.customerOfRun(state.run.runId).catch(() => undefined)
          : this.customerForBucket(state.detail?.bucket?.name ?? "");
        return recordFailure(this.deps(customer ?? (this.opts.customers[0] as CustomerConfig)), { state: p.state });
      }
    }
  }

  private async announceApproval(deps: ApprovalDeps, runId: string, approvalId: string, stage: number): Promise<void> {
    const approval = await this.ledger.getApproval(approvalId);
    if (approval?.status !== "pending") return;
    const approverId = approval.approvers[approverIndexOf(stage, approval.approvers.length)] ?? "";
    const links = approvalLinks(deps, approval, approverId);
    this.opts.onEvent?.({
      type: "awaiting_approval",
      runId,
      approvalId,
      approveUrl: links.approveUrl,
      rejectUrl: links.rejectUrl,
      approver: deps.customer.approvers.find((a) => a.id === approverId)?.email ?? approverId,
    });
  }

  private onEngineEvent(executionArn: string, event: EventLog): void {
    this.histories.onEvent(executionArn, event);
    this.traces.onEngineEvent(executionArn, event);
    const runId = executionArn.split(":").pop() ?? executionArn;
    if (event.type === "StateEntered" && "state" in event) {
      this.opts.onEvent?.({ type: "state", runId, state: event.state.name });
    }
  }

  /**
   * S3 put under incoming/ → a run, as EventBridge would start an execution in AWS. The event's
   * ETag (MD5 of the bytes) plays the object version: the bytes read are the bytes announced,
   * even when another upload replaced the key in between.
   */
  private async onObjectCreated(bucket: string, key: string, eTag?: string): Promise<void> {
    if (!key.startsWith("incoming/")) return;
    const customer = this.customerForBucket(bucket);
    if (!customer) return;
    const announced = eTag?.replace(/"/g, "");
    let bytes = announced ? await this.readObject(bucket, versionKey(key, announced)) : undefined;
    if (!bytes) {
      const current = await this.readObject(bucket, key);
      if (!current) return;
      if (announced && md5(current) !== announced) {
        this.opts.onEvent?.({
          type: "skipped",
          customer: customer.name,
          document: key,
          reason: "replaced by another upload before it could be read (upload through po-agent to keep every version)",
        });
        return;
      }
      bytes = current;
      await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: versionKey(key, md5(bytes)), Body: bytes }));
    }
    const versionId = md5(bytes);
    const runId = runIdFor(customer.name, sha256(bytes));
    const existing = await this.ledger.getRun(runId);
    if (existing && ["saved", "rejected", "failed", "split"].includes(existing.status)) {
      this.opts.onEvent?.({
        type: "skipped",
        customer: customer.name,
        document: key,
        reason: `same bytes as run ${runId} (${existing.status}); not processed again`,
      });
      this.track(runId, Promise.resolve());
      return;
    }
    this.startExecution(customer, runId, bucket, key, bytes.byteLength, versionId);
  }

  private async readObject(bucket: string, key: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await res.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  /** Delivers the S3 event for an object again (EventBridge delivers at least once). */
  async redeliver(customerName: string, fileName: string): Promise<void> {
    await this.onObjectCreated(bucketFor(customerName), `incoming/${basename(fileName)}`);
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

  /** Drops a file into the customer's intake bucket, as a user or an upstream system would. */
  async submit(customerName: string, fileName: string, body: Uint8Array): Promise<string> {
    const customer = this.customer(customerName);
    const key = `incoming/${basename(fileName)}`;
    // The immutable copy first (local stand-in for the object version), then the upload that fires the event.
    await this.s3.send(
      new PutObjectCommand({ Bucket: bucketFor(customer.name), Key: versionKey(key, md5(body)), Body: body }),
    );
    await this.s3.send(new PutObjectCommand({ Bucket: bucketFor(customer.name), Key: key, Body: body }));
    return runIdFor(customer.name, sha256(body));
  }

  /**
   * Submits and returns only once the run record exists (Ingest ran), so an acknowledged document
   * is never lost with this process; throws IntakeError when no run opened in time (the document
   * stays stored and is started by the next start's intake scan).
   */
  async submitDurably(customerName: string, fileName: string, body: Uint8Array, timeoutMs = 60_000): Promise<string> {
    const runId = await this.submit(customerName, fileName, body);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.ledger.getRun(runId)) return runId;
      if (this.closed) throw new IntakeError(`stopped before run ${runId} was opened; it starts on the next start`);
      if (this.tracked.get(runId)?.finished && !(await this.ledger.getRun(runId))) {
        throw new IntakeError(`run ${runId} could not be opened (see the console); the document is kept`);
      }
      if (Date.now() > deadline) {
        throw new IntakeError(
          `run ${runId} was not opened within ${timeoutMs} ms; the document is kept and starts on the next start`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Starts every stored upload that has no run yet, as a redelivered EventBridge event would: an
   * upload whose process stopped before Ingest ran is not lost. Returns the run ids started.
   */
  async recoverIntake(): Promise<string[]> {
    const started: string[] = [];
    for (const customer of this.opts.customers) {
      const bucket = bucketFor(customer.name);
      const keys = await listKeys(this.s3, bucket, "versions/");
      const seen = new Set<string>();
      for (const versionedKey of keys) {
        const m = /^versions\/([0-9a-f]{32})\/(.+)$/.exec(versionedKey);
        if (!m?.[1] || !m[2]) continue;
        const bytes = await this.readObject(bucket, versionedKey);
        if (!bytes) continue;
        const runId = runIdFor(customer.name, sha256(bytes));
        if (seen.has(runId) || (await this.ledger.getRun(runId))) continue;
        seen.add(runId);
        await this.onObjectCreated(bucket, `incoming/${m[2]}`, m[1]);
        started.push(runId);
      }
      // Objects put straight into incoming/ (not through po-agent) have no version copy until read.
      for (const key of await listKeys(this.s3, bucket, "incoming/")) {
        const bytes = await this.readObject(bucket, key);
        if (!bytes) continue;
        const runId = runIdFor(customer.name, sha256(bytes));
        if (seen.has(runId) || (await this.ledger.getRun(runId))) continue;
        seen.add(runId);
        await this.onObjectCreated(bucket, key, md5(bytes));
        started.push(runId);
      }
    }
    return started;
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

  private door(): DoorOptions {
    return {
      port: Number(new URL(this.httpUrl).port),
      key: this.controlKey,
      // Signed approval links (the emails) carry their own credential.
      selfAuthenticating: (path) => APPROVAL_LINK_PATH.test(path),
    };
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const door = this.door();
    const verdict = checkRequest(req, door);
    if (!verdict.ok) {
      // The key in the console URL becomes the cookie; anything else without a key is refused.
      if (verdict.status === 401 && exchangeKeyForCookie(req, res, door)) return;
      refuse(res, verdict);
      return;
    }
    if (exchangeKeyForCookie(req, res, door)) return;
    const url = new URL(req.url ?? "/", this.httpUrl);
    if (req.method === "POST" && req.headers["x-amz-target"]) {
      // The task API is for holders of the key (the SDK clients add it); a signed link's path is no way in.
      if (!verdict.authenticated) {
        refuse(res, { ok: false, status: 401, message: "the Step Functions API needs the key of the running process" });
        return;
      }
      createSfnApiHandler(this.engine, {
        stateMachineArn: STATE_MACHINE_ARN,
        startExecution: (name, input) => this.startNamedExecution(name, input),
        executionHistory: (arn) => this.histories.history(arn),
      })(req, res);
      return;
    }
    if (url.pathname.startsWith("/api/") || APPROVAL_LINK_PATH.test(url.pathname)) {
      await this.routes(req, res);
      return;
    }
    const served = await handleConsoleRequest(
      {
        ledger: this.ledger,
        traces: this.traces,
        httpUrl: this.httpUrl,
        sesEndpoint: this.services.sesEndpoint,
        approverOf: (a) => {
          const approverId = a.approvers[0] ?? "";
          return this.customer(a.customer).approvers.find((x) => x.id === approverId)?.email ?? approverId;
        },
        loadResult: async (run, key) =>
          new TextDecoder().decode(await new DocumentStore(this.s3).get(bucketFor(run.customer), key)),
        loadDocument: (run) => this.documentText(run),
      },
      req,
      res,
    );
    if (served) return;
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }

  /** The run's original bytes as text for the console: a PDF's text layer, a note for other binaries. */
  private async documentText(run: RunRecord): Promise<{ text?: string; note?: string }> {
    const { bucket, key, versionId } = run.document;
    const res = await this.s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
    );
    const bytes = (await res.Body?.transformToByteArray()) ?? new Uint8Array();
    if (Buffer.from(bytes.subarray(0, 5)).toString("latin1") === "%PDF-") {
      const lines = await pdfTextLines(bytes);
      return lines.length
        ? { text: lines.join("\n"), note: "PDF, text layer" }
        : { note: "a PDF without a text layer (a scan)" };
    }
    if (bytes.subarray(0, 8192).includes(0)) return { note: `a binary document (${bytes.byteLength} bytes)` };
    return { text: new TextDecoder().decode(bytes) };
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

export { IntakeError } from "./backend.js";

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

const versionKey = (key: string, versionId: string) => `versions/${versionId}/${basename(key)}`;
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/**
 * Local stand-in for S3 object versions: a read with a VersionId goes to the immutable copy made
 * when the object arrived. Core code stays as in AWS (GetObject with VersionId).
 */
function emulateObjectVersions(s3: S3Client): void {
  s3.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Key?: string; VersionId?: string };
      if (input.VersionId !== undefined) {
        const local = { ...args.input, VersionId: undefined } as typeof args.input;
        if (input.VersionId && input.Key) Object.assign(local, { Key: versionKey(input.Key, input.VersionId) });
        return next({ ...args, input: local });
      }
      return next(args);
    },
    { step: "initialize", name: "poAgentLocalVersions", priority: "high" },
  );
}

/** Reports every answer a model client returns (the benchmark's billing log). */
function observeAnswers(inner: ModelClient, onPaid: (rq: ModelRequest, rs: ModelResponse) => void): ModelClient {
  return {
    provider: inner.provider,
    async create(request) {
      const response = await inner.create(request);
      onPaid(request, response);
      return response;
    },
  };
}

function defaultModel(customer: CustomerConfig): SelectedModel {
  return selectModelClient({
    provider: customer.model.provider,
    modelId: customer.model.id,
    apiKey: process.env.ANTHROPIC_API_KEY,
    baseURL: customer.model.baseURL ?? process.env.ANTHROPIC_BASE_URL,
    reference: () => new ReferenceModelClient(),
  });
}

async function ensureTable(dynamodb: DynamoDBClient): Promise<void> {
  const status = async () => {
    try {
      return (await dynamodb.send(new DescribeTableCommand({ TableName: TABLE_NAME }))).Table?.TableStatus ?? "MISSING";
    } catch (err) {
      if ((err as { name?: string }).name === "ResourceNotFoundException") return "MISSING";
      throw err;
    }
  };
  const waitActive = async () => {
    for (let i = 0; i < 100; i++) {
      const st = await status();
      if (st === "ACTIVE") return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  const current = await status();
  if (current === "ACTIVE") return;
  if (current !== "MISSING") {
    // A process killed while the table was being created leaves it CREATING for ever (dynalite
    // finishes creation on a timer); it can hold no data yet, so start it again.
    if (await waitActive()) return;
    await dynamodb.send(new DeleteTableCommand({ TableName: TABLE_NAME }));
    for (let i = 0; i < 100 && (await status()) !== "MISSING"; i++) await new Promise((r) => setTimeout(r, 20));
  }
  await createTable(dynamodb);
  if (!(await waitActive())) throw new Error(`local table ${TABLE_NAME} did not become ACTIVE`);
}

async function createTable(dynamodb: DynamoDBClient): Promise<void> {
  // Same key schema as lib/ledger.ts deploys.
  await dynamodb.send(
    new CreateTableCommand({
      TableName: TABLE_NAME,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
        { AttributeName: "gsi1pk", AttributeType: "S" },
        { AttributeName: "gsi1sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "gsi1",
          KeySchema: [
            { AttributeName: "gsi1pk", KeyType: "HASH" },
            { AttributeName: "gsi1sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    }),
  );
}

/** Shortest approval signing key accepted (characters; the generated one has 64 hex digits). */
const MIN_SIGNING_KEY_CHARS = 32;

/** A generated HMAC key for approval links, kept under the data dir (Secrets Manager in AWS). */
function loadSigningKey(dataDir: string): string {
  const path = join(dataDir, "approval-signing.key");
  if (existsSync(path)) {
    const key = readFileSync(path, "utf8").trim();
    // A short or empty key would fail every waiting run's link check; refuse to start instead.
    if (key.length < MIN_SIGNING_KEY_CHARS) {
      throw new ConfigError(
        `${path} holds a ${key.length}-character key; approval links need at least ${MIN_SIGNING_KEY_CHARS} (restore the original file; a new key would invalidate every link already sent)`,
      );
    }
    return key;
  }
  const key = randomBytes(32).toString("hex");
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return key;
}

/**
 * The local runtime's services: the SDK clients of the emulators (with the local object-version
 * rewrite, usage meters and fault hooks), the ledger table, the approval signing key, the models
 * per customer and the Step Functions engine whose Lambda tasks run in this process.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SESv2Client } from "@aws-sdk/client-sesv2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { ROLE_OF_PLACEHOLDER } from "../lambdas/shared/catalogue.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { ConfigError } from "../lambdas/shared/errors.js";
import { Ledger } from "../lambdas/shared/ledger/ledger.js";
import { ApprovalStatus, RunStatus } from "../lambdas/shared/ledger/records.js";
import type { McpToolset } from "../lambdas/shared/mcp/client.js";
import { ReferenceModelClient } from "../lambdas/shared/model/reference.js";
import { type SelectedModel, selectModelClient } from "../lambdas/shared/model/select.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../lambdas/shared/model/types.js";
import { meterDynamoDb, meterS3, withUsage } from "../lambdas/shared/usage-meter.js";
import { KEY_HEADER } from "./control.js";
import { type EventLog, type LambdaRoute, LocalEngine, substitute, type TaskAttempt } from "./engine.js";
import { reindexLedger } from "./reindex.js";
import type { LocalServices } from "./services.js";

export const ASL_PATH = fileURLToPath(new URL("../statemachines/agent.asl.json", import.meta.url));
export const TABLE_NAME = "po-agent-ledger";
export const REGION = "us-east-1";
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:000000000000:stateMachine:PoAgent-local`;
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };
export const SENDER = "po-agent@local.test";

/** The Lambda roles of the state machine, by their placeholder in the ASL file (from the catalogue). */
export const FUNCTION_ROLES = ROLE_OF_PLACEHOLDER;

/** Where stdio MCP servers of the customer configs start (their paths are relative to the repository). */
export const REPO_DIR = fileURLToPath(new URL("../", import.meta.url));

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
  /** Wraps a customer's mounted MCP tools (a Lambda dying after the server answered). @default - as opened */
  wrapMcpTools?(toolset: McpToolset): McpToolset;
}

/** The emulators' clients and the ledger on them. */
export interface RuntimeClients {
  dynamodb: DynamoDBClient;
  s3: S3Client;
  ses: SESv2Client;
  ledger: Ledger;
  signingKey: string;
}

/** Connects to the emulators, installs the local rewrites, meters and faults, and opens the ledger table. */
export async function openClients(
  services: LocalServices,
  dataDir: string,
  faults: RuntimeFaults | undefined,
): Promise<RuntimeClients> {
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
  faults?.hideDocuments(s3);
  emulateObjectVersions(s3);
  meterDynamoDb(dynamodb);
  meterS3(s3);
  faults?.throttleDynamo(dynamodb);
  faults?.installCrashes();
  await ensureTable(dynamodb);
  if (!services.ledgerClosedCleanly) {
    // dynalite's index writes are not atomic with the item's: after a kill, make them agree again.
    const partitions = [
      ...RunStatus.options.map((s) => `RUNSTATUS#${s}`),
      ...ApprovalStatus.options.map((s) => `APPROVAL#${s}`),
    ];
    const { missingEntries, staleEntries } = await reindexLedger(dynamodb, TABLE_NAME, partitions);
    if (missingEntries + staleEntries > 0) {
      process.stderr.write(
        `local ledger: after an unclean stop, ${missingEntries} record(s) missing from the status index and ${staleEntries} stale index entries repaired\n`,
      );
    }
  }
  const ledger = new Ledger(dynamodb, TABLE_NAME);
  const signingKey = loadSigningKey(dataDir);
  return { dynamodb, s3, ses, ledger, signingKey };
}

/** The client of the local Step Functions API, sending this start's key (read when each request is built). */
export function localSfnClient(httpUrl: string, key: () => string | undefined): SFNClient {
  const sfn = new SFNClient({ region: REGION, endpoint: httpUrl, credentials: CREDENTIALS });
  sfn.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      const k = key();
      if (request.headers && k) request.headers[KEY_HEADER] = k;
      return next(args);
    },
    { step: "build", name: "poAgentLocalKey" },
  );
  return sfn;
}

/** The model of each customer, wrapped by the fault hooks or the answer observer when asked. */
export function chooseModels(opts: {
  customers: CustomerConfig[];
  model?: (customer: CustomerConfig) => SelectedModel;
  faults?: RuntimeFaults;
  onModelAnswer?: (customer: string, request: ModelRequest, response: ModelResponse) => void;
}): Map<string, SelectedModel> {
  const models = new Map<string, SelectedModel>();
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
    models.set(c.name, { ...chosen, client });
  }
  return models;
}

/**
 * The engine running statemachines/agent.asl.json, each Lambda task routed to `invoke` in this
 * process (metered as the handler wrapper meters a Lambda: the usage rides into the history).
 */
export function buildEngine(opts: {
  invoke: (role: keyof typeof FUNCTION_ROLES, payload: unknown) => Promise<unknown>;
  onEvent: (executionArn: string, event: EventLog) => void;
  onTask: (executionArn: string, task: TaskAttempt) => void;
  retryIntervalMs?: number;
}): LocalEngine {
  const routes: Record<string, LambdaRoute> = {};
  for (const [placeholder, role] of Object.entries(FUNCTION_ROLES)) {
    routes[localFunctionArn(role)] = (payload) =>
      withUsage(() => opts.invoke(placeholder as keyof typeof FUNCTION_ROLES, payload));
  }
  const substitutions = Object.fromEntries(
    Object.entries(FUNCTION_ROLES).map(([p, role]) => [p, localFunctionArn(role)]),
  );
  return new LocalEngine({
    definition: substitute(readFileSync(ASL_PATH, "utf8"), substitutions),
    routes,
    onEvent: opts.onEvent,
    onTask: opts.onTask,
    ...(opts.retryIntervalMs !== undefined ? { retryIntervalOverrides: opts.retryIntervalMs } : {}),
    stateMachineArn: STATE_MACHINE_ARN,
  });
}

export const versionKey = (key: string, versionId: string) => `versions/${versionId}/${basename(key)}`;
export const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

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
export function observeAnswers(inner: ModelClient, onPaid: (rq: ModelRequest, rs: ModelResponse) => void): ModelClient {
  return {
    provider: inner.provider,
    async create(request) {
      const response = await inner.create(request);
      onPaid(request, response);
      return response;
    },
  };
}

export function defaultModel(customer: CustomerConfig): SelectedModel {
  return selectModelClient({
    provider: customer.model.provider,
    modelId: customer.model.id,
    apiKey: process.env.ANTHROPIC_API_KEY,
    baseURL: customer.model.baseURL ?? process.env.ANTHROPIC_BASE_URL,
    reference: () => new ReferenceModelClient(),
  });
}

export async function ensureTable(dynamodb: DynamoDBClient): Promise<void> {
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
export function loadSigningKey(dataDir: string): string {
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

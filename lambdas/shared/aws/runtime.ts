import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SFNClient } from "@aws-sdk/client-sfn";
import type { AgentDeps } from "../agent/deps.js";
import { CustomerConfig } from "../config/schema.js";
import { ConfigError, requireEnv } from "../errors.js";
import { Ledger } from "../ledger/ledger.js";
import { telemetry, tracer } from "../observability.js";
import { meterDynamoDb, meterS3 } from "../usage-meter.js";
import { DocumentStore } from "./documents.js";
import { historyUsage } from "./execution-history.js";

/**
 * Module-scope wiring for the Lambda handlers: environment read once (failing fast with the
 * variable's name), every AWS client wrapped for X-Ray, the customer config read from the bundle.
 */
export const env = {
  ledgerTable: requireEnv("LEDGER_TABLE"),
  documentBucket: requireEnv("DOCUMENT_BUCKET"),
  customer: requireEnv("CUSTOMER"),
  customerConfigFile: process.env.CUSTOMER_CONFIG_FILE ?? "customer.json",
};

/** The clients every function uses (the ledger, the documents), created at module scope. */
export const clients = {
  dynamodb: meterDynamoDb(tracer.captureAWSv3Client(new DynamoDBClient({}))),
  s3: meterS3(tracer.captureAWSv3Client(new S3Client({}))),
};

/**
 * Clients only some functions use, imported on first use: each SDK client is a chunk of its own beside
 * index.mjs (lib/po-agent-function.ts), read when the first call needs it. `@__PURE__` lets esbuild drop
 * the ones a handler never references. (esbuild emits a chunk for every `import()` in the module graph,
 * even where the call is dropped, so the SES client lives in approval-deps.ts, which only mail senders import.)
 */
export function lazyClient<C>(load: () => Promise<C>): () => Promise<C> {
  let client: Promise<C> | undefined;
  return () => {
    client ??= load();
    return client;
  };
}

export const sfnClient = /* @__PURE__ */ lazyClient<SFNClient>(async () => {
  const { SFNClient } = await import("@aws-sdk/client-sfn");
  return tracer.captureAWSv3Client(new SFNClient({}));
});

const secretsClient = /* @__PURE__ */ lazyClient<SecretsManagerClient>(async () => {
  const { SecretsManagerClient } = await import("@aws-sdk/client-secrets-manager");
  return tracer.captureAWSv3Client(new SecretsManagerClient({}));
});

function loadBundledCustomer(): CustomerConfig {
  const path = join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), env.customerConfigFile);
  const parsed = CustomerConfig.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success)
    throw new ConfigError(`${path}: ${parsed.error.issues[0]?.message ?? "invalid customer config"}`);
  if (parsed.data.name !== env.customer) {
    throw new ConfigError(`${path} is for customer "${parsed.data.name}" but CUSTOMER is "${env.customer}"`);
  }
  return parsed.data;
}

export const customer = loadBundledCustomer();

export function agentDeps(model?: AgentDeps["model"]): AgentDeps {
  return {
    ledger: new Ledger(clients.dynamodb, env.ledgerTable),
    documents: new DocumentStore(clients.s3),
    customer,
    bucket: env.documentBucket,
    model,
    telemetry,
    executionUsage: historyUsage(sfnClient),
  };
}

/**
 * How long a secret read stays cached in a warm container. Short, so that putting the model key (or
 * rotating a token) takes effect within a minute without a redeploy; long enough that a busy function
 * reads Secrets Manager about once a minute, not once per invocation.
 */
export const SECRET_TTL_MS = 60_000;

const secretCache = new Map<string, { value: string; readAt: number }>();

/** Reads a secret, cached for SECRET_TTL_MS per container; never logged. */
export async function secretValue(arn: string, now: number = Date.now()): Promise<string> {
  const cached = secretCache.get(arn);
  if (cached !== undefined && now - cached.readAt < SECRET_TTL_MS) return cached.value;
  const { GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
  const res = await (await secretsClient()).send(new GetSecretValueCommand({ SecretId: arn }));
  const value = res.SecretString ?? "";
  secretCache.set(arn, { value, readAt: now });
  return value;
}

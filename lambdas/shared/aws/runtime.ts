import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SFNClient } from "@aws-sdk/client-sfn";
import type { AgentDeps } from "../agent/deps.js";
import type { CustomerConfig } from "../config/schema.js";
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

/**
 * An SDK client built on first use from a class imported then (`await import()`: a chunk of its own beside
 * index.mjs, see lib/po-agent-function.ts, read by the first call that needs it), or at once with `now`.
 */
export interface LazyClient<C> {
  (): Promise<C>;
  /**
   * Builds the client now from a class the caller imported statically, so that its code loads at init:
   * for a handler that uses the client on every call, whose every cold start pays for it anyway. Moving
   * such work into the first call would only hide it from the init figure.
   */
  now(sdkClass: new () => C): void;
}

/**
 * `@__PURE__` at the call sites lets esbuild drop the clients a handler never references. (esbuild still
 * emits a chunk for every `import()` in the module graph, even where the call is dropped, so the SES client
 * lives in approval-deps.ts, which only the mail senders import.)
 */
export function lazyClient<C>(load: () => Promise<new () => C>, wrap: (client: C) => C): LazyClient<C> {
  let client: Promise<C> | undefined;
  const get = () => {
    client ??= load()
      .then((SdkClass) => wrap(new SdkClass()))
      .catch((err: unknown) => {
        client = undefined; // a chunk that failed to load is tried again by the next call
        throw err;
      });
    return client;
  };
  return Object.assign(get, {
    now: (SdkClass: new () => C) => {
      client ??= Promise.resolve(wrap(new SdkClass()));
    },
  });
}

/** The ledger's client (every call of every function, created at module scope) and the documents' (`s3()`). */
export const clients = {
  dynamodb: meterDynamoDb(tracer.captureAWSv3Client(new DynamoDBClient({}))),
  s3: /* @__PURE__ */ lazyClient<S3Client>(
    async () => (await import("@aws-sdk/client-s3")).S3Client,
    (c) => meterS3(tracer.captureAWSv3Client(c)),
  ),
};

export const sfnClient = /* @__PURE__ */ lazyClient<SFNClient>(
  async () => (await import("@aws-sdk/client-sfn")).SFNClient,
  (c) => tracer.captureAWSv3Client(c),
);

export const secretsClient = /* @__PURE__ */ lazyClient<SecretsManagerClient>(
  async () => (await import("@aws-sdk/client-secrets-manager")).SecretsManagerClient,
  (c) => tracer.captureAWSv3Client(c),
);

/**
 * The customer config bundled next to the handler. It is the config `cdk synth` validated (lib/app.ts reads it
 * with `CustomerConfig.parse`), written into the same asset as this code by the same synthesis
 * (lib/po-agent-function.ts), with zod's defaults already applied: this code and that file cannot disagree
 * on the schema, so parsing it again would repeat the synth's work on every cold start (building the zod
 * schema and running it, ~30 ms CPU). What the synth cannot know is checked here: that the file is there, is
 * a JSON object, and is for the customer this function was deployed for.
 */
function loadBundledCustomer(): CustomerConfig {
  const path = join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), env.customerConfigFile);
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
  const name = (config as { name?: unknown } | null)?.name;
  if (typeof config !== "object" || config === null || Array.isArray(config) || typeof name !== "string")
    throw new ConfigError(`${path}: not a customer config (a JSON object with a "name")`);
  if (name !== env.customer) {
    throw new ConfigError(`${path} is for customer "${name}" but CUSTOMER is "${env.customer}"`);
  }
  return config as CustomerConfig;
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

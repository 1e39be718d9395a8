import { REFERENCE_MODEL } from "../constants.js";
import { ConfigError } from "../errors.js";
import { AnthropicModelClient, BedrockModelClient } from "./anthropic.js";
import type { ModelClient } from "./types.js";

export type ModelProvider = "auto" | "anthropic" | "bedrock" | "reference";

export interface SelectModelOptions {
  provider: ModelProvider;
  /** The model the customer config names; ignored by the reference model. */
  modelId: string;
  apiKey?: string;
  baseURL?: string;
  /** Bedrock region. @default - the SDK reads AWS_REGION */
  region?: string;
  /** Builds the offline reference model (kept injectable so this module does not depend on it). */
  reference: () => ModelClient;
}

export interface SelectedModel {
  client: ModelClient;
  /** The id to send and to price: the reference model reports REFERENCE_MODEL. */
  modelId: string;
  /** One line for the run record and the console saying which model runs and why. */
  note: string;
}

export const NO_KEY_NOTE = "no model API key configured: using the offline reference model";

/**
 * The value a deployed stack's model-key secret starts with. It is not a key: the runtime reads it as
 * "no key configured" (the offline reference model runs, and the log says so) until the operator puts
 * the real key in the secret; no redeploy is needed (the Lambdas re-read the secret after a minute).
 */
export const MODEL_KEY_PLACEHOLDER = "NO-KEY-CONFIGURED: put the Anthropic API key in this secret";

/**
 * Picks the model client. `auto` is the default for local runs: with a key it calls the real
 * API, without one the run still works end to end on the offline reference model, and the
 * note says so instead of failing.
 */
export function selectModelClient(opts: SelectModelOptions): SelectedModel {
  const apiKey = opts.apiKey === "" ? undefined : opts.apiKey;
  const useReference = (note: string): SelectedModel => ({ client: opts.reference(), modelId: REFERENCE_MODEL, note });
  const useAnthropic = (key: string): SelectedModel => ({
    client: new AnthropicModelClient({ apiKey: key, ...(opts.baseURL ? { baseURL: opts.baseURL } : {}) }),
    modelId: opts.modelId,
    note: `using ${opts.modelId} through the Anthropic API${opts.baseURL ? ` at ${opts.baseURL}` : ""}`,
  });

  switch (opts.provider) {
    case "reference":
      return useReference("using the offline reference model (provider: reference)");
    case "bedrock":
      return {
        client: new BedrockModelClient(opts.region ? { region: opts.region } : {}),
        modelId: opts.modelId,
        note: `using ${opts.modelId} on Amazon Bedrock${opts.region ? ` in ${opts.region}` : ""}`,
      };
    case "anthropic":
      if (apiKey === undefined) {
        throw new ConfigError(
          "model provider anthropic needs an API key: set ANTHROPIC_API_KEY locally or MODEL_API_KEY_SECRET_ARN in AWS",
        );
      }
      return useAnthropic(apiKey);
    case "auto":
      if (opts.modelId === REFERENCE_MODEL)
        return useReference(`using the offline reference model (model: ${REFERENCE_MODEL})`);
      return apiKey === undefined ? useReference(NO_KEY_NOTE) : useAnthropic(apiKey);
  }
}

/**
 * Finds the model API key: `ANTHROPIC_API_KEY` (local runs), else the Secrets Manager secret named
 * by `MODEL_API_KEY_SECRET_ARN` (AWS; the key never sits in a Lambda environment variable). The
 * secret may be the bare key or JSON with an `apiKey` or `ANTHROPIC_API_KEY` field. The key is
 * never logged, and error messages name only the ARN.
 */
export async function resolveApiKey(
  env: NodeJS.ProcessEnv,
  getSecret: (arn: string) => Promise<string> = readSecretString,
): Promise<string | undefined> {
  const local = env.ANTHROPIC_API_KEY?.trim();
  if (local) return local;
  const arn = env.MODEL_API_KEY_SECRET_ARN?.trim();
  if (!arn) return undefined;
  const raw = (await getSecret(arn)).trim();
  if (raw === MODEL_KEY_PLACEHOLDER) return undefined;
  const key = raw.startsWith("{") ? keyFromJson(raw, arn) : raw;
  if (!key) throw new ConfigError(`model API key secret ${arn} is empty`);
  return key;
}

function keyFromJson(raw: string, arn: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(`model API key secret ${arn} looks like JSON but does not parse`);
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  for (const field of ["apiKey", "ANTHROPIC_API_KEY"]) {
    const value: unknown = Reflect.get(parsed, field);
    if (typeof value === "string" && value.trim()) return value.trim();
  }
  throw new ConfigError(`model API key secret ${arn} is JSON without an "apiKey" or "ANTHROPIC_API_KEY" field`);
}

/** Loaded lazily so local runs never construct an AWS client. */
async function readSecretString(arn: string): Promise<string> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
  const result = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
  if (result.SecretString === undefined) throw new ConfigError(`model API key secret ${arn} has no string value`);
  return result.SecretString;
}

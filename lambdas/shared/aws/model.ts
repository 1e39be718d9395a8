import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ReferenceModelClient } from "../model/reference.js";
import { resolveApiKey, type SelectedModel, selectModelClient } from "../model/select.js";
import { logger } from "../observability.js";
import { customer, secretsClient, secretValue } from "./runtime.js";

// In AWS the model key is read from Secrets Manager by every cold container's first call: built at init.
if (process.env.MODEL_API_KEY_SECRET_ARN?.trim()) secretsClient.now(SecretsManagerClient);

let selected: { model: SelectedModel; apiKey: string | undefined } | undefined;

/**
 * The customer's model client for this invocation. The key is re-read through the secret cache (a
 * minute's TTL), and the client is rebuilt when it changed: setting the key in the secret switches a
 * warm container from the offline reference model to Claude without a redeploy. Each switch is logged.
 */
export async function modelFor(): Promise<SelectedModel> {
  const apiKey = await resolveApiKey(process.env, secretValue);
  if (selected === undefined || selected.apiKey !== apiKey) {
    const model = selectModelClient({
      provider: customer.model.provider,
      modelId: customer.model.id,
      apiKey,
      baseURL: customer.model.baseURL,
      region: process.env.AWS_REGION,
      reference: () => new ReferenceModelClient(),
    });
    selected = { model, apiKey };
    logger.info(model.note, { modelProvider: model.client.provider, modelId: model.modelId });
  }
  return selected.model;
}

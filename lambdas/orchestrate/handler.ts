import { z } from "zod";
import { orchestrate } from "../shared/agent/core.js";
import { instrumented } from "../shared/aws/handler.js";
import { withMcp } from "../shared/aws/mcp-deps.js";
import { agentDeps, customer, secretValue } from "../shared/aws/runtime.js";
import { ReferenceModelClient } from "../shared/model/reference.js";
import { resolveApiKey, type SelectedModel, selectModelClient } from "../shared/model/select.js";
import { logger } from "../shared/observability.js";

const Input = z.object({ runId: z.string() });

let selected: SelectedModel | undefined;

/** The model client is built on the first invocation (the key comes from Secrets Manager). */
async function model(): Promise<SelectedModel> {
  if (!selected) {
    const apiKey = await resolveApiKey(process.env, secretValue);
    selected = selectModelClient({
      provider: customer.model.provider,
      modelId: customer.model.id,
      apiKey,
      baseURL: customer.model.baseURL,
      region: process.env.AWS_REGION,
      reference: () => new ReferenceModelClient(),
    });
    logger.info(selected.note);
  }
  return selected;
}

export const handler = instrumented("orchestrate", Input, async (input) => {
  const { client, modelId } = await model();
  return withMcp(undefined, (mcp) => orchestrate({ ...agentDeps({ client, modelId }), mcp }, input));
});

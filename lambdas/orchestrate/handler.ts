import { z } from "zod/v3";
import { orchestrate } from "../shared/agent/turn.js";
import { instrumented } from "../shared/aws/handler.js";
import { withMcp } from "../shared/aws/mcp-deps.js";
import { modelFor } from "../shared/aws/model.js";
import { agentDeps } from "../shared/aws/runtime.js";

const Input = z.object({ runId: z.string() });

export const handler = instrumented("orchestrate", Input, async (input) => {
  const { client, modelId } = await modelFor();
  return withMcp(undefined, (mcp) => orchestrate({ ...agentDeps({ client, modelId }), mcp }, input));
});

import { z } from "zod";
import { ingest } from "../shared/agent/core.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";

const Input = z.object({
  bucket: z.string(),
  key: z.string(),
  versionId: z.string().optional(),
  executionId: z.string(),
});

export const handler = instrumented("ingest", Input, (input) => ingest(agentDeps(), input));

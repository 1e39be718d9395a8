import { SFNClient } from "@aws-sdk/client-sfn";
import { z } from "zod/v3";
import { finalize } from "../shared/agent/finalize.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, sfnClient } from "../shared/aws/runtime.js";
import { Step } from "../shared/steps.js";

// Every call reads its execution's history (the run's cost): the client is built at init,
// which every cold start pays anyway.
sfnClient.now(SFNClient);

const Input = z.object({ runId: z.string(), step: Step });

export const handler = instrumented("finalize", Input, (input) => finalize(agentDeps(), input));

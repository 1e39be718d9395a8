import { SFNClient } from "@aws-sdk/client-sfn";
import { z } from "zod/v3";
import { recordFailure } from "../shared/agent/finalize.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps, sfnClient } from "../shared/aws/runtime.js";

// Every call reads its execution's history (the run's cost): the client is built at init,
// which every cold start pays anyway.
sfnClient.now(SFNClient);

const Input = z.object({ state: z.unknown() });

export const handler = instrumented("record-failure", Input, (input) => recordFailure(agentDeps(), input));

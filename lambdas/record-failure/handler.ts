import { z } from "zod";
import { recordFailure } from "../shared/agent/finalize.js";
import { instrumented } from "../shared/aws/handler.js";
import { agentDeps } from "../shared/aws/runtime.js";

const Input = z.object({ state: z.unknown() });

export const handler = instrumented("record-failure", Input, (input) => recordFailure(agentDeps(), input));

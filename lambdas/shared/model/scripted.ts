import type { ModelClient, ModelRequest, ModelResponse } from "./types.js";

/** Produces the response for the n-th call (0-based); may throw to simulate a provider failure. */
export type ScriptFn = (request: ModelRequest, callIndex: number) => ModelResponse | Promise<ModelResponse>;

/**
 * A model that answers from a script, so tests can drive the agent loop turn by turn and then
 * assert on exactly what the loop sent (`calls`). Running past the script is a test bug and
 * fails loudly instead of inventing an answer.
 */
export class ScriptedModelClient implements ModelClient {
  readonly provider = "scripted";
  /** Every request received, in order (deep-copied, so later mutation by the caller does not rewrite history). */
  readonly calls: ModelRequest[] = [];
  private readonly script: ScriptFn;
  private readonly length: number | undefined;

  constructor(script: readonly ModelResponse[] | ScriptFn) {
    if (typeof script === "function") {
      this.script = script;
      this.length = undefined;
    } else {
      const responses = [...script];
      this.length = responses.length;
      this.script = (request, callIndex) => {
        const response = responses[callIndex];
        if (response === undefined) {
          throw new Error(
            `ScriptedModelClient: script exhausted: call ${callIndex + 1} but only ${responses.length} response(s) scripted ` +
              `(last message role: ${request.messages.at(-1)?.role ?? "none"})`,
          );
        }
        return structuredClone(response);
      };
    }
  }

  /** Number of calls received so far, including ones that threw. */
  get callCount(): number {
    return this.calls.length;
  }

  /** Responses left in a list script; `undefined` for a function script. */
  get remaining(): number | undefined {
    return this.length === undefined ? undefined : Math.max(0, this.length - this.calls.length);
  }

  async create(request: ModelRequest): Promise<ModelResponse> {
    const callIndex = this.calls.length;
    this.calls.push(structuredClone(request));
    return this.script(request, callIndex);
  }
}

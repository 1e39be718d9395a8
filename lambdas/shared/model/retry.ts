import { DEFAULTS } from "../constants.js";
import { PoAgentError, TransientError } from "../errors.js";
import type { ModelClient, ModelRequest, ModelResponse } from "./types.js";

/**
 * The model's transient failures (429, 529, 5xx, resets, timeouts) were retried inside the Lambda
 * until the retry budget ran out. Deliberately NOT named TransientError: Step Functions must not
 * retry the whole invocation again (that would multiply the attempts), so the run fails with this reason.
 */
export class ModelUnavailableError extends PoAgentError {
  override readonly name: string = "ModelUnavailableError";
}

export interface RetryPolicy {
  /** Attempts per model turn, the first included. */
  maxAttempts: number;
  /** First backoff ceiling; doubles per attempt ("full jitter": the wait is uniform in [0, ceiling]). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server's retry-after is honoured up to this long; longer hints fail the attempt budget faster. */
  maxRetryAfterMs: number;
}

export interface RetryEvent {
  attempt: number;
  delayMs: number;
  error: TransientError;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The one layer that retries model calls: exponential backoff with full jitter, `retry-after`
 * respected, a bounded number of attempts. The SDK's own retries are off (maxRetries 0) so the
 * layers do not multiply; see README "Who retries what".
 */
export class RetryingModelClient implements ModelClient {
  readonly provider: string;

  constructor(
    private readonly inner: ModelClient,
    private readonly policy: RetryPolicy = DEFAULTS.modelRetry,
    private readonly hooks: {
      onRetry?: (e: RetryEvent) => void;
      sleep?: (ms: number) => Promise<void>;
      random?: () => number;
    } = {},
  ) {
    this.provider = inner.provider;
  }

  async create(request: ModelRequest): Promise<ModelResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.inner.create(request);
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        if (attempt >= this.policy.maxAttempts) {
          throw new ModelUnavailableError(
            `the model stayed unavailable for ${attempt} attempts (retry budget used up): ${err.message}`,
            { cause: err },
          );
        }
        const delayMs = backoffMs(this.policy, attempt, retryAfterOf(err), this.hooks.random ?? Math.random);
        this.hooks.onRetry?.({ attempt, delayMs, error: err });
        await (this.hooks.sleep ?? sleep)(delayMs);
      }
    }
  }
}

function retryAfterOf(err: TransientError): number | undefined {
  const seconds = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** Wait before the next attempt: the server's retry-after when given (capped), else full jitter. */
export function backoffMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  if (retryAfterSeconds !== undefined) return Math.min(retryAfterSeconds * 1000, policy.maxRetryAfterMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

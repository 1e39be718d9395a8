import { createHash } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { type CrashPoint, installCrashPlan } from "../../lambdas/shared/agent/faults.js";
import { ModelTransientError, PromptTooLongError } from "../../lambdas/shared/model/anthropic.js";
import type { ModelClient, ModelRequest, ModelResponse } from "../../lambdas/shared/model/types.js";
import type { RuntimeFaults } from "../../local/stack.js";
import { mulberry32 } from "./prng.js";

export { mulberry32 };

/**
 * The seeded fault layer for durability tests and `npm run bench:durability`. It is test support:
 * the runtime only knows the RuntimeFaults hooks (local/stack.ts) that a FaultInjector fills in when
 * a test or the benchmark passes one; the crash points it drives refuse to run inside AWS Lambda.
 */
export const FAULT_KINDS = [
  "model_429",
  "model_529",
  "model_500",
  "model_connection_reset",
  "model_timeout",
  "model_invalid_tool_input",
  "model_unknown_tool",
  "model_prompt_too_long",
  "crash_after_tool_effect",
  "crash_after_model_answer",
  "dynamodb_throttle",
  "s3_missing_object",
  "s3_event_twice",
  "same_document_twice",
  "different_document_same_name",
  "process_kill",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultRates = Partial<Record<FaultKind, number>>;

/** A stable draw in [0, 1) for a key, independent of call order (same key → same answer). */
export function keyedDraw(seed: number, key: string): number {
  const h = createHash("sha256").update(`${seed}:${key}`).digest();
  return h.readUInt32BE(0) / 4294967296;
}

export class FaultInjector implements RuntimeFaults {
  readonly counts: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<
    FaultKind,
    number
  >;
  private readonly random: () => number;

  /**
   * @param seed drives the per-event draws (a restarted process gets another seed, so a crash is not replayed for ever)
   * @param keySeed drives per-key decisions such as a missing object, which must stay the same across restarts
   */
  constructor(
    readonly seed: number,
    readonly rates: FaultRates,
    readonly keySeed: number = seed,
  ) {
    this.random = mulberry32(seed);
  }

  /** Draws once for `kind`; counts the fault when it fires. */
  fire(kind: FaultKind): boolean {
    const rate = this.rates[kind] ?? 0;
    if (rate <= 0) return false;
    const hit = this.random() < rate;
    if (hit) this.counts[kind]++;
    return hit;
  }

  /** A per-key decision (e.g. per document), the same in every process with this seed. */
  fireFor(kind: FaultKind, key: string): boolean {
    const rate = this.rates[kind] ?? 0;
    const hit = rate > 0 && keyedDraw(this.keySeed, `${kind}:${key}`) < rate;
    if (hit) this.counts[kind]++;
    return hit;
  }

  /** Lets the injector decide the core's crash points (SIGKILL of this process). */
  installCrashes(): void {
    installCrashPlan({
      shouldCrash: (point: CrashPoint) =>
        (point === "after-tool-effect" && this.fire("crash_after_tool_effect")) ||
        (point === "after-model-answer" && this.fire("crash_after_model_answer")),
    });
  }

  /** Transient model failures, malformed answers and "prompt is too long", around a real client. */
  wrapModel(inner: ModelClient, onPaid?: (request: ModelRequest, response: ModelResponse) => void): ModelClient {
    return new FaultyModelClient(inner, this, onPaid);
  }

  /** DynamoDB throttling inside the SDK's retry loop (the SDK retries it, as it would in AWS). */
  throttleDynamo(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        if (this.fire("dynamodb_throttle")) {
          throw Object.assign(new Error("Rate of requests exceeds the allowed throughput (injected)"), {
            name: "ProvisionedThroughputExceededException",
            $fault: "client",
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: "finalizeRequest", name: "poAgentInjectedThrottle" },
    );
  }

  /** Makes some incoming documents unreadable (404), decided per key: a missing object stays missing. */
  hideDocuments(client: S3Client): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        const reading = context.commandName === "GetObjectCommand" || context.commandName === "HeadObjectCommand";
        if (reading && typeof input.Key === "string" && input.Key.startsWith("incoming/") && this.isHidden(input.Key)) {
          throw Object.assign(new Error("The specified key does not exist (injected)"), {
            name: "NoSuchKey",
            $fault: "client",
            $metadata: { httpStatusCode: 404 },
          });
        }
        return next(args);
      },
      { step: "initialize", name: "poAgentInjectedMissingObject", priority: "high" },
    );
  }

  private readonly hidden = new Map<string, boolean>();

  private isHidden(key: string): boolean {
    let hit = this.hidden.get(key);
    if (hit === undefined) {
      hit = this.fireFor("s3_missing_object", key);
      this.hidden.set(key, hit);
    }
    return hit;
  }
}

class FaultyModelClient implements ModelClient {
  readonly provider: string;

  constructor(
    private readonly inner: ModelClient,
    private readonly faults: FaultInjector,
    private readonly onPaid?: (request: ModelRequest, response: ModelResponse) => void,
  ) {
    this.provider = inner.provider;
  }

  async create(request: ModelRequest): Promise<ModelResponse> {
    const f = this.faults;
    if (f.fire("model_429"))
      throw new ModelTransientError("429 rate limited (injected)", { status: 429, retryAfterSeconds: 0.01 });
    if (f.fire("model_529")) throw new ModelTransientError("529 overloaded (injected)", { status: 529 });
    if (f.fire("model_500")) throw new ModelTransientError("500 internal error (injected)", { status: 500 });
    if (f.fire("model_connection_reset")) throw new ModelTransientError("connection reset: ECONNRESET (injected)", {});
    if (f.fire("model_timeout")) throw new ModelTransientError("request timed out (injected)", {});
    if (f.fire("model_prompt_too_long"))
      throw new PromptTooLongError("prompt is too long: 210000 tokens > 200000 maximum (injected)", { status: 400 });
    const response = await this.inner.create(request);
    this.onPaid?.(request, response);
    const uses = response.content.filter((b) => b.type === "tool_use");
    if (uses.length === 0) return response;
    if (f.fire("model_invalid_tool_input")) {
      const [first] = uses;
      // Not valid JSON where an object is expected: what a truncated tool input looks like after parsing.
      return {
        ...response,
        content: response.content.map((b) => (b === first ? { ...b, input: '{"po": {"poNumber": "PO-' } : b)),
      };
    }
    if (f.fire("model_unknown_tool")) {
      const [first] = uses;
      return {
        ...response,
        content: response.content.map((b) => (b === first ? { ...b, name: "approve_and_save_everything" } : b)),
      };
    }
    return response;
  }
}

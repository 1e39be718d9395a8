import type { Counters } from "./ledger/records.js";

/**
 * AWS list prices for US East (N. Virginia), checked on AWS_PRICE_DATE against
 * aws.amazon.com/step-functions/pricing and aws.amazon.com/lambda/pricing. Free tiers (4,000
 * transitions and 400,000 GB-s a month per account) and Lambda's volume tiers (beyond 7.5 billion
 * arm64 GB-s a month) are ignored: the estimate is what one more run costs a busy account, an upper
 * bound. Not counted: DynamoDB, S3, SES, CloudWatch and X-Ray, each well under a cent per run.
 */
export const AWS_PRICE_DATE = "2026-11-25";

export const AWS_PRICES = {
  /** Step Functions Standard, USD per state transition ($0.025 per 1,000; retries count). */
  stepFunctionsPerTransition: 0.025 / 1000,
  /** Lambda on arm64 (Graviton), USD per GB-second, first pricing tier. */
  lambdaArm64PerGbSecond: 0.0000133334,
  /** Lambda, USD per request ($0.20 per million). */
  lambdaPerRequest: 0.2 / 1_000_000,
} as const;

/** What one run used on AWS, as counted by the state machine history or the local engine. */
export interface AwsUsage {
  /** State transitions of the execution (StateEntered events, retries included). */
  stateTransitions: number;
  /** One entry per Lambda invocation of the run. */
  lambdaInvocations: readonly { durationMs: number; memoryMb: number }[];
}

export interface AwsCostEstimate {
  stepFunctionsUsd: number;
  lambdaUsd: number;
  totalUsd: number;
  stateTransitions: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  priceDate: string;
}

/** Step Functions + Lambda dollars for one run. Lambda bills whole milliseconds, rounded up. */
export function estimateAwsCost(usage: AwsUsage): AwsCostEstimate {
  let gbSeconds = 0;
  for (const inv of usage.lambdaInvocations) {
    gbSeconds += (inv.memoryMb / 1024) * (Math.ceil(Math.max(0, inv.durationMs)) / 1000);
  }
  const stepFunctionsUsd = usage.stateTransitions * AWS_PRICES.stepFunctionsPerTransition;
  const lambdaUsd =
    gbSeconds * AWS_PRICES.lambdaArm64PerGbSecond + usage.lambdaInvocations.length * AWS_PRICES.lambdaPerRequest;
  return {
    stepFunctionsUsd,
    lambdaUsd,
    totalUsd: stepFunctionsUsd + lambdaUsd,
    stateTransitions: usage.stateTransitions,
    lambdaInvocations: usage.lambdaInvocations.length,
    lambdaGbSeconds: gbSeconds,
    priceDate: AWS_PRICE_DATE,
  };
}

/** The per-run cost record kept in the ledger: model tokens by kind and dollars, plus the AWS estimate. */
export interface RunCostRecord {
  runId: string;
  customer: string;
  tokens: { input: number; output: number; cacheRead: number; cacheWrite: number };
  modelUsd: number;
  aws: AwsCostEstimate;
  totalUsd: number;
}

export function runCostRecord(input: {
  runId: string;
  customer: string;
  counters: Counters;
  aws: AwsUsage;
}): RunCostRecord {
  const aws = estimateAwsCost(input.aws);
  const c = input.counters;
  return {
    runId: input.runId,
    customer: input.customer,
    tokens: {
      input: c.inputTokens,
      output: c.outputTokens,
      cacheRead: c.cacheReadTokens,
      cacheWrite: c.cacheWriteTokens,
    },
    modelUsd: c.costUsd,
    aws,
    totalUsd: c.costUsd + aws.totalUsd,
  };
}

import { Aws, Stack } from "aws-cdk-lib";
import { Grant } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { inferenceProfilePrefix } from "../lambdas/shared/model/bedrock-ids.js";

/**
 * ARNs `bedrock:InvokeModel` must allow for `modelId`: the foundation model in this region; for a
 * cross-region inference profile the profile plus the foundation model in every region it routes to;
 * for an ARN that ARN (and, for a profile ARN, the Anthropic foundation models it may route to).
 */
export function bedrockModelArns(fn: IFunction, modelId: string): string[] {
  const stack = Stack.of(fn);
  const partition = Aws.PARTITION;
  if (modelId.startsWith("arn:")) {
    return modelId.includes(":foundation-model/")
      ? [modelId]
      : [modelId, `arn:${partition}:bedrock:*::foundation-model/anthropic.claude-*`];
  }
  const prefix = inferenceProfilePrefix(modelId);
  if (prefix !== undefined) {
    return [
      stack.formatArn({ service: "bedrock", resource: "inference-profile", resourceName: modelId }),
      `arn:${partition}:bedrock:*::foundation-model/${modelId.slice(prefix.length + 1)}`,
    ];
  }
  return [`arn:${partition}:bedrock:${Aws.REGION}::foundation-model/${modelId}`];
}

/** The key secret's ARN for the providers that read a key (the value itself is read at run time). */
export function modelEnvironment(customer: CustomerConfig, keySecret: ISecret): Record<string, string> {
  const provider = customer.model.provider;
  return provider === "auto" || provider === "anthropic" ? { MODEL_API_KEY_SECRET_ARN: keySecret.secretArn } : {};
}

/**
 * Gives `fn` what its model calls need, and only that: with provider `bedrock`, `bedrock:InvokeModel`
 * on the configured model (no key); with `auto` or `anthropic`, `secretsmanager:GetSecretValue`
 * on the key secret (its ARN comes from modelEnvironment); with `reference`, nothing.
 * (`auto` never selects Bedrock: without a key it runs the offline reference model.)
 */
export function grantModelAccess(fn: IFunction, customer: CustomerConfig, keySecret: ISecret): void {
  switch (customer.model.provider) {
    case "reference":
      return;
    case "bedrock":
      Grant.addToPrincipal({
        grantee: fn,
        actions: ["bedrock:InvokeModel"],
        resourceArns: bedrockModelArns(fn, customer.model.id),
      });
      return;
    case "auto":
    case "anthropic":
      Grant.addToPrincipal({
        grantee: fn,
        actions: ["secretsmanager:GetSecretValue"],
        resourceArns: [keySecret.secretArn],
      });
  }
}

/**
 * Claude on Bedrock is addressed by a foundation-model id (`anthropic.claude-…-v1:0`), a
 * cross-region inference profile (`us.`/`eu.`/`apac.`/`global.` + that id) or an ARN of a model or
 * (application) inference profile. Anthropic API ids such as `claude-sonnet-5` are none of these.
 */
const BEDROCK_MODEL_ID = /^(?:(?:us|eu|apac|global|us-gov|jp|au|ca)\.)?anthropic\.claude-[a-z0-9.-]+(?::\d+)?$/;
const BEDROCK_ARN =
  /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:(?:foundation-model|inference-profile|application-inference-profile)\/.+$/;

export function isBedrockModelId(id: string): boolean {
  return BEDROCK_MODEL_ID.test(id) || BEDROCK_ARN.test(id);
}

/** A cross-region inference profile id (`us.anthropic…`): it routes to the foundation model in several regions. */
export function inferenceProfilePrefix(id: string): string | undefined {
  return /^((?:us|eu|apac|global|us-gov|jp|au|ca))\.anthropic\./.exec(id)?.[1];
}

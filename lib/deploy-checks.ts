import { readFileSync } from "node:fs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { isBedrockModelId } from "../lambdas/shared/model/bedrock-ids.js";
import { AGENT_DEFINITION_FILE } from "./agent-state-machine.js";

/** The Anthropic API's limit on a tool name (`^[a-zA-Z0-9_-]{1,64}$`); mounted tools travel as `<server>__<tool>`. */
export const MAX_TOOL_NAME_LENGTH = 64;

/** Time left for a run's own steps once its approval chain has waited out every approver. */
const RUN_WORK_MARGIN_SECONDS = 24 * 3600;

/**
 * A customer config that is valid locally but cannot work in a deployed stack. The message is one
 * line naming the file and the field; `bin/po-agent.ts` prints only that line.
 */
export class DeployConfigError extends Error {
  override readonly name: string = "DeployConfigError";
}

/** The execution's `TimeoutSeconds` from the definition both engines run. */
export function executionTimeoutSeconds(): number {
  const asl = JSON.parse(readFileSync(AGENT_DEFINITION_FILE, "utf8")) as { TimeoutSeconds?: number };
  return asl.TimeoutSeconds ?? 365 * 24 * 3600;
}

/** Longest escalation chain a tier can produce: its approvers, then their delegates, without repeats. */
function longestChain(customer: CustomerConfig): { tier: number; length: number } {
  const byId = new Map(customer.approvers.map((a) => [a.id, a]));
  let longest = { tier: 0, length: 0 };
  customer.approvalPolicy.tiers.forEach((tier, i) => {
    const delegates = tier.approvers.flatMap((id) => byId.get(id)?.delegates ?? []);
    const length = new Set([...tier.approvers, ...delegates]).size;
    if (length > longest.length) longest = { tier: i, length };
  });
  return longest;
}

/**
 * Every reason `customer` (read from `file`) cannot run in AWS, one line each: a stdio MCP server
 * (a Lambda has no child process to offer; mark it `localOnly: true` to leave it out of the stack),
 * a mounted tool name over the API's 64 characters, a Bedrock provider without a Bedrock model id
 * or inference profile, an approval chain that outlasts the execution timeout.
 */
export function deployProblems(customer: CustomerConfig, file: string): string[] {
  const problems: string[] = [];
  customer.mcpServers.forEach((server, i) => {
    if (server.transport === "stdio" && server.localOnly !== true) {
      problems.push(
        `${file}: mcpServers[${i}].transport: stdio MCP server "${server.name}" cannot run in Lambda; serve it over Streamable HTTP (transport: http, url) or mark it localOnly: true`,
      );
    }
    for (const tool of Object.keys(server.tools)) {
      const wire = `${server.name}__${tool}`;
      if (wire.length > MAX_TOOL_NAME_LENGTH) {
        problems.push(
          `${file}: mcpServers[${i}].tools.${tool}: the tool's API name "${wire}" is ${wire.length} characters; the limit is ${MAX_TOOL_NAME_LENGTH}`,
        );
      }
    }
  });
  if (customer.model.provider === "bedrock" && !isBedrockModelId(customer.model.id)) {
    problems.push(
      `${file}: model.id: "${customer.model.id}" is not a Bedrock model id or inference profile (provider: bedrock); use e.g. us.anthropic.claude-sonnet-4-5-20250929-v1:0`,
    );
  }
  const chain = longestChain(customer);
  const waitSeconds = chain.length * customer.approvalPolicy.escalateAfterHours * 3600;
  const limit = executionTimeoutSeconds() - RUN_WORK_MARGIN_SECONDS;
  if (waitSeconds > limit) {
    problems.push(
      `${file}: approvalPolicy.escalateAfterHours: ${chain.length} approvers in tier ${chain.tier} × ${customer.approvalPolicy.escalateAfterHours} h = ${waitSeconds / 3600} h of waiting, over the ${limit / 3600} h a run can wait (execution timeout ${executionTimeoutSeconds() / 3600} h less a day for its own steps)`,
    );
  }
  return problems;
}

/** Throws the first deploy problem of `customer` as one line. */
export function assertDeployable(customer: CustomerConfig, file: string): void {
  const [first] = deployProblems(customer, file);
  if (first !== undefined) throw new DeployConfigError(first);
}

/** The config the deployed functions carry: local-only MCP servers are left out, so the model is never offered them. */
export function deployedCustomer(customer: CustomerConfig): CustomerConfig {
  return { ...customer, mcpServers: customer.mcpServers.filter((s) => !(s.transport === "stdio" && s.localOnly)) };
}

import { join, relative } from "node:path";
import type { App, Environment } from "aws-cdk-lib";
import { loadCustomers } from "../lambdas/shared/config/load.js";
import { assertDeployable } from "./deploy-checks.js";
import { PoAgentStack } from "./po-agent-stack.js";

/**
 * Adds one `PoAgent-<name>` stack per `<customersDir>/*.yaml`. An invalid file throws (its ConfigError
 * names the file) before any stack exists. The sender address comes from the `senderEmail` context value.
 */
export function addCustomerStacks(app: App, customersDir: string): PoAgentStack[] {
  const senderEmail: unknown = app.node.tryGetContext("senderEmail");
  if (senderEmail !== undefined && typeof senderEmail !== "string") {
    throw new Error(`invalid senderEmail context value ${JSON.stringify(senderEmail)}: expected a string`);
  }
  const mcpAuth: unknown = app.node.tryGetContext("mcpAuth");
  if (mcpAuth !== undefined && mcpAuth !== "iam" && mcpAuth !== "bearer") {
    throw new Error(`invalid mcpAuth context value ${JSON.stringify(mcpAuth)}: expected "iam" or "bearer"`);
  }
  const dashboard: unknown = app.node.tryGetContext("dashboard");
  const customers = loadCustomers(customersDir);
  const fileOf = (name: string) => relative(process.cwd(), join(customersDir, `${name}.yaml`));
  // Every config is checked for AWS before any stack exists (the first problem fails synth).
  for (const customer of customers) assertDeployable(customer, fileOf(customer.name));
  return customers.map(
    (customer) =>
      new PoAgentStack(app, `PoAgent-${customer.name}`, {
        customer,
        configFile: fileOf(customer.name),
        senderEmail,
        mcpAuth,
        // `-c dashboard=true` adds a CloudWatch dashboard to every customer stack.
        dashboard: dashboard === true || dashboard === "true",
        env: deployEnv(),
      }),
  );
}

/** Environment-agnostic unless the CLI resolved an account and region. */
function deployEnv(): Environment | undefined {
  const account = process.env.CDK_DEFAULT_ACCOUNT;
  const region = process.env.CDK_DEFAULT_REGION;
  return account && region ? { account, region } : undefined;
}

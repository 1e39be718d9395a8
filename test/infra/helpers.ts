import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { stringify } from "yaml";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { PoAgentFunction } from "../../lib/po-agent-function.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import { bucketFor } from "../../local/stack.js";

/** Context that skips NodejsFunction bundling (checked by AssetStaging via Stack.bundlingRequired). */
export const SKIP_BUNDLING = { "aws:cdk:bundling-stacks": [] as string[] };

/** A valid customer file as written by a human (defaults not applied). */
export function customerYaml(name: string): Record<string, unknown> {
  return {
    name,
    displayName: `${name} Inc.`,
    timeZone: "America/Chicago",
    currency: "USD",
    rules: "Orders up to $500 go through. Anything else needs Alice. Don't buy from Bob's.",
    approvers: [{ id: "alice", name: "Alice", email: `alice@${name}.example` }],
    approvalPolicy: {
      tiers: [
        {
          name: "default",
          description: "every day",
          autoApproveUpTo: 500,
          preferredVendorsExempt: true,
          approvers: ["alice"],
        },
      ],
    },
  };
}

export function customerConfig(name: string): CustomerConfig {
  return CustomerConfig.parse(customerYaml(name));
}

/** A fresh temp dir holding `<name>.yaml` for each entry. */
export function customersDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "po-agent-customers-"));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, `${name}.yaml`), typeof content === "string" ? content : stringify(content));
  }
  return dir;
}

export interface SynthesizedStack {
  readonly stack: PoAgentStack;
  readonly template: Template;
  /** The logical id CDK gave a construct's CloudFormation resource (never hard-coded in tests). */
  readonly logicalId: (construct: IConstruct) => string;
}

/** One PoAgentStack without bundling: fast enough to build per test file. */
export function synthPoAgentStack(name = "acme"): SynthesizedStack {
  const app = new App({ context: SKIP_BUNDLING });
  const stack = new PoAgentStack(app, `PoAgent-${name}`, { customer: customerConfig(name) });
  return { stack, template: Template.fromStack(stack), logicalId: (c) => logicalIdOf(c) };
}

export function logicalIdOf(construct: IConstruct): string {
  const element = construct.node.defaultChild ?? construct;
  return Stack.of(construct).getLogicalId(element as CfnElement);
}

/** Every po-agent Lambda in the construct tree (excludes CDK's own helper functions). */
export function poAgentFunctions(scope: IConstruct): PoAgentFunction[] {
  return scope.node.findAll().filter((c): c is PoAgentFunction => c instanceof PoAgentFunction);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Resources = Record<string, { Properties?: Json; DependsOn?: string | string[] }>;

/** Logical ids one resource needs first: Ref, Fn::GetAtt, ${Id} inside Fn::Sub, DependsOn. */
function dependenciesOf(resource: Resources[string], resources: Resources): Set<string> {
  const deps = new Set<string>();
  const walk = (node: Json | undefined): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
    } else if (node !== null && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "Ref" && typeof value === "string") {
          deps.add(value);
        } else if (key === "Fn::GetAtt" && Array.isArray(value) && typeof value[0] === "string") {
          deps.add(value[0]);
        } else if (key === "Fn::Sub") {
          const text = Array.isArray(value) ? value[0] : value;
          for (const match of String(text).matchAll(/\$\{([A-Za-z0-9]+)[.}]/g)) {
            if (match[1] !== undefined) deps.add(match[1]);
          }
          walk(value);
        } else {
          walk(value);
        }
      }
    }
  };
  walk(resource.Properties);
  for (const dep of [resource.DependsOn ?? []].flat()) deps.add(dep);
  return new Set([...deps].filter((id) => id in resources));
}

/** A CloudFormation dependency cycle as a list of logical ids, or undefined when there is none. */
export function findDependencyCycle(template: { Resources?: Resources }): string[] | undefined {
  const resources = template.Resources ?? {};
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === "visiting") return path.slice(path.indexOf(id));
    if (state.get(id) === "done") return undefined;
    state.set(id, "visiting");
    path.push(id);
    const resource = resources[id];
    for (const dep of resource ? dependenciesOf(resource, resources) : []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, "done");
    return undefined;
  };
  for (const id of Object.keys(resources)) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * The environment a bundle run by BundleProcess gets against the local stack's emulators: the ledger
 * table, bucket and customer the handlers read, static credentials, and Powertools quiet (errors only,
 * no metrics, no tracing).
 */
export function localBundleEnv(
  customer: string,
  services: { s3Endpoint: string; dynamodbEndpoint: string },
): Record<string, string> {
  return {
    LEDGER_TABLE: "po-agent-ledger",
    DOCUMENT_BUCKET: bucketFor(customer),
    CUSTOMER: customer,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL_S3: services.s3Endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: services.dynamodbEndpoint,
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_TRACE_ENABLED: "false",
    AWS_XRAY_CONTEXT_MISSING: "IGNORE_ERROR",
  };
}

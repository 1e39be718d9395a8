import { App } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { addCustomerStacks } from "../../lib/app.js";
import { customersDir, customerYaml, SKIP_BUNDLING } from "./helpers.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, Json> }>;
  Outputs?: Record<string, { Export?: { Name?: Json } }>;
}

/**
 * Properties whose value is a physical name unique per account and region (or globally): two stacks
 * in one account that both set the same value cannot both be created. `*` marks a resource type that
 * is itself an account-wide singleton per value (an SES identity exists once per account and region).
 */
const UNIQUE_NAMES: Record<string, readonly string[]> = {
  "AWS::SES::EmailIdentity": ["EmailIdentity"],
  "AWS::SES::ConfigurationSet": ["Name"],
  "AWS::Logs::LogGroup": ["LogGroupName"],
  "AWS::IAM::Role": ["RoleName"],
  "AWS::IAM::ManagedPolicy": ["ManagedPolicyName"],
  "AWS::IAM::User": ["UserName"],
  "AWS::SecretsManager::Secret": ["Name"],
  "AWS::StepFunctions::StateMachine": ["StateMachineName"],
  "AWS::Lambda::Function": ["FunctionName"],
  "AWS::S3::Bucket": ["BucketName"],
  "AWS::DynamoDB::Table": ["TableName"],
  "AWS::Events::Rule": ["Name"],
  "AWS::CloudWatch::Alarm": ["AlarmName"],
  "AWS::CloudWatch::Dashboard": ["DashboardName"],
  "AWS::SQS::Queue": ["QueueName"],
  "AWS::SNS::Topic": ["TopicName"],
  "AWS::Logs::ResourcePolicy": ["PolicyName"],
};

/**
 * The value CloudFormation would give a name in `stack` of one account and region: pseudo parameters
 * resolved, a Ref/GetAtt of a resource becomes that stack's generated (hence unique) physical id.
 */
function resolve(node: Json | undefined, stack: string): string {
  if (node === undefined || node === null) return "";
  if (typeof node !== "object") return String(node);
  if (Array.isArray(node)) return node.map((n) => resolve(n, stack)).join(",");
  const ref = node.Ref;
  if (typeof ref === "string") {
    const pseudo: Record<string, string> = {
      "AWS::StackName": stack,
      "AWS::AccountId": "111111111111",
      "AWS::Region": "us-east-1",
      "AWS::Partition": "aws",
      "AWS::URLSuffix": "amazonaws.com",
    };
    return pseudo[ref] ?? `${stack}:${ref}`;
  }
  const getAtt = node["Fn::GetAtt"];
  if (Array.isArray(getAtt)) return `${stack}:${getAtt.join(".")}`;
  const join = node["Fn::Join"];
  if (Array.isArray(join) && Array.isArray(join[1])) return join[1].map((n) => resolve(n, stack)).join(String(join[0]));
  return JSON.stringify(node);
}

describe("many customer stacks in one account and region", () => {
  it("three customer stacks create no resource with the same account- or region-unique name", () => {
    // Prepare: three customers, one of them with its own sender; the others use the app-wide default.
    const dir = customersDir({
      acme: customerYaml("acme"),
      globex: customerYaml("globex"),
      initech: { ...customerYaml("initech"), senderEmail: "ap@initech.example" },
    });
    const app = new App({ context: { ...SKIP_BUNDLING, senderEmail: "po-agent@operator.example" } });

    // Act
    const stacks = addCustomerStacks(app, dir);
    const assembly = app.synth();

    // Assess
    expect(stacks).toHaveLength(3);
    const owners = new Map<string, string>();
    const collisions: string[] = [];
    let namesChecked = 0;
    const claim = (name: string, owner: string) => {
      namesChecked += 1;
      const first = owners.get(name);
      if (first !== undefined && first.split(" ")[0] !== owner.split(" ")[0])
        collisions.push(`${name}: ${first} and ${owner}`);
      owners.set(name, owner);
    };
    for (const stack of stacks) {
      const template = assembly.getStackByName(stack.stackName).template as TemplateJson;
      for (const [id, resource] of Object.entries(template.Resources)) {
        if (resource.Type === "AWS::SES::EmailIdentity")
          collisions.push(`${stack.stackName} ${id} creates an SES identity`);
        for (const prop of UNIQUE_NAMES[resource.Type] ?? []) {
          const value = resource.Properties?.[prop];
          if (value !== undefined)
            claim(`${resource.Type}.${prop}=${resolve(value, stack.stackName)}`, `${stack.stackName} ${id}`);
        }
      }
      for (const [id, output] of Object.entries(template.Outputs ?? {})) {
        if (output.Export?.Name !== undefined)
          claim(`Export=${resolve(output.Export.Name, stack.stackName)}`, `${stack.stackName} ${id}`);
      }
    }
    expect(collisions).toEqual([]);
    // The check saw real names (the state machines' vended log groups at least), not an empty set.
    expect(namesChecked).toBeGreaterThanOrEqual(3);
  });

  it("the name check is live: two stacks sharing a hard-coded name are caught", () => {
    const owners = new Map<string, string>();
    const value = { "Fn::Join": ["", ["/aws/vendedlogs/states/", "shared"]] } as Json;
    for (const stack of ["PoAgent-a", "PoAgent-b"]) owners.set(resolve(value, stack), stack);
    expect(owners.size).toBe(1);
    const perStack = { "Fn::Join": ["", ["/aws/vendedlogs/states/", { Ref: "AWS::StackName" }]] } as Json;
    expect(resolve(perStack, "PoAgent-a")).not.toBe(resolve(perStack, "PoAgent-b"));
  });
});

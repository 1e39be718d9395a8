import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { afterEach, describe, expect, it, vi } from "vitest";
import { addCustomerStacks } from "../../lib/app.js";
import { customersDir, customerYaml, SKIP_BUNDLING } from "./helpers.js";

interface FunctionJson {
  readonly Type: string;
  readonly Properties: { readonly Environment?: { readonly Variables?: Record<string, unknown> } };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("the CDK app", () => {
  it("makes one PoAgent-<name> stack per customer file, each serving its own customer", () => {
    const dir = customersDir({ acme: customerYaml("acme"), globex: customerYaml("globex") });
    const app = new App({ context: SKIP_BUNDLING });

    addCustomerStacks(app, dir);
    const assembly = app.synth();

    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(["PoAgent-acme", "PoAgent-globex"]);
    for (const name of ["acme", "globex"]) {
      const resources: Record<string, FunctionJson> = assembly.getStackByName(`PoAgent-${name}`).template.Resources;
      const customers = Object.values(resources)
        .filter((r) => r.Type === "AWS::Lambda::Function")
        .map((r) => r.Properties.Environment?.Variables?.CUSTOMER)
        .filter((c) => c !== undefined);
      expect(customers).toHaveLength(14);
      expect(new Set(customers)).toEqual(new Set([name]));
    }
  });

  it("stays environment-agnostic unless the CLI resolved an account and region", () => {
    const dir = customersDir({ acme: customerYaml("acme") });
    vi.stubEnv("CDK_DEFAULT_ACCOUNT", "");
    vi.stubEnv("CDK_DEFAULT_REGION", "");
    const [agnostic] = addCustomerStacks(new App({ context: SKIP_BUNDLING }), dir);
    vi.stubEnv("CDK_DEFAULT_ACCOUNT", "123456789012");
    vi.stubEnv("CDK_DEFAULT_REGION", "eu-west-1");
    const [pinned] = addCustomerStacks(new App({ context: SKIP_BUNDLING }), dir);

    expect(agnostic?.environment).toBe("aws://unknown-account/unknown-region");
    expect(pinned?.environment).toBe("aws://123456789012/eu-west-1");
  });

  it("throws an error naming the file when a customer config is invalid", () => {
    const dir = customersDir({
      acme: customerYaml("acme"),
      broken: { ...customerYaml("broken"), currency: "dollars" },
    });
    const app = new App({ context: SKIP_BUNDLING });

    const build = () => addCustomerStacks(app, dir);

    expect(build).toThrow(
      expect.objectContaining({ name: "ConfigError", message: expect.stringContaining("broken.yaml") }),
    );
    expect(app.node.children).toHaveLength(0);
  });

  it("takes the sender address from the senderEmail context value and rejects a bad one", () => {
    const dir = customersDir({ acme: customerYaml("acme") });
    const [stack] = addCustomerStacks(new App({ context: { ...SKIP_BUNDLING, senderEmail: "po@acme.example" } }), dir);
    const bad = () => addCustomerStacks(new App({ context: { ...SKIP_BUNDLING, senderEmail: "acme.example" } }), dir);

    if (!stack) throw new Error("no stack");
    Template.fromStack(stack).hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ SENDER_EMAIL: "po@acme.example" }) },
    });
    expect(bad).toThrow('invalid sender email "acme.example"');
  });
});

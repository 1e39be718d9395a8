import { readFileSync } from "node:fs";
import { App } from "aws-cdk-lib";
import { beforeAll, describe, expect, it } from "vitest";
import { AGENT_DEFINITION_FILE } from "../../lib/agent-state-machine.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import { customerConfig, logicalIdOf, poAgentFunctions, SKIP_BUNDLING } from "./helpers.js";

interface CfnStateMachineJson {
  readonly Type: string;
  readonly Properties: {
    readonly DefinitionString: unknown;
    readonly DefinitionSubstitutions: Record<string, unknown>;
  };
}

interface Deployed {
  /** The DefinitionString of the synthesized template, as CloudFormation receives it. */
  readonly stagedDefinition: string;
  readonly substitutions: Record<string, unknown>;
  readonly stack: PoAgentStack;
}

let deployed: Deployed;
beforeAll(() => {
  // Prepare: synthesize the stack and read the state machine's definition back from the template.
  const app = new App({ context: SKIP_BUNDLING });
  const stack = new PoAgentStack(app, "PoAgent-acme", { customer: customerConfig("acme") });
  const assembly = app.synth();
  const artifact = assembly.getStackByName(stack.stackName);
  const resources: Record<string, CfnStateMachineJson> = artifact.template.Resources;
  const [sm] = Object.values(resources).filter((r) => r.Type === "AWS::StepFunctions::StateMachine");
  if (!sm) throw new Error("no state machine in the template");
  const definition = sm.Properties.DefinitionString;
  if (typeof definition !== "string") {
    throw new Error(
      `DefinitionString should be a plain string with \${} placeholders, got ${JSON.stringify(definition).slice(0, 80)}`,
    );
  }
  deployed = { stagedDefinition: definition, substitutions: sm.Properties.DefinitionSubstitutions, stack };
});

const source = () => readFileSync(AGENT_DEFINITION_FILE, "utf8");
const placeholders = (text: string) => new Set([...text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]));

describe("the deployed state machine definition", () => {
  it("is the statemachines/agent.asl.json file, unchanged", () => {
    expect(JSON.parse(deployed.stagedDefinition)).toEqual(JSON.parse(source()));
  });

  it("binds every placeholder of the file, and nothing else", () => {
    const inFile = placeholders(source());
    expect(inFile.size).toBeGreaterThanOrEqual(10);
    expect(new Set(Object.keys(deployed.substitutions))).toEqual(inFile);
  });

  it("binds each <Name>FunctionArn placeholder to the ARN of the lambdas/<name> function", () => {
    const fns = poAgentFunctions(deployed.stack);
    for (const [placeholder, value] of Object.entries(deployed.substitutions)) {
      const pascal = placeholder.replace(/FunctionArn$/, "");
      const folder = pascal.replace(/(?<!^)([A-Z])/g, "-$1").toLowerCase();
      const fn = fns.find((f) => f.handlerName === folder);
      expect(fn, `${placeholder} -> lambdas/${folder}`).toBeDefined();
      expect(value, placeholder).toEqual({ "Fn::GetAtt": [fn ? logicalIdOf(fn) : "", "Arn"] });
    }
  });

  it("once substituted as CloudFormation does, leaves no placeholder and gives every Task a function ARN", () => {
    // Act: substitute like CloudFormation does at deploy time, each GetAtt rendered as a recognisable token.
    let text = deployed.stagedDefinition;
    for (const [placeholder, value] of Object.entries(deployed.substitutions)) {
      text = text.replaceAll(`\${${placeholder}}`, `arn:token:${JSON.stringify(value).replaceAll('"', "'")}`);
    }
    expect(text).not.toMatch(/\$\{/);
    const functionNames = [...text.matchAll(/"FunctionName": "([^"]*)"/g)].map((m) => m[1]);
    expect(functionNames.length).toBeGreaterThanOrEqual(10);
    for (const name of functionNames) expect(name).toMatch(/^arn:token:\{'Fn::GetAtt':\['[A-Za-z0-9]+','Arn'\]\}$/);
  });
});

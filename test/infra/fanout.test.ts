import { beforeAll, describe, expect, it } from "vitest";
import { findDependencyCycle, type SynthesizedStack, synthPoAgentStack } from "./helpers.js";

/** Multi-PO fan-out in AWS: Ingest starts child executions of its own state machine, and nothing else. */
let s: SynthesizedStack;
beforeAll(() => {
  s = synthPoAgentStack("acme");
});

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

describe("child executions of a multi-PO document", () => {
  it("grant Ingest states:StartExecution on its own state machine only, without a dependency cycle", () => {
    // Prepare
    const roleId = s.logicalId(s.stack.agentFunctions.ingest.role ?? s.stack);
    const machineId = s.logicalId(s.stack.agentStateMachine.stateMachine);
    const statements = Object.values(s.template.findResources("AWS::IAM::Policy"))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);

    // Act
    const stepFunctions = statements.flatMap((st) =>
      [st.Action]
        .flat()
        .filter((a) => a.startsWith("states:"))
        .map((a) => ({ action: a, resource: st.Resource })),
    );

    // Assess
    expect(stepFunctions).toEqual([{ action: "states:StartExecution", resource: { Ref: machineId } }]);
    expect(findDependencyCycle(s.template.toJSON())).toBeUndefined();
  });

  it("pass the running state machine's ARN to Ingest, and end the parent's execution after the split", () => {
    // Prepare
    const [machine] = Object.values(s.template.findResources("AWS::StepFunctions::StateMachine"));
    const definition = JSON.stringify(machine?.Properties.DefinitionString);

    // Assess: the definition is inlined with its substitutions; Ingest gets $$.StateMachine.Id.
    expect(definition).toContain('\\"stateMachineArn.$\\": \\"$$.StateMachine.Id\\"');
    expect(definition).toContain('\\"StringEquals\\": \\"split\\"');
  });
});

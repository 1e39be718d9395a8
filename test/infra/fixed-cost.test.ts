import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { fixedMonthlyCost } from "../../lib/fixed-cost.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import { customerConfig, SKIP_BUNDLING } from "./helpers.js";

const templateOf = (props: { dashboard?: boolean } = {}) => {
  const stack = new PoAgentStack(new App({ context: SKIP_BUNDLING }), "PoAgent-acme", {
    customer: customerConfig("acme"),
    ...props,
  });
  return Template.fromStack(stack).toJSON() as Parameters<typeof fixedMonthlyCost>[0];
};

describe("fixed monthly cost of a customer stack before its first PO", () => {
  it("stays under $3: 10 alarms, 2 secrets, an hourly schedule, no dashboard", () => {
    const cost = fixedMonthlyCost(templateOf());
    expect(cost).toMatchObject({ alarms: 10, dashboards: 0, secrets: 2, scheduledInvocationsPerMonth: 730 });
    expect(cost.usd.total).toBeLessThan(3);
    expect(cost.usd.total).toBeCloseTo(1 + 0.8 + cost.usd.schedules, 5);
  });

  it("counts the optional dashboard when asked for one", () => {
    const cost = fixedMonthlyCost(templateOf({ dashboard: true }));
    expect(cost.dashboards).toBe(1);
    expect(cost.usd.dashboards).toBe(3);
  });
});

describe("stack outputs", () => {
  it("give the operator the intake bucket, model-key secret, approval URL, MCP endpoint, state machine and DLQ", () => {
    const stack = new PoAgentStack(new App({ context: SKIP_BUNDLING }), "PoAgent-acme", {
      customer: customerConfig("acme"),
    });
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    const ref = (c: Parameters<typeof stack.getLogicalId>[0]) => stack.getLogicalId(c);
    const values = Object.fromEntries(
      Object.entries(outputs).map(([k, o]) => [k.replace(/[0-9A-F]{8}$/, ""), o.Value]),
    );
    expect(values).toMatchObject({
      IntakeBucketName: { Ref: ref(stack.intake.bucket.node.defaultChild as never) },
      ModelApiKeySecretArn: { Ref: ref(stack.agentFunctions.modelApiKeySecret.node.defaultChild as never) },
      StateMachineArn: { Ref: ref(stack.agentStateMachine.stateMachine.node.defaultChild as never) },
    });
    expect(Object.keys(values)).toEqual(
      expect.arrayContaining(["ApprovalUrl", "IntakeDeadLetterQueueUrl", "McpEndpointUrl"]),
    );
  });
});

import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Code, Function as LambdaFunction, Runtime } from "aws-cdk-lib/aws-lambda";
import { DefinitionBody, Pass, StateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { beforeAll, describe, expect, it } from "vitest";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { METRIC } from "../../lambdas/shared/telemetry.js";
import { Observability } from "../../lib/observability.js";
import { customerYaml } from "./helpers.js";

let template: Template;
let observability: Observability;
const customer = CustomerConfig.parse({ ...customerYaml("acme"), budgets: { maxTokens: 50_000, maxCostUsd: 1.5 } });

beforeAll(() => {
  const stack = new Stack(new App(), "ObservabilityTest");
  const stateMachine = new StateMachine(stack, "Machine", {
    definitionBody: DefinitionBody.fromChainable(new Pass(stack, "Nothing")),
  });
  const fn = (id: string) =>
    new LambdaFunction(stack, id, {
      runtime: Runtime.NODEJS_22_X,
      handler: "index.handler",
      code: Code.fromInline("x"),
    });
  observability = new Observability(stack, "Observability", {
    stateMachine,
    functions: [fn("Orchestrate"), fn("Save")],
    customer,
    approvalBacklogFunction: fn("ApprovalBacklog"),
    dashboard: true,
  });
  template = Template.fromStack(stack);
});

/** The alarm whose description contains `text`, as CloudFormation properties. */
function alarmWith(text: string): Record<string, unknown> {
  const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).filter((a) =>
    String(a.Properties.AlarmDescription).includes(text),
  );
  expect(alarms, `one alarm mentioning "${text}"`).toHaveLength(1);
  return (alarms[0] as { Properties: Record<string, unknown> }).Properties;
}

const emf = (name: string) => ({
  Namespace: "PoAgent",
  MetricName: name,
  Dimensions: Match.arrayWith([
    { Name: "customer", Value: "acme" },
    { Name: "service", Value: "po-agent" },
  ]),
});

describe("observability alarms", () => {
  it("alarms on failed and throttled executions and on Lambda errors", () => {
    expect(alarmWith("state machine ExecutionsFailed")).toMatchObject({ MetricName: "ExecutionsFailed", Threshold: 1 });
    expect(alarmWith("state machine ExecutionsThrottled")).toMatchObject({ MetricName: "ExecutionThrottled" });
    expect(alarmWith("Save Lambda errors")).toMatchObject({ MetricName: "Errors" });
  });

  it("alarms once when a run ends over its turn, token or dollar budget, from the EMF metrics", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      ...emf(METRIC.BudgetExceeded),
      Statistic: "Sum",
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
  });

  it("alarms on p95 run working time and on the age of the approval backlog", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      ...emf(METRIC.RunActiveDuration),
      ExtendedStatistic: "p95",
      Threshold: Duration.minutes(10).toMilliseconds(),
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      ...emf(METRIC.ApprovalBacklogAge),
      Statistic: "Maximum",
      Threshold: Duration.days(2).toSeconds(),
    });
  });

  it("publishes the approval backlog every hour", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 hour)",
      Targets: Match.arrayWith([Match.objectLike({ Arn: Match.anyValue() })]),
    });
  });
});

describe("dashboard", () => {
  it("shows runs, tokens, dollars, turns, tools, duration and backlog for the customer", () => {
    const dashboards = template.findResources("AWS::CloudWatch::Dashboard");
    expect(Object.keys(dashboards)).toHaveLength(1);
    const body = JSON.stringify(Object.values(dashboards)[0]?.Properties.DashboardBody);
    for (const title of [
      "Runs",
      "Tokens",
      "Dollars",
      "Turns and model calls",
      "Tools",
      "Run duration",
      "Approval backlog",
    ]) {
      expect(body).toContain(`\\"title\\":\\"${title}`);
    }
    for (const name of [
      METRIC.CacheReadTokens,
      METRIC.ModelCostUsd,
      METRIC.Escalations,
      METRIC.Retries,
      METRIC.ToolErrors,
    ]) {
      expect(body).toContain(`\\"${name}\\"`);
    }
    expect(body).toContain('\\"customer\\",\\"acme\\"');
    expect(observability.alarms).toHaveLength(4 + 2 + 3);
  });
});

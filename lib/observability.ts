import { Duration } from "aws-cdk-lib";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { METRIC } from "../lambdas/shared/telemetry.js";

/** EMF namespace and service dimension the Lambdas publish under (POWERTOOLS_* in po-agent-function.ts). */
export const METRICS_NAMESPACE = "PoAgent";
export const METRICS_SERVICE = "po-agent";

export interface ObservabilityProps {
  readonly stateMachine: IStateMachine;
  /** Every function of the stack: the dashboard's Lambda widgets. */
  readonly functions: readonly IFunction[];
  /**
   * Each gets an error alarm named after its construct id. A function the state machine invokes needs
   * none: its errors are retried, or caught and end the run (ExecutionsFailed alarms on that).
   * @default - every function in `functions`
   */
  readonly alarmedFunctions?: readonly IFunction[];
  /**
   * Functions invoked only through their Function URL: each gets an alarm on the URL's 5xx answers
   * (`Url5xxCount`) instead of an error alarm. It counts function errors and timeouts too, and also the
   * 500 page a handler answers itself without failing (the approval callback does, so the approver
   * sees a page), which the `Errors` metric never counts.
   * @default - none
   */
  readonly urlFunctions?: readonly IFunction[];
  /**
   * A CloudWatch dashboard for the stack ($3 a month each beyond an account's first three).
   * @default false
   */
  readonly dashboard?: boolean;
  /**
   * The customer this stack serves: the `customer` dimension of the EMF metrics and the budgets
   * the budget alarms use.
   * @default - no per-customer run metrics, budget, duration or backlog alarms: AWS metrics only
   */
  readonly customer?: CustomerConfig;
  /**
   * Invoked every hour to publish the approval backlog metrics (PendingApprovals, ApprovalBacklogAge).
   * @default - no schedule; the backlog alarm stays without data unless another emitter publishes it
   */
  readonly approvalBacklogFunction?: IFunction;
  /**
   * A run's working time (human waits excluded) whose p95 raises an alarm.
   * @default Duration.minutes(10)
   */
  readonly p95RunDurationThreshold?: Duration;
  /**
   * Age of the oldest pending approval that raises an alarm.
   * @default Duration.days(2)
   */
  readonly approvalBacklogAgeThreshold?: Duration;
  /**
   * Topic notified when an alarm fires.
   * @default - no notification; alarm state shows in the console and on the dashboard only
   */
  readonly alarmTopic?: ITopic;
}

/**
 * Alarms on every way a run can end badly (failed, throttled, aborted, timed out), on Lambda errors
 * and throttles, on runs over their token or dollar budget, slow runs and an ageing approval backlog;
 * plus one dashboard that answers "what did the agent do, how long, what did it cost" per customer.
 */
export class Observability extends Construct {
  readonly alarms: readonly Alarm[];
  /** Only when the `dashboard` prop asks for one. */
  readonly dashboard?: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const sm = props.stateMachine;
    const period = { period: Duration.minutes(5) };
    const executionMetrics: Record<string, IMetric> = {
      ExecutionsFailed: sm.metricFailed(period),
      ExecutionsThrottled: sm.metricThrottled(period),
      ExecutionsAborted: sm.metricAborted(period),
      ExecutionsTimedOut: sm.metricTimedOut(period),
    };
    const alarms = Object.entries(executionMetrics).map(([name, metric]) =>
      this.alarmAtLeast(name, metric, 1, `state machine ${name} >= 1 in 5 minutes`),
    );
    for (const fn of props.alarmedFunctions ?? props.functions) {
      const name = fn.node.id;
      alarms.push(this.alarmAtLeast(`${name}Errors`, fn.metricErrors(period), 1, `${name} Lambda errors >= 1`));
    }
    for (const fn of props.urlFunctions ?? []) {
      const name = fn.node.id;
      // Published for a URL on $LATEST under the FunctionName dimension (Lambda's function URL metrics).
      const url5xx = new Metric({
        namespace: "AWS/Lambda",
        metricName: "Url5xxCount",
        dimensionsMap: { FunctionName: fn.functionName },
        statistic: "Sum",
        ...period,
      });
      alarms.push(this.alarmAtLeast(`${name}Url5xx`, url5xx, 1, `${name} Function URL 5xx answers >= 1`));
    }

    const customer = props.customer;
    const run = customer
      ? (name: string, opts: RunMetricOptions = {}) => runMetric(customer.name, name, opts)
      : undefined;
    if (customer && run) {
      const p95 = props.p95RunDurationThreshold ?? Duration.minutes(10);
      const backlogAge = props.approvalBacklogAgeThreshold ?? Duration.days(2);
      // A run over its token or dollar budget ends with BudgetExceeded: one alarm covers both budgets.
      alarms.push(
        this.alarmAtLeast(
          "RunBudgetExceeded",
          run(METRIC.BudgetExceeded, { statistic: "Sum" }),
          1,
          "a run ended because a turn, token or dollar budget was used up",
        ),
        this.alarmAtLeast(
          "RunDurationP95",
          run(METRIC.RunActiveDuration, { statistic: "p95", period: Duration.hours(1) }),
          p95.toMilliseconds(),
          `p95 run working time (human waits excluded) >= ${p95.toHumanString()} over an hour`,
        ),
        this.alarmAtLeast(
          "ApprovalBacklogAge",
          run(METRIC.ApprovalBacklogAge, { statistic: "Maximum", period: Duration.hours(1) }),
          backlogAge.toSeconds(),
          `the oldest pending approval is >= ${backlogAge.toHumanString()} old`,
        ),
      );
    }
    if (props.approvalBacklogFunction) {
      new Rule(this, "ApprovalBacklogSchedule", {
        description: "po-agent: publish the approval backlog metrics",
        // Hourly: the age alarm's threshold is days, and each invocation costs a Lambda run and a query.
        schedule: Schedule.rate(Duration.hours(1)),
        targets: [new LambdaFunction(props.approvalBacklogFunction)],
      });
    }
    if (props.alarmTopic !== undefined) {
      const action = new SnsAction(props.alarmTopic);
      for (const alarm of alarms) alarm.addAlarmAction(action);
    }
    this.alarms = alarms;

    if (props.dashboard !== true) return;
    const dashboard = new Dashboard(this, "Dashboard");
    this.dashboard = dashboard;
    dashboard.addWidgets(
      new AlarmStatusWidget({ title: "Alarms", alarms, width: 24, height: 4 }),
      new GraphWidget({
        title: "Executions",
        left: [sm.metricStarted(period), sm.metricSucceeded(period), ...Object.values(executionMetrics)],
        width: 12,
      }),
    );
    if (run) {
      const sum = (name: string, label: string) => run(name, { statistic: "Sum", label });
      dashboard.addWidgets(
        new GraphWidget({
          title: "Runs",
          left: [
            sum(METRIC.RunsStarted, "started"),
            sum(METRIC.RunsSaved, "saved"),
            sum(METRIC.RunsRejected, "rejected"),
            sum(METRIC.RunsFailed, "failed"),
            sum(METRIC.Escalations, "escalations"),
          ],
          width: 12,
        }),
        new SingleValueWidget({
          title: "Last 24 hours",
          metrics: [
            run(METRIC.RunsFinished, { statistic: "Sum", period: Duration.days(1), label: "runs finished" }),
            run(METRIC.ModelCostUsd, { statistic: "Sum", period: Duration.days(1), label: "model $" }),
            run(METRIC.RunAwsCostUsd, { statistic: "Sum", period: Duration.days(1), label: "AWS $ (estimate)" }),
            run(METRIC.Escalations, { statistic: "Sum", period: Duration.days(1), label: "escalations" }),
          ],
          width: 24,
        }),
        new GraphWidget({
          title: "Tokens",
          left: [
            sum(METRIC.InputTokens, "input"),
            sum(METRIC.OutputTokens, "output"),
            sum(METRIC.CacheReadTokens, "cache read"),
            sum(METRIC.CacheWriteTokens, "cache write"),
          ],
          width: 12,
        }),
        new GraphWidget({
          title: "Dollars",
          left: [sum(METRIC.ModelCostUsd, "model $"), sum(METRIC.RunAwsCostUsd, "AWS $ (estimate)")],
          right: [run(METRIC.RunCostUsd, { statistic: "Maximum", label: "costliest run $" })],
          width: 12,
        }),
        new GraphWidget({
          title: "Turns and model calls",
          left: [
            run(METRIC.TurnsPerRun, { statistic: "Average", label: "turns per run (avg)" }),
            run(METRIC.TurnsPerRun, { statistic: "Maximum", label: "turns per run (max)" }),
          ],
          right: [
            sum(METRIC.ModelCalls, "model calls"),
            run(METRIC.ModelLatency, { statistic: "p95", label: "model p95 ms" }),
          ],
          width: 12,
        }),
        new GraphWidget({
          title: "Tools",
          left: [
            sum(METRIC.ToolCalls, "tool calls"),
            sum(METRIC.ToolErrors, "tool errors"),
            sum(METRIC.Retries, "retries"),
          ],
          right: [run(METRIC.ToolDuration, { statistic: "p95", label: "tool p95 ms" })],
          width: 12,
        }),
        new GraphWidget({
          title: "Run duration (ms)",
          left: [
            run(METRIC.RunActiveDuration, { statistic: "p50", label: "working p50" }),
            run(METRIC.RunActiveDuration, { statistic: "p95", label: "working p95" }),
            run(METRIC.RunDuration, { statistic: "p95", label: "wall clock p95 (incl. approvals)" }),
          ],
          width: 12,
        }),
        new GraphWidget({
          title: "Approval backlog",
          left: [run(METRIC.PendingApprovals, { statistic: "Maximum", label: "pending" })],
          right: [run(METRIC.ApprovalBacklogAge, { statistic: "Maximum", label: "oldest (s)" })],
          width: 12,
        }),
      );
    }
    dashboard.addWidgets(
      new GraphWidget({
        title: "Lambda errors and throttles",
        left: props.functions.map((fn) => fn.metricErrors({ ...period, label: fn.node.id })),
        right: props.functions.map((fn) => fn.metricThrottles({ ...period, label: `${fn.node.id} throttles` })),
        width: 12,
      }),
      new GraphWidget({
        title: "Lambda duration (p95)",
        left: props.functions.map((fn) => fn.metricDuration({ ...period, statistic: "p95", label: fn.node.id })),
        width: 12,
      }),
    );
  }

  private alarmAtLeast(id: string, metric: IMetric, threshold: number, what: string): Alarm {
    return new Alarm(this, id, {
      alarmDescription: `po-agent: ${what}`,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}

interface RunMetricOptions {
  statistic?: string;
  period?: Duration;
  label?: string;
}

/** One EMF metric as the Lambdas publish it: namespace PoAgent, dimensions service + customer. */
export function runMetric(customer: string, metricName: string, opts: RunMetricOptions = {}): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: METRICS_SERVICE, customer },
    statistic: opts.statistic ?? "Sum",
    period: opts.period ?? Duration.minutes(5),
    ...(opts.label ? { label: opts.label } : {}),
  });
}

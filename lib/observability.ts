import { Duration } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

export interface ObservabilityProps {
  readonly stateMachine: IStateMachine;
  /** Each gets an error alarm named after its construct id. */
  readonly functions: readonly IFunction[];
  /**
   * Topic notified when an alarm fires.
   * @default - no notification; alarm state shows in the console and on the dashboard only
   */
  readonly alarmTopic?: ITopic;
}

/**
 * Alarms on every way a run can end badly (failed, throttled, aborted, timed out) and on Lambda
 * errors, plus a small dashboard. Any single occurrence alarms: a lost PO is never routine.
 */
export class Observability extends Construct {
  readonly alarms: readonly Alarm[];

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
      this.alarmOnAny(name, metric, `state machine ${name}`),
    );
    for (const fn of props.functions) {
      alarms.push(this.alarmOnAny(`${fn.node.id}Errors`, fn.metricErrors(period), `${fn.node.id} Lambda errors`));
    }
    if (props.alarmTopic !== undefined) {
      const action = new SnsAction(props.alarmTopic);
      for (const alarm of alarms) {
        alarm.addAlarmAction(action);
      }
    }
    this.alarms = alarms;

    const dashboard = new Dashboard(this, "Dashboard");
    dashboard.addWidgets(
      new GraphWidget({
        title: "Executions",
        left: [sm.metricStarted(period), sm.metricSucceeded(period), ...Object.values(executionMetrics)],
        width: 12,
      }),
      new GraphWidget({
        title: "Lambda errors",
        left: props.functions.map((fn) => fn.metricErrors({ ...period, label: fn.node.id })),
        width: 12,
      }),
      new GraphWidget({
        title: "Lambda duration (p95)",
        left: props.functions.map((fn) => fn.metricDuration({ ...period, statistic: "p95", label: fn.node.id })),
        width: 24,
      }),
    );
  }

  private alarmOnAny(id: string, metric: IMetric, what: string): Alarm {
    return new Alarm(this, id, {
      alarmDescription: `po-agent: ${what} >= 1 in 5 minutes`,
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}

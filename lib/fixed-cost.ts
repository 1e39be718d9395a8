/**
 * What one customer stack costs per month before its first PO: the resources billed whether or not a
 * run happens. us-east-1 list prices, dated; free tiers ignored except where they are per account
 * (the first three dashboards), since 100 stacks share one account.
 */
export const FIXED_PRICES = {
  date: "2026-11-30",
  /** Standard-resolution alarm, per metric it evaluates. */
  alarmMetricUsd: 0.1,
  /** Per dashboard beyond the account's first three. */
  dashboardUsd: 3,
  secretUsd: 0.4,
  /** Custom metric per month (first 10,000 tier); none is published before the first PO. */
  customMetricUsd: 0.3,
  /** Lambda arm64: per request and per GB-second. */
  lambdaRequestUsd: 0.2 / 1e6,
  lambdaGbSecondUsd: 0.0000133334,
  /** DynamoDB on-demand read request unit. */
  readRequestUsd: 0.125 / 1e6,
} as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, Json> }>;
}

export interface FixedCost {
  alarms: number;
  dashboards: number;
  secrets: number;
  scheduledInvocationsPerMonth: number;
  /** Line items in dollars per month. */
  usd: { alarms: number; dashboards: number; secrets: number; schedules: number; total: number };
}

const HOURS_PER_MONTH = 730;

/** The fixed monthly cost of one synthesized stack, from its template. */
export function fixedMonthlyCost(template: TemplateJson): FixedCost {
  const resources = Object.values(template.Resources);
  const of = (type: string) => resources.filter((r) => r.Type === type);
  const alarmMetrics = of("AWS::CloudWatch::Alarm").reduce((n, a) => {
    const metrics = a.Properties?.Metrics;
    return n + (Array.isArray(metrics) ? metrics.filter((m) => (m as { MetricStat?: Json }).MetricStat).length : 1);
  }, 0);
  let invocations = 0;
  for (const rule of of("AWS::Events::Rule")) {
    const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(
      String(rule.Properties?.ScheduleExpression ?? ""),
    );
    if (!rate) continue;
    const every = Number(rate[1]) * (rate[2]?.startsWith("minute") ? 1 / 60 : rate[2]?.startsWith("hour") ? 1 : 24);
    invocations += HOURS_PER_MONTH / every;
  }
  const p = FIXED_PRICES;
  // A scheduled approval-backlog run: 256 MB for about 300 ms and one ledger query of a few read units.
  const perInvocation = p.lambdaRequestUsd + 0.25 * 0.3 * p.lambdaGbSecondUsd + 4 * p.readRequestUsd;
  const usd = {
    alarms: alarmMetrics * p.alarmMetricUsd,
    dashboards: of("AWS::CloudWatch::Dashboard").length * p.dashboardUsd,
    secrets: of("AWS::SecretsManager::Secret").length * p.secretUsd,
    schedules: invocations * perInvocation,
    total: 0,
  };
  usd.total = usd.alarms + usd.dashboards + usd.secrets + usd.schedules;
  return {
    alarms: alarmMetrics,
    dashboards: of("AWS::CloudWatch::Dashboard").length,
    secrets: of("AWS::SecretsManager::Secret").length,
    scheduledInvocationsPerMonth: Math.round(invocations),
    usd,
  };
}

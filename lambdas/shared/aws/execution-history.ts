import type { HistoryEvent, SFNClient } from "@aws-sdk/client-sfn";
import { type AwsUsage, usageFromHistory } from "../cost-estimate.js";
import { currentUsage } from "../usage-meter.js";

/** GetExecutionHistory's largest page. */
const PAGE = 1000;

/**
 * Every event of an execution so far, oldest first, page by page (states:GetExecutionHistory on the
 * execution's ARN; the stack grants it to Finalize and RecordFailure on its own machine's executions).
 */
export async function executionHistory(sfn: SFNClient, executionArn: string): Promise<HistoryEvent[]> {
  const { GetExecutionHistoryCommand } = await import("@aws-sdk/client-sfn");
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new GetExecutionHistoryCommand({
        executionArn,
        maxResults: PAGE,
        includeExecutionData: true,
        ...(nextToken ? { nextToken } : {}),
      }),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** AgentDeps.executionUsage over a Step Functions client (AWS, or the local engine's API). */
export function historyUsage(
  sfn: () => Promise<SFNClient>,
): (executionArn: string, extraTransitions: number) => Promise<AwsUsage> {
  return async (executionArn, extraTransitions) => {
    const events = await executionHistory(await sfn(), executionArn);
    const own = currentUsage();
    return usageFromHistory(events, { extraTransitions, ...(own ? { ownUsage: own } : {}) });
  };
}

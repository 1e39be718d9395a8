/**
 * Each local execution's history in the shape of Step Functions' GetExecutionHistory (AWS
 * HistoryEvent: `<Type>StateEntered/Exited`, TaskScheduled → TaskStarted → TaskSucceeded |
 * TaskSubmitted | TaskFailed linked by previousEventId, Lambda results as the raw Invoke response),
 * built from the local engine's state events and its Lambda attempts. Served by the local Step
 * Functions API (sfn-api.ts), so Finalize counts a local run's cost with the same code as in AWS.
 */
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import type { EventLog, TaskAttempt } from "./engine.js";

/** Local state types (engine) → the prefix of AWS's event type names. */
const TYPE_PREFIX: Record<string, string> = {
  Task: "Task",
  Choice: "Choice",
  Map: "Map",
  Parallel: "Parallel",
  Pass: "Pass",
  Wait: "Wait",
  Succeed: "Succeed",
  Fail: "Fail",
};
const LAMBDA_RESOURCE = "arn:aws:states:::lambda:";
/** Executions remembered (oldest dropped first): a long-lived local stack runs thousands. */
const MAX_EXECUTIONS = 2_000;

export class ExecutionHistories {
  private readonly byExecution = new Map<string, HistoryEvent[]>();
  /** attempt number → the id of its last event (the next one links to it). */
  private readonly lastOfAttempt = new Map<number, number>();

  /** The engine's onEvent. */
  onEvent(executionArn: string, event: EventLog): void {
    const timestamp = new Date(event.timestamp);
    if (event.type === "ExecutionStarted") {
      this.push(executionArn, { type: "ExecutionStarted", timestamp });
      return;
    }
    if (!("state" in event)) return;
    const prefix = TYPE_PREFIX[event.state.type] ?? "Task";
    if (event.type === "StateEntered") {
      this.push(executionArn, {
        type: `${prefix}StateEntered` as HistoryEvent["type"],
        timestamp,
        stateEnteredEventDetails: { name: event.state.name, input: JSON.stringify(event.state.input ?? null) },
      });
    } else if (event.type === "StateExited") {
      this.push(executionArn, {
        type: `${prefix}StateExited` as HistoryEvent["type"],
        timestamp,
        stateExitedEventDetails: { name: event.state.name, output: JSON.stringify(event.state.output ?? null) },
      });
    }
  }

  /** The engine's onTask: one Lambda attempt's phases. */
  onTask(executionArn: string, task: TaskAttempt): void {
    const timestamp = new Date();
    const previousEventId = this.lastOfAttempt.get(task.attempt);
    if (task.phase === "scheduled") {
      const resource = task.resource.startsWith(LAMBDA_RESOURCE)
        ? task.resource.slice(LAMBDA_RESOURCE.length)
        : task.resource;
      const scheduled = this.push(executionArn, {
        type: "TaskScheduled",
        timestamp,
        taskScheduledEventDetails: {
          resourceType: "lambda",
          resource,
          region: "us-east-1",
          parameters: JSON.stringify({ FunctionName: task.functionName }),
        },
      });
      const started = this.push(executionArn, {
        type: "TaskStarted",
        timestamp,
        previousEventId: scheduled,
        taskStartedEventDetails: { resourceType: "lambda", resource },
      });
      this.lastOfAttempt.set(task.attempt, started);
      return;
    }
    this.lastOfAttempt.delete(task.attempt);
    const details = { resourceType: "lambda", resource: "invoke" };
    if (task.phase === "failed") {
      this.push(executionArn, {
        type: "TaskFailed",
        timestamp,
        previousEventId,
        taskFailedEventDetails: { ...details, error: task.error, cause: task.cause },
      });
    } else {
      const output = JSON.stringify({ Payload: task.output, StatusCode: 200, ExecutedVersion: "$LATEST" });
      this.push(
        executionArn,
        task.phase === "succeeded"
          ? { type: "TaskSucceeded", timestamp, previousEventId, taskSucceededEventDetails: { ...details, output } }
          : {
              type: "TaskSubmitted",
              timestamp,
              previousEventId,
              taskSubmittedEventDetails: { resourceType: "lambda", resource: "invoke.waitForTaskToken", output },
            },
      );
    }
  }

  /** The execution's events so far, oldest first (empty for an execution never seen). */
  history(executionArn: string): HistoryEvent[] {
    return this.byExecution.get(executionArn) ?? [];
  }

  private push(executionArn: string, event: Omit<HistoryEvent, "id">): number {
    let events = this.byExecution.get(executionArn);
    if (!events) {
      events = [];
      this.byExecution.set(executionArn, events);
      if (this.byExecution.size > MAX_EXECUTIONS) {
        const oldest = this.byExecution.keys().next();
        if (!oldest.done) this.byExecution.delete(oldest.value);
      }
    }
    const id = events.length + 1;
    events.push({ ...event, id } as HistoryEvent);
    return id;
  }
}

/**
 * Adapter that runs `statemachines/agent.asl.json` on `aws-local-stepfunctions` with the AWS behaviours that
 * engine lacks: routing Lambda tasks by resolved function ARN (it routes by state name), `$$.Task.Token` with a
 * token registry for `.waitForTaskToken`, and refusal of ASL features it would silently ignore.
 */
import { randomBytes } from "node:crypto";
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  type RunOptions,
  StateMachine,
  type StateMachineDefinition,
} from "aws-local-stepfunctions";

installPromiseWithResolvers();

/** A local stand-in for one Lambda function: receives the invoke payload, returns the function's result. */
export type LambdaRoute = (payload: unknown) => Promise<unknown>;

type JsonValue = Parameters<StateMachine["run"]>[0];
type LocalHandler = (input: JsonValue) => Promise<JsonValue>;
type Overrides = NonNullable<RunOptions["overrides"]>;
type RetryIntervalOverrides = NonNullable<Overrides["retryIntervalOverrides"]>;

/** One event of an execution's history, as the engine reports it (states entered/exited/failed/retried/caught...). */
export type EventLog = ReturnType<StateMachine["run"]>["eventLogs"] extends AsyncGenerator<infer E> ? E : never;

/** One attempt of a Lambda Task; `attempt` ties its phases together (parallel Map iterations interleave). */
export type TaskAttempt = { attempt: number; stateName: string } & (
  | { phase: "scheduled"; resource: string; functionName: string }
  | { phase: "succeeded" | "submitted"; output: unknown }
  | { phase: "failed"; error: string; cause: string }
);

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT";

export interface ExecutionResult {
  status: Exclude<ExecutionStatus, "RUNNING">;
  output?: unknown;
  error?: string;
  cause?: string;
}

export interface ExecutionDescription {
  executionArn: string;
  name: string;
  status: ExecutionStatus;
  input: unknown;
  startDate: Date;
  stopDate?: Date;
  output?: unknown;
  error?: string;
  cause?: string;
}

export interface PendingTask {
  taskToken: string;
  executionArn: string;
  stateName: string;
  payload: unknown;
}

export interface TaskTarget {
  /** Slash-separated path of state names, e.g. `RunTools/ExtractTool`. */
  statePath: string;
  stateName: string;
  resource: string;
  /** The Lambda the task invokes, when it can be known without running the machine. */
  functionName?: string;
}

export interface LocalEngineOptions {
  /** ASL text with every `${Placeholder}` already substituted. */
  definition: string;
  /** Function ARN (or bare function name) → local handler. */
  routes: Record<string, LambdaRoute>;
  /** Receives every history event; a throwing listener is ignored. */
  onEvent?: (executionArn: string, event: EventLog) => void;
  /**
   * Receives each Lambda attempt of a Task (scheduled, then its raw result or error), as AWS's history
   * records TaskScheduled/TaskSucceeded/TaskFailed (local/execution-history.ts); a throwing listener is ignored.
   */
  onTask?: (executionArn: string, task: TaskAttempt) => void;
  /**
   * Milliseconds to wait before each retry instead of the definition's backoff: one number for every state, or
   * the engine's per-state-name map. Tests use 0 to keep retries instant.
   */
  retryIntervalOverrides?: number | RetryIntervalOverrides;
  /** @default "arn:aws:states:us-east-1:000000000000:stateMachine:PoAgent-local" */
  stateMachineArn?: string;
}

const LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke";
const LAMBDA_INVOKE_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken";
const LAMBDA_ARN = /^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$/;
/** What `$$.Task.Token` evaluates to inside the engine; replaced by a minted token before the route is called. */
const TOKEN_PLACEHOLDER = "__po_agent_local_task_token__";
/** Node timers overflow past 2^31-1 ms (about 24.8 days) and then fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
const DEFAULT_TASK_TIMEOUT_SECONDS = 60;
const DEFAULT_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:PoAgent-local";
/** Timed-out tokens remembered so late callbacks get TaskTimedOut rather than TaskDoesNotExist. */
const MAX_REMEMBERED_EXPIRED = 1_000;

/** Fields the local engine ignores without a word (JSONata, variables, distributed map, heartbeats). */
const UNSUPPORTED_STATE_FIELDS: Record<string, string> = {
  Arguments: "JSONata Arguments",
  Output: "JSONata Output",
  Items: "JSONata Items",
  Assign: "Assign (variables)",
  ItemReader: "ItemReader (distributed map)",
  ItemWriter: "ItemWriter",
  ResultWriter: "ResultWriter (distributed map)",
  ItemBatcher: "ItemBatcher (distributed map)",
  ToleratedFailurePercentage: "ToleratedFailurePercentage (distributed map)",
  ToleratedFailurePercentagePath: "ToleratedFailurePercentagePath (distributed map)",
  ToleratedFailureCount: "ToleratedFailureCount (distributed map)",
  ToleratedFailureCountPath: "ToleratedFailureCountPath (distributed map)",
  HeartbeatSeconds: "HeartbeatSeconds",
  HeartbeatSecondsPath: "HeartbeatSecondsPath",
  Credentials: "Credentials (cross-account task)",
};

/**
 * Replaces every `${Name}` with its substitution, as CDK's `definitionSubstitutions` does, and refuses to leave
 * any behind: an unresolved placeholder would otherwise surface as an unroutable ARN at run time.
 */
export function substitute(aslText: string, substitutions: Record<string, string>): string {
  const missing = new Set<string>();
  const result = aslText.replace(/\$\{([^}]*)\}/g, (whole, name: string) => {
    const value = substitutions[name];
    if (value === undefined) {
      missing.add(name);
      return whole;
    }
    return value;
  });
  if (missing.size > 0) {
    throw new Error(
      `unresolved placeholders in state machine definition: ${[...missing].map((n) => `\${${n}}`).join(", ")}`,
    );
  }
  return result;
}

/** Lists every feature of `definition` that the local engine would ignore or mis-run, each naming its state path. */
export function findUnsupported(definition: object): string[] {
  const findings: string[] = [];
  if (isRecord(definition) && definition.QueryLanguage === "JSONata") {
    findings.push("(root): QueryLanguage JSONata");
  }
  visitStates(definition, "", ({ path, state }) => {
    if (state.QueryLanguage === "JSONata") findings.push(`${path}: QueryLanguage JSONata`);
    for (const [field, label] of Object.entries(UNSUPPORTED_STATE_FIELDS)) {
      if (field in state) findings.push(`${path}: ${label}`);
    }
    const processor = state.ItemProcessor;
    if (
      isRecord(processor) &&
      isRecord(processor.ProcessorConfig) &&
      processor.ProcessorConfig.Mode === "DISTRIBUTED"
    ) {
      findings.push(`${path}: distributed Map (ProcessorConfig.Mode DISTRIBUTED)`);
    }
    if (Array.isArray(state.Choices)) {
      state.Choices.forEach((rule, i) => {
        if (isRecord(rule) && "Condition" in rule) findings.push(`${path}: JSONata Condition in Choices[${i}]`);
        if (isRecord(rule) && "Assign" in rule) findings.push(`${path}: Assign (variables) in Choices[${i}]`);
      });
    }
    if (Array.isArray(state.Catch)) {
      state.Catch.forEach((catcher, i) => {
        if (isRecord(catcher) && "Assign" in catcher) findings.push(`${path}: Assign (variables) in Catch[${i}]`);
        if (isRecord(catcher) && "Output" in catcher) findings.push(`${path}: JSONata Output in Catch[${i}]`);
      });
    }
    if (containsJsonata(ownFields(state))) findings.push(`${path}: JSONata expression ({% ... %})`);
    for (const field of ["TimeoutSeconds", "Seconds"] as const) {
      const seconds = state[field];
      if (typeof seconds === "number" && seconds * 1000 > MAX_TIMER_MS) {
        findings.push(
          `${path}: ${field} ${seconds} exceeds the ${Math.floor(MAX_TIMER_MS / 1000)} s a local timer can hold`,
        );
      }
    }
  });
  return findings;
}

/** Every Task of the definition, nested Map and Parallel states included, with the Lambda it invokes. */
export function taskTargets(definition: object): TaskTarget[] {
  const targets: TaskTarget[] = [];
  visitStates(definition, "", ({ path, name, state }) => {
    if (state.Type !== "Task") return;
    const resource = typeof state.Resource === "string" ? state.Resource : "";
    const target: TaskTarget = { statePath: path, stateName: name, resource };
    if (resource === LAMBDA_INVOKE || resource === LAMBDA_INVOKE_WAIT) {
      const parameters = state.Parameters;
      if (isRecord(parameters) && typeof parameters.FunctionName === "string") {
        target.functionName = parameters.FunctionName;
      }
    } else if (LAMBDA_ARN.test(resource)) {
      target.functionName = resource;
    }
    targets.push(target);
  });
  return targets;
}

/** Error whose `name` is the AWS error code, so callers (and the SFN API) can map it like the SDK would. */
export class LocalSfnError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * Rejection used to end a waiting task when its execution stops: the engine must neither retry nor catch it,
 * otherwise an aborted run would call the Lambda again.
 */
class ExecutionStoppedError extends Error {
  override readonly name: string = "States.Runtime";
  readonly isRetryable = false;
  readonly isCatchable = false;
  constructor() {
    super("execution stopped");
  }
}

interface TaskWaiter {
  task: PendingTask;
  resolve: (output: JsonValue) => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

interface ExecutionRecord {
  description: ExecutionDescription;
  tokens: Set<string>;
  abort: () => void;
}

interface TaskShape {
  kind: "invoke" | "wait" | "direct";
  resource: string;
  timeoutSeconds?: number;
  /** `TimeoutSecondsPath`, resolved (like the engine does) against the input after Parameters. */
  timeoutSecondsPath?: string;
}

/**
 * Runs the same ASL file as production on the in-process engine. Construction fails loudly when a Task has no
 * local route (the engine would call real AWS Lambda) or the definition uses a feature the engine ignores.
 */
export class LocalEngine {
  private readonly machine: StateMachine;
  private readonly routesByKey = new Map<string, LambdaRoute>();
  private readonly routesByName = new Map<string, LambdaRoute>();
  private readonly taskShapes = new Map<string, TaskShape>();
  private readonly executionTimeoutSeconds: number | undefined;
  private readonly retryIntervalOverrides: RetryIntervalOverrides | undefined;
  private readonly stateMachineArn: string;
  private readonly onEvent: LocalEngineOptions["onEvent"];
  private readonly onTask: LocalEngineOptions["onTask"];
  private attempts = 0;
  private readonly waiters = new Map<string, TaskWaiter>();
  private readonly expiredTokens = new Set<string>();
  private readonly executions = new Map<string, ExecutionRecord>();

  constructor(opts: LocalEngineOptions) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(opts.definition);
    } catch (error) {
      throw new Error(`state machine definition is not JSON: ${(error as Error).message}`);
    }
    if (!isRecord(parsed) || !isRecord(parsed.States) || typeof parsed.StartAt !== "string") {
      throw new Error("state machine definition needs StartAt and States");
    }
    for (const [key, route] of Object.entries(opts.routes)) {
      this.routesByKey.set(key, route);
      this.routesByName.set(functionNameOf(key), route);
    }

    const problems = findUnsupported(parsed);
    for (const target of taskTargets(parsed)) {
      const problem = this.registerTask(target, parsed);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) {
      throw new Error(`the state machine cannot run on the local engine:\n - ${problems.join("\n - ")}`);
    }

    // The engine arms one timer for the execution timeout; 30 days overflows Node timers and would fire at once.
    const { TimeoutSeconds, ...engineDefinition } = parsed;
    this.executionTimeoutSeconds = typeof TimeoutSeconds === "number" ? TimeoutSeconds : undefined;
    this.machine = new StateMachine(engineDefinition as unknown as StateMachineDefinition, {
      validationOptions: { checkArn: true, checkPaths: true },
    });
    this.retryIntervalOverrides =
      typeof opts.retryIntervalOverrides === "number"
        ? Object.fromEntries(
            retryableStateNames(parsed).map((name) => [name, opts.retryIntervalOverrides as number] as const),
          )
        : opts.retryIntervalOverrides;
    this.stateMachineArn = opts.stateMachineArn ?? DEFAULT_STATE_MACHINE_ARN;
    this.onEvent = opts.onEvent;
    this.onTask = opts.onTask;
  }

  /** Starts an execution; like AWS, a name (execution ARN) already used on this engine is refused. */
  startExecution(input: { name: string; input: unknown; executionArn?: string }): {
    executionArn: string;
    result: Promise<ExecutionResult>;
    abort(): void;
  } {
    const { name } = input;
    if (name.length === 0 || name.length > 80 || /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/.test(name)) {
      throw new LocalSfnError("InvalidName", `invalid execution name: ${JSON.stringify(name)}`);
    }
    const executionArn =
      input.executionArn ?? `${this.stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
    if (this.executions.has(executionArn)) {
      throw new LocalSfnError("ExecutionAlreadyExists", `Execution Already Exists: '${executionArn}'`);
    }
    const executionInput = toJson(input.input);
    const description: ExecutionDescription = {
      executionArn,
      name,
      status: "RUNNING",
      input: executionInput,
      startDate: new Date(),
    };
    const run = this.machine.run(executionInput, {
      overrides: {
        taskResourceLocalHandlers: this.handlersFor(executionArn),
        ...(this.retryIntervalOverrides ? { retryIntervalOverrides: this.retryIntervalOverrides } : {}),
      },
      context: {
        Execution: { Id: executionArn, Name: name, RoleArn: "arn:aws:iam::000000000000:role/PoAgent-local" },
        StateMachine: { Id: this.stateMachineArn, Name: this.stateMachineArn.split(":").pop() ?? "" },
        Task: { Token: TOKEN_PLACEHOLDER },
      },
    });

    let timedOut = false;
    const record: ExecutionRecord = { description, tokens: new Set(), abort: () => {} };
    const stop = (): void => {
      run.abort();
      this.releaseTokens(record);
    };
    record.abort = stop;
    this.executions.set(executionArn, record);
    const cancelTimeout =
      this.executionTimeoutSeconds === undefined
        ? () => {}
        : longTimeout(this.executionTimeoutSeconds * 1000, () => {
            timedOut = true;
            stop();
          });

    void this.forwardEvents(executionArn, run.eventLogs);
    const result = run.result.then(
      (output): ExecutionResult => ({ status: "SUCCEEDED", output }),
      (error: unknown): ExecutionResult => {
        if (timedOut || error instanceof ExecutionTimeoutError) {
          return { status: "TIMED_OUT", error: "States.Timeout", cause: "the execution exceeded its TimeoutSeconds" };
        }
        if (error instanceof ExecutionAbortedError) return { status: "ABORTED" };
        const failure = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : error;
        return failure instanceof Error
          ? { status: "FAILED", error: failure.name, cause: failure.message }
          : { status: "FAILED", error: "States.Runtime", cause: String(failure) };
      },
    );
    const settled = result.then((outcome) => {
      cancelTimeout();
      this.releaseTokens(record);
      Object.assign(description, outcome, { stopDate: new Date() });
      return outcome;
    });
    return { executionArn, result: settled, abort: stop };
  }

  /** Completes a waiting task with `output` (JSON text), as `SendTaskSuccess` does. */
  sendTaskSuccess(taskToken: string, output: string): void {
    this.checkToken(taskToken);
    let parsed: JsonValue;
    try {
      parsed = toJson(JSON.parse(output));
    } catch {
      throw new LocalSfnError("InvalidOutput", "output is not valid JSON");
    }
    this.takeWaiter(taskToken).resolve(parsed);
  }

  /** Fails a waiting task; `error` becomes the error name that Retry/Catch match, as `SendTaskFailure` does. */
  sendTaskFailure(taskToken: string, error?: string, cause?: string): void {
    const waiter = this.takeWaiter(taskToken);
    waiter.reject(new LocalSfnError(error ?? "", cause ?? ""));
  }

  /** Accepts a heartbeat for a live token (heartbeat timeouts are refused at construction, so nothing else). */
  sendTaskHeartbeat(taskToken: string): void {
    this.checkToken(taskToken);
  }

  /** Tasks waiting for a callback, oldest first. */
  pendingTasks(): PendingTask[] {
    return [...this.waiters.values()].map(({ task }) => ({ ...task }));
  }

  describeExecution(executionArn: string): ExecutionDescription | undefined {
    const record = this.executions.get(executionArn);
    return record ? { ...record.description } : undefined;
  }

  listExecutions(): ExecutionDescription[] {
    return [...this.executions.values()].map(({ description }) => ({ ...description }));
  }

  /** Aborts every running execution (process shutdown, test teardown). */
  abortAll(): void {
    for (const record of this.executions.values()) {
      if (record.description.status === "RUNNING") record.abort();
    }
  }

  private registerTask(target: TaskTarget, definition: Record<string, unknown>): string | undefined {
    const { statePath, stateName, resource, functionName } = target;
    if (functionName === undefined) {
      return resource === LAMBDA_INVOKE || resource === LAMBDA_INVOKE_WAIT
        ? `${statePath}: FunctionName must be a literal ARN to be routed locally`
        : `${statePath}: Resource ${resource} has no local equivalent (only Lambda invocations run locally)`;
    }
    if (!this.findRoute(functionName)) return `${statePath}: no local route for ${functionName}`;
    const kind = resource === LAMBDA_INVOKE_WAIT ? "wait" : resource === LAMBDA_INVOKE ? "invoke" : "direct";
    const shape: TaskShape = {
      kind,
      resource,
      timeoutSeconds: taskTimeoutSeconds(definition, statePath),
      timeoutSecondsPath: taskTimeoutSecondsPath(definition, statePath),
    };
    const existing = this.taskShapes.get(stateName);
    // The engine keys local handlers by state name; same-named Tasks must agree on how they are handled.
    if (existing && (existing.kind !== shape.kind || (kind === "direct" && existing.resource !== resource))) {
      return `${statePath}: another Task is also named ${stateName} but invokes differently; rename one`;
    }
    if (existing && existing.timeoutSeconds !== shape.timeoutSeconds) shape.timeoutSeconds = undefined;
    this.taskShapes.set(stateName, shape);
    return undefined;
  }

  private findRoute(functionName: string): LambdaRoute | undefined {
    return this.routesByKey.get(functionName) ?? this.routesByName.get(functionNameOf(functionName));
  }

  private handlersFor(executionArn: string): Record<string, LocalHandler> {
    const handlers: Record<string, LocalHandler> = {};
    for (const [stateName, shape] of this.taskShapes) {
      handlers[stateName] = (input) => this.runTask(executionArn, stateName, shape, input);
    }
    return handlers;
  }

  private async runTask(
    executionArn: string,
    stateName: string,
    shape: TaskShape,
    input: JsonValue,
  ): Promise<JsonValue> {
    if (shape.kind === "direct") {
      return this.invoke(this.requireRoute(shape.resource), input);
    }
    if (!isRecord(input) || typeof input.FunctionName !== "string") {
      throw new LocalSfnError("States.Runtime", `${stateName}: lambda:invoke needs a FunctionName parameter`);
    }
    const route = this.requireRoute(input.FunctionName);
    const payload = toJson(input.Payload ?? {});
    const attempt = ++this.attempts;
    const tell = (task: TaskAttempt) => {
      try {
        this.onTask?.(executionArn, task);
      } catch {
        // An observer's bug must not break the run.
      }
    };
    tell({ attempt, stateName, phase: "scheduled", resource: shape.resource, functionName: input.FunctionName });
    const told = async (invoked: Promise<JsonValue>, phase: "succeeded" | "submitted") => {
      try {
        const out = await invoked;
        tell({ attempt, stateName, phase, output: out });
        return out;
      } catch (error) {
        tell({ attempt, stateName, phase: "failed", error: (error as Error).name, cause: (error as Error).message });
        throw error;
      }
    };
    if (shape.kind === "invoke") {
      const out = await told(this.invoke(route, payload), "succeeded");
      return { Payload: out, StatusCode: 200, ExecutedVersion: "$LATEST" };
    }
    const seconds = shape.timeoutSeconds ?? secondsAt(input, shape.timeoutSecondsPath);
    const submitted = (invoked: Promise<JsonValue>) => told(invoked, "submitted");
    return this.waitForTaskToken(
      executionArn,
      stateName,
      { ...shape, timeoutSeconds: seconds },
      route,
      payload,
      submitted,
    );
  }

  private async waitForTaskToken(
    executionArn: string,
    stateName: string,
    shape: TaskShape,
    route: LambdaRoute,
    payload: JsonValue,
    submitted: (invoked: Promise<JsonValue>) => Promise<JsonValue> = (invoked) => invoked,
  ): Promise<JsonValue> {
    const record = this.executions.get(executionArn);
    if (record?.description.status !== "RUNNING") throw new ExecutionStoppedError();
    const taskToken = randomBytes(32).toString("base64url");
    const tokenPayload = replaceInStrings(payload, TOKEN_PLACEHOLDER, taskToken);
    const settled = new Promise<JsonValue>((resolve, reject) => {
      const waiter: TaskWaiter = {
        task: { taskToken, executionArn, stateName, payload: tokenPayload },
        resolve,
        reject,
      };
      if (shape.timeoutSeconds !== undefined) {
        // The engine fails the state with States.Timeout at the same moment; the token just stops being valid.
        waiter.timer = setTimeout(() => this.expire(taskToken), shape.timeoutSeconds * 1000);
        waiter.timer.unref();
      }
      this.waiters.set(taskToken, waiter);
      record.tokens.add(taskToken);
    });
    settled.catch(() => {});
    try {
      await submitted(this.invoke(route, tokenPayload));
    } catch (error) {
      this.dropWaiter(taskToken);
      throw error;
    }
    return settled;
  }

  private async invoke(route: LambdaRoute, payload: JsonValue): Promise<JsonValue> {
    try {
      return toJson(await route(toJson(payload)));
    } catch (error) {
      throw lambdaError(error);
    }
  }

  private requireRoute(functionName: string): LambdaRoute {
    const route = this.findRoute(functionName);
    if (!route) {
      throw new LocalSfnError("Lambda.ResourceNotFoundException", `Function not found: ${functionName}`);
    }
    return route;
  }

  private checkToken(taskToken: string): TaskWaiter {
    const waiter = this.waiters.get(taskToken);
    if (waiter) return waiter;
    if (this.expiredTokens.has(taskToken)) {
      throw new LocalSfnError("TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'");
    }
    throw new LocalSfnError("TaskDoesNotExist", "Task does not exist anymore");
  }

  private takeWaiter(taskToken: string): TaskWaiter {
    const waiter = this.checkToken(taskToken);
    this.dropWaiter(taskToken);
    return waiter;
  }

  private dropWaiter(taskToken: string): TaskWaiter | undefined {
    const waiter = this.waiters.get(taskToken);
    if (!waiter) return undefined;
    clearTimeout(waiter.timer);
    this.waiters.delete(taskToken);
    this.executions.get(waiter.task.executionArn)?.tokens.delete(taskToken);
    return waiter;
  }

  private expire(taskToken: string): void {
    if (!this.dropWaiter(taskToken)) return;
    this.expiredTokens.add(taskToken);
    if (this.expiredTokens.size > MAX_REMEMBERED_EXPIRED) {
      const oldest = this.expiredTokens.values().next();
      if (!oldest.done) this.expiredTokens.delete(oldest.value);
    }
  }

  private releaseTokens(record: ExecutionRecord): void {
    for (const taskToken of [...record.tokens]) {
      this.dropWaiter(taskToken)?.reject(new ExecutionStoppedError());
    }
  }

  private async forwardEvents(executionArn: string, events: AsyncGenerator<EventLog>): Promise<void> {
    const listener = this.onEvent;
    for await (const event of events) {
      if (!listener) continue;
      try {
        listener(executionArn, event);
      } catch {
        // A console or logger bug must not break the run it observes.
      }
    }
  }
}

/** Polyfill for Node 20: the engine calls `Promise.withResolvers` (ES2024) for every Task timeout. */
function installPromiseWithResolvers(): void {
  const promise = Promise as PromiseConstructor & { withResolvers?: unknown };
  if (typeof promise.withResolvers === "function") return;
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const created = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise: created, resolve, reject };
    },
  });
}

/** Lambda errors reach Step Functions as `{ Error: errorType, Cause: JSON of errorType/errorMessage/trace }`. */
function lambdaError(error: unknown): Error {
  if (error instanceof LocalSfnError || error instanceof ExecutionStoppedError) return error;
  const original = error instanceof Error ? error : new Error(String(error));
  const cause = JSON.stringify({
    errorType: original.name,
    errorMessage: original.message,
    trace: (original.stack ?? "").split("\n"),
  });
  const wrapped = new Error(cause, { cause: original });
  wrapped.name = original.name;
  return wrapped;
}

function longTimeout(ms: number, fire: () => void): () => void {
  let handle: NodeJS.Timeout | undefined;
  const arm = (remaining: number): void => {
    const step = Math.min(remaining, MAX_TIMER_MS);
    handle = setTimeout(() => (remaining > step ? arm(remaining - step) : fire()), step);
    handle.unref();
  };
  arm(ms);
  return () => clearTimeout(handle);
}

function functionNameOf(arnOrName: string): string {
  return LAMBDA_ARN.exec(arnOrName)?.[1] ?? arnOrName;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toJson(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value ?? null) ?? "null");
}

function replaceInStrings(value: JsonValue, search: string, replacement: string): JsonValue {
  if (typeof value === "string") return value.replaceAll(search, replacement);
  if (Array.isArray(value)) return value.map((item) => replaceInStrings(item, search, replacement));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceInStrings(v, search, replacement)]));
  }
  return value;
}

interface StateVisit {
  path: string;
  name: string;
  state: Record<string, unknown>;
}

function visitStates(machine: unknown, prefix: string, visit: (v: StateVisit) => void): void {
  if (!isRecord(machine) || !isRecord(machine.States)) return;
  for (const [name, state] of Object.entries(machine.States)) {
    if (!isRecord(state)) continue;
    const path = prefix ? `${prefix}/${name}` : name;
    visit({ path, name, state });
    if (state.Type === "Map") visitStates(state.ItemProcessor ?? state.Iterator, path, visit);
    if (state.Type === "Parallel" && Array.isArray(state.Branches)) {
      for (const [i, branch] of state.Branches.entries()) visitStates(branch, `${path}/Branches[${i}]`, visit);
    }
  }
}

/** A state's fields without its nested state machines, which are visited on their own. */
function ownFields(state: Record<string, unknown>): Record<string, unknown> {
  const { ItemProcessor: _p, Iterator: _i, Branches: _b, ...own } = state;
  return own;
}

function containsJsonata(value: unknown): boolean {
  if (typeof value === "string") return /^\s*\{%[\s\S]*%\}\s*$/.test(value);
  if (Array.isArray(value)) return value.some(containsJsonata);
  if (isRecord(value)) return Object.values(value).some(containsJsonata);
  return false;
}

function retryableStateNames(definition: object): string[] {
  const names: string[] = [];
  visitStates(definition, "", ({ name, state }) => {
    if (Array.isArray(state.Retry)) names.push(name);
  });
  return names;
}

function taskTimeoutSecondsPath(definition: object, statePath: string): string | undefined {
  let path: string | undefined;
  visitStates(definition, "", ({ path: p, state }) => {
    if (p === statePath && typeof state.TimeoutSecondsPath === "string") path = state.TimeoutSecondsPath;
  });
  return path;
}

/** A `$.a.b` reference path's positive integer in `input`, or undefined. */
function secondsAt(input: JsonValue, path: string | undefined): number | undefined {
  if (path === undefined) return undefined;
  let value: unknown = input;
  for (const key of path
    .replace(/^\$\.?/, "")
    .split(".")
    .filter(Boolean)) {
    value = isRecord(value) ? value[key] : undefined;
  }
  return typeof value === "number" && Number.isInteger(value) && value >= 1 ? value : undefined;
}

function taskTimeoutSeconds(definition: object, statePath: string): number | undefined {
  let seconds: number | undefined;
  visitStates(definition, "", ({ path, state }) => {
    if (path !== statePath) return;
    if (typeof state.TimeoutSeconds === "number") seconds = state.TimeoutSeconds;
    else if (state.TimeoutSecondsPath === undefined) seconds = DEFAULT_TASK_TIMEOUT_SECONDS;
  });
  return seconds;
}

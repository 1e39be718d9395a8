/**
 * The slice of the Step Functions API (AWS JSON 1.0) that the approval callback and Ingest's fan-out
 * (StartExecution of one child per PO) use, served from the local engine, so the same
 * `@aws-sdk/client-sfn` code runs against AWS or, via `AWS_ENDPOINT_URL_SFN`, locally.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import type { LocalEngine } from "./engine.js";

const JSON_1_0 = "application/x-amz-json-1.0";
const TARGET_PREFIX = "AWSStepFunctions.";
const MAX_BODY_BYTES = 1024 * 1024;
/** Error codes the SDK models for these operations; anything else becomes a 500. */
const CLIENT_ERRORS = new Set([
  "TaskDoesNotExist",
  "TaskTimedOut",
  "InvalidOutput",
  "InvalidToken",
  "ValidationException",
  "ExecutionAlreadyExists",
  "InvalidName",
  "StateMachineDoesNotExist",
  "ExecutionDoesNotExist",
  "SerializationException",
  "UnknownOperationException",
]);

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

/** How StartExecution starts an execution (the stack tracks it); by default straight on the engine. */
export interface SfnApiHooks {
  stateMachineArn?: string;
  startExecution?(name: string, input: unknown): { executionArn: string };
  /** GetExecutionHistory's events (local/execution-history.ts); unset: the operation is unsupported. */
  executionHistory?(executionArn: string): readonly HistoryEvent[];
}

type Operation = (engine: LocalEngine, body: Record<string, unknown>, hooks: SfnApiHooks) => Record<string, unknown>;

const OPERATIONS: Record<string, Operation> = {
  SendTaskSuccess(engine, body) {
    engine.sendTaskSuccess(requireString(body, "taskToken", 1024), requireString(body, "output", 256 * 1024));
    return {};
  },
  SendTaskFailure(engine, body) {
    engine.sendTaskFailure(
      requireString(body, "taskToken", 1024),
      optionalString(body, "error", 256),
      optionalString(body, "cause", 32_768),
    );
    return {};
  },
  StartExecution(engine, body, hooks) {
    const arn = requireString(body, "stateMachineArn", 2048);
    if (hooks.stateMachineArn && arn !== hooks.stateMachineArn) {
      throw new ApiError("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}'`);
    }
    const name = requireString(body, "name", 80);
    let input: unknown;
    try {
      input = JSON.parse(optionalString(body, "input", 256 * 1024) ?? "{}");
    } catch {
      throw new ApiError("ValidationException", "input is not valid JSON");
    }
    const started = hooks.startExecution
      ? hooks.startExecution(name, input)
      : engine.startExecution({ name, input: input ?? {} });
    return { executionArn: started.executionArn, startDate: Date.now() / 1000 };
  },
  GetExecutionHistory(engine, body, hooks) {
    const arn = requireString(body, "executionArn", 2048);
    if (!hooks.executionHistory)
      throw new ApiError("UnknownOperationException", "unsupported operation: GetExecutionHistory");
    if (!engine.describeExecution(arn))
      throw new ApiError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    const all = hooks.executionHistory(arn);
    const max = typeof body.maxResults === "number" && body.maxResults > 0 ? Math.min(body.maxResults, 1000) : 100;
    const from = Number(optionalString(body, "nextToken", 1024) ?? 0) || 0;
    const page = all.slice(from, from + max).map((e) => ({ ...e, timestamp: (e.timestamp?.getTime() ?? 0) / 1000 }));
    return { events: page, ...(from + max < all.length ? { nextToken: String(from + max) } : {}) };
  },
  SendTaskHeartbeat(engine, body) {
    engine.sendTaskHeartbeat(requireString(body, "taskToken", 1024));
    return {};
  },
};

/** An HTTP request handler; mount it on its own server (or path-less route) and point the SFN client at it. */
export function createSfnApiHandler(
  engine: LocalEngine,
  hooks: SfnApiHooks = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(engine, hooks, req, res).catch((error: unknown) => {
      send(res, 500, { __type: "InternalFailure", message: error instanceof Error ? error.message : String(error) });
    });
  };
}

async function handle(
  engine: LocalEngine,
  hooks: SfnApiHooks,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    if (req.method !== "POST") throw new ApiError("UnknownOperationException", "only POST is supported", 404);
    const target = req.headers["x-amz-target"];
    const operationName =
      typeof target === "string" && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : "";
    const operation = OPERATIONS[operationName];
    if (!operation) {
      throw new ApiError(
        "UnknownOperationException",
        `unsupported operation: ${String(target ?? "(no X-Amz-Target)")}`,
      );
    }
    const body = parseBody(await readBody(req));
    send(res, 200, operation(engine, body, hooks));
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    if (error instanceof ApiError) {
      send(res, error.status, { __type: error.code, message: error.message });
    } else if (CLIENT_ERRORS.has(name)) {
      send(res, 400, { __type: name, message: (error as Error).message });
    } else {
      throw error;
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError("ValidationException", "request body too large", 413));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text === "" ? "{}" : text);
  } catch {
    throw new ApiError("SerializationException", "request body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ApiError("SerializationException", "request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function requireString(body: Record<string, unknown>, field: string, maxLength: number): string {
  const value = optionalString(body, field, maxLength);
  if (value === undefined || value === "") {
    throw new ApiError("ValidationException", `1 validation error detected: '${field}' must not be null`);
  }
  return value;
}

function optionalString(body: Record<string, unknown>, field: string, maxLength: number): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new ApiError("SerializationException", `'${field}' must be a string`);
  if (value.length > maxLength) {
    throw new ApiError("ValidationException", `'${field}' must have length less than or equal to ${maxLength}`);
  }
  return value;
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": JSON_1_0,
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": randomUUID(),
  });
  res.end(text);
}

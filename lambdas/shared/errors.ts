/**
 * Error names are a contract: Step Functions Retry/Catch match on them (see agent.asl.json).
 * `TransientError` is retried by the state machine; everything else is caught and recorded.
 */
export class PoAgentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Worth retrying: throttling, timeouts, 5xx. The state machine retries it with backoff. */
export class TransientError extends PoAgentError {}

/** The customer config is missing or invalid. Message names the file, field and expectation. */
export class ConfigError extends PoAgentError {}

/** The document cannot be read as a purchase order. The run fails with this reason. */
export class DocumentError extends PoAgentError {}

/** A persisted record has an unknown schemaVersion or shape. Never silently reinterpreted. */
export class LedgerSchemaError extends PoAgentError {}

/** A record would exceed DynamoDB's 400 KB item limit (a PO of tens of thousands of lines). The run fails with this reason. */
export class RecordTooLargeError extends PoAgentError {}

/** A conditional write lost a race; the caller re-reads instead of writing twice. */
export class LedgerConflictError extends PoAgentError {}

/** A run exceeded its turn, token or dollar budget. */
export class BudgetExceededError extends PoAgentError {}

/** An approval link or decision is invalid (forged, expired, reused, wrong approver). */
export class ApprovalError extends PoAgentError {}

/** A required environment variable is missing. */
export class EnvError extends PoAgentError {}

/** Reads an environment variable once; fails fast naming the variable. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") {
    throw new EnvError(`missing environment variable ${name}`);
  }
  return value;
}

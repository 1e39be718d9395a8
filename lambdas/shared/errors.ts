/**
 * Error names are a contract: Lambda reports `error.name` as errorType and Step Functions Retry/Catch
 * match on it (see agent.asl.json). `TransientError` is retried by the state machine; everything else is
 * caught and recorded. Every error class declares its name as a string literal (`override readonly name:
 * string = "<ClassName>"`): the bundles are minified without keepNames, so a class's own name is mangled
 * there (test/unit/error-names.test.ts holds every class to it).
 */
export class PoAgentError extends Error {
  override readonly name: string = "PoAgentError";
}

/** Worth retrying: throttling, timeouts, 5xx. The state machine retries it with backoff. */
export class TransientError extends PoAgentError {
  override readonly name: string = "TransientError";
}

/** The customer config is missing or invalid. Message names the file, field and expectation. */
export class ConfigError extends PoAgentError {
  override readonly name: string = "ConfigError";
}

/** The document cannot be read as a purchase order. The run fails with this reason. */
export class DocumentError extends PoAgentError {
  override readonly name: string = "DocumentError";
}

/** A persisted record has an unknown schemaVersion or shape. Never silently reinterpreted. */
export class LedgerSchemaError extends PoAgentError {
  override readonly name: string = "LedgerSchemaError";
}

/** A record would exceed DynamoDB's 400 KB item limit (a PO of tens of thousands of lines). The run fails with this reason. */
export class RecordTooLargeError extends PoAgentError {
  override readonly name: string = "RecordTooLargeError";
}

/** A conditional write lost a race; the caller re-reads instead of writing twice. */
export class LedgerConflictError extends PoAgentError {
  override readonly name: string = "LedgerConflictError";
}

/** A run exceeded its turn, token or dollar budget. */
export class BudgetExceededError extends PoAgentError {
  override readonly name: string = "BudgetExceededError";
}

/** An approval link or decision is invalid (forged, expired, reused, wrong approver). */
export class ApprovalError extends PoAgentError {
  override readonly name: string = "ApprovalError";
}

/** A required environment variable is missing. */
export class EnvError extends PoAgentError {
  override readonly name: string = "EnvError";
}

/** Reads an environment variable once; fails fast naming the variable. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") {
    throw new EnvError(`missing environment variable ${name}`);
  }
  return value;
}

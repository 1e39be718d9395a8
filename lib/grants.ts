import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Prefix } from "../lambdas/shared/catalogue.js";

/**
 * What the ledger code sends (lambdas/shared/ledger/ledger.ts): GetCommand, PutCommand, UpdateCommand
 * and QueryCommand (on the table and the gsi1 index). No function may DeleteItem, Scan or batch-write:
 * the audit log is append-only by IAM, not only by convention. (The one DeleteCommand, resetRun, serves
 * the local durability benchmark and never runs in a Lambda.)
 */
export const LEDGER_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"];
/** approval-backlog lists pending approvals through gsi1 and never writes. */
export const LEDGER_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query"];

export function grantLedger(grantee: IGrantable, table: ITable, actions: readonly string[] = LEDGER_ACTIONS): Grant {
  return Grant.addToPrincipal({
    grantee,
    actions: [...actions],
    resourceArns: [table.tableArn, `${table.tableArn}/index/*`],
  });
}

/**
 * Object-level access under key prefixes of the document bucket. `read` covers GetObject and
 * HeadObject, also of a given version (the intake documents are read by their version id).
 */
export function grantObjects(
  grantee: IGrantable,
  bucket: IBucket,
  access: "read" | "write",
  keyPatterns: readonly string[],
): Grant {
  return Grant.addToPrincipal({
    grantee,
    actions: access === "read" ? ["s3:GetObject", "s3:GetObjectVersion"] : ["s3:PutObject"],
    resourceArns: keyPatterns.map((p) => bucket.arnForObjects(p)),
  });
}

/** The only Secrets Manager call the code makes: GetSecretValue (no DescribeSecret). */
export function grantSecretValue(grantee: IGrantable, secret: ISecret): Grant {
  return Grant.addToPrincipal({
    grantee,
    actions: ["secretsmanager:GetSecretValue"],
    resourceArns: [secret.secretArn],
  });
}

/**
 * GetSecretValue on a secret known by ARN (a customer's MCP auth secret). A partial ARN (without the
 * six random characters Secrets Manager appends) matches the full one only with `-??????`.
 */
export function grantSecretArn(grantee: IGrantable, arn: string): Grant {
  const complete = /:secret:.+-[A-Za-z0-9]{6}$/.test(arn);
  return Grant.addToPrincipal({
    grantee,
    actions: ["secretsmanager:GetSecretValue"],
    resourceArns: [complete ? arn : `${arn}-??????`],
  });
}

/** The object ARN pattern of a catalogue prefix (`results` → `results/*`). */
export function keyPattern(prefix: Prefix): string {
  return `${prefix}/*`;
}

/** Key prefixes of the document bucket, in one place (the core writes these, lambdas/shared/agent/core.ts). */
export const KEYS = {
  incoming: "incoming/*",
  /** Tool results over DEFAULTS.maxInlineResultBytes, written by the tool that produced them. */
  results: "results/*",
  /** A run's prepared email-thread context (extract writes, fetch_context reads). */
  context: "context/*",
  /** Saved orders. */
  processed: "processed/*",
} as const satisfies Record<Prefix, string>;

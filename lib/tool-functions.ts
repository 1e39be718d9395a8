import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { bucketAccessOfLane, LANES, type LaneEntry, type LaneId, type RoleId } from "../lambdas/shared/catalogue.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { grantLedger, grantObjects, grantSecretArn, keyPattern } from "./grants.js";
import { grantModelAccess, modelEnvironment } from "./model-access.js";
import { PoAgentFunction } from "./po-agent-function.js";

export interface ToolFunctionsProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /** The model key secret: extract reads scans and images with Claude. */
  readonly modelApiKeySecret: ISecret;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/** Deploy settings of the tool Lambdas that differ from PoAgentFunction's defaults. */
const SETTINGS: Partial<Record<RoleId, { timeout?: Duration; memorySize?: number }>> = {
  // PDFs and email threads, and Claude reading scans.
  Extract: { timeout: Duration.minutes(4), memorySize: 1024 },
  Save: { timeout: Duration.minutes(1) },
  // Below the McpTool state's TimeoutSeconds (the ASL), so Lambda reports a slow server first.
  McpTool: { timeout: Duration.minutes(2) },
};

/**
 * One Lambda per lane of the catalogue (lambdas/shared/catalogue.ts LANES), each with only the access
 * its tools declare: the bucket prefixes they read and write, plus results/ for results too large for
 * the ledger. The document lane also gets the model (Claude reads scans and images); McpTool reads
 * its servers' auth secrets.
 */
export class ToolFunctions extends Construct {
  readonly extract: IFunction;
  readonly validate: IFunction;
  readonly transform: IFunction;
  readonly save: IFunction;
  /** Runs the tools of the customer's MCP servers (names `<server>.<tool>`). */
  readonly mcpTool: IFunction;
  /** Every tool Lambda by its catalogue role. */
  readonly byRole: Readonly<Partial<Record<RoleId, IFunction>>>;

  constructor(scope: Construct, id: string, props: ToolFunctionsProps) {
    super(scope, id);
    const common = {
      customer: props.customer,
      ledgerTable: props.ledgerTable,
      documentBucket: props.documentBucket,
      logRetention: props.logRetention,
    };
    const byRole: Partial<Record<RoleId, PoAgentFunction>> = {};
    for (const [lane, entry] of Object.entries(LANES) as [LaneId, LaneEntry][]) {
      if (entry.role === undefined) continue;
      const fn = new PoAgentFunction(this, entry.role, {
        ...common,
        ...SETTINGS[entry.role],
        ...(lane === "document" ? { environment: modelEnvironment(props.customer, props.modelApiKeySecret) } : {}),
      });
      grantLedger(fn, props.ledgerTable);
      const access = bucketAccessOfLane(lane);
      if (access.read.length > 0) grantObjects(fn, props.documentBucket, "read", access.read.map(keyPattern));
      grantObjects(fn, props.documentBucket, "write", access.write.map(keyPattern));
      byRole[entry.role] = fn;
    }
    const of = (role: RoleId): PoAgentFunction => {
      const fn = byRole[role];
      if (!fn) throw new Error(`the catalogue has no tool lane run by ${role}`);
      return fn;
    };
    this.byRole = byRole;
    this.extract = of("Extract");
    this.validate = of("Validate");
    this.transform = of("Transform");
    this.save = of("Save");
    this.mcpTool = of("McpTool");
    grantModelAccess(this.extract, props.customer, props.modelApiKeySecret);
    // Streamable HTTP servers authenticate with a header read from Secrets Manager at call time.
    for (const server of props.customer.mcpServers) {
      if (server.transport === "http" && server.authSecretArn !== undefined) {
        grantSecretArn(this.mcpTool, server.authSecretArn);
      }
    }
  }
}

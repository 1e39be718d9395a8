import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { grantLedger, grantObjects, grantSecretArn, KEYS } from "./grants.js";
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

/**
 * One Lambda per tool the model may call, each with only the access its code uses: every tool writes
 * results too large for the ledger under results/; extract also reads the document and writes and
 * reads the run's prepared context; save writes processed/; McpTool reads its servers' auth secrets.
 */
export class ToolFunctions extends Construct {
  readonly extract: IFunction;
  readonly validate: IFunction;
  readonly transform: IFunction;
  readonly save: IFunction;
  /** Runs the tools of the customer's MCP servers (names `<server>.<tool>`). */
  readonly mcpTool: IFunction;

  constructor(scope: Construct, id: string, props: ToolFunctionsProps) {
    super(scope, id);
    const common = {
      customer: props.customer,
      ledgerTable: props.ledgerTable,
      documentBucket: props.documentBucket,
      logRetention: props.logRetention,
    };
    this.extract = new PoAgentFunction(this, "Extract", {
      ...common,
      handlerName: "extract",
      timeout: Duration.minutes(4),
      memorySize: 1024,
      environment: modelEnvironment(props.customer, props.modelApiKeySecret),
    });
    this.validate = new PoAgentFunction(this, "Validate", { ...common, handlerName: "validate" });
    this.transform = new PoAgentFunction(this, "Transform", { ...common, handlerName: "transform" });
    this.save = new PoAgentFunction(this, "Save", { ...common, handlerName: "save", timeout: Duration.minutes(1) });

    this.mcpTool = new PoAgentFunction(this, "McpTool", {
      ...common,
      handlerName: "mcp-tool",
      // Below the McpTool state's TimeoutSeconds (the ASL), so Lambda reports a slow server first.
      timeout: Duration.minutes(2),
    });

    for (const fn of [this.extract, this.validate, this.transform, this.save, this.mcpTool]) {
      grantLedger(fn, props.ledgerTable);
      grantObjects(fn, props.documentBucket, "write", [KEYS.results]);
    }
    grantObjects(this.extract, props.documentBucket, "read", [KEYS.incoming, KEYS.context]);
    grantObjects(this.extract, props.documentBucket, "write", [KEYS.context]);
    grantObjects(this.save, props.documentBucket, "write", [KEYS.processed]);
    grantModelAccess(this.extract, props.customer, props.modelApiKeySecret);
    // Streamable HTTP servers authenticate with a header read from Secrets Manager at call time.
    for (const server of props.customer.mcpServers) {
      if (server.transport === "http" && server.authSecretArn !== undefined) {
        grantSecretArn(this.mcpTool, server.authSecretArn);
      }
    }
  }
}

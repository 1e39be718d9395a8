import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { PoAgentFunction } from "./po-agent-function.js";

export interface ToolFunctionsProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/**
 * One Lambda per tool the model may call, each with only the access its effect needs:
 * extract reads documents, save writes them, validate and transform touch the ledger only.
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
    });
    this.validate = new PoAgentFunction(this, "Validate", { ...common, handlerName: "validate" });
    this.transform = new PoAgentFunction(this, "Transform", { ...common, handlerName: "transform" });
    this.save = new PoAgentFunction(this, "Save", { ...common, handlerName: "save", timeout: Duration.minutes(1) });

    this.mcpTool = new PoAgentFunction(this, "McpTool", {
      ...common,
      handlerName: "mcp-tool",
      timeout: Duration.minutes(2),
    });

    for (const fn of [this.extract, this.validate, this.transform, this.save, this.mcpTool]) {
      props.ledgerTable.grantReadWriteData(fn);
    }
    // Large MCP results go to the bucket like any large tool result.
    props.documentBucket.grantReadWrite(this.mcpTool);
    props.documentBucket.grantRead(this.extract);
    props.documentBucket.grantReadWrite(this.save);
  }
}

import { RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, BillingMode, type ITable, Table } from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";

/** Name of the one secondary index; the ledger code queries it by `gsi1pk`/`gsi1sk`. */
export const LEDGER_GSI1 = "gsi1";

/**
 * The durability ledger: runs, model turns, tool calls, approvals and audit records in one table.
 * It is the source of truth for replay, so it is retained and point-in-time recoverable.
 */
export class Ledger extends Construct {
  readonly table: ITable;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const table = new Table(this, "Table", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: LEDGER_GSI1,
      partitionKey: { name: "gsi1pk", type: AttributeType.STRING },
      sortKey: { name: "gsi1sk", type: AttributeType.STRING },
    });
    this.table = table;
  }
}

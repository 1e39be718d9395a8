import { Duration, RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { PoAgentFunction } from "./po-agent-function.js";

export interface AgentFunctionsProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /**
   * Secret holding the model provider's API key; only its ARN reaches the orchestrator.
   * @default - a new secret with a random placeholder value; put the real key in it after deploying
   */
  readonly modelApiKeySecret?: ISecret;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The run's own steps around the tools: ingest opens the run, orchestrate takes model turns,
 * finalize records the outcome and record-failure keeps the reason of a failed run; approval-backlog,
 * outside any run, reports the pending approvals on a schedule (the Observability construct invokes it).
 */
export class AgentFunctions extends Construct {
  readonly ingest: IFunction;
  readonly orchestrate: IFunction;
  readonly finalize: IFunction;
  readonly recordFailure: IFunction;
  /** Publishes PendingApprovals and ApprovalBacklogAge; reads the ledger, never writes it. */
  readonly approvalBacklog: IFunction;
  readonly modelApiKeySecret: ISecret;

  constructor(scope: Construct, id: string, props: AgentFunctionsProps) {
    super(scope, id);
    const common = {
      customer: props.customer,
      ledgerTable: props.ledgerTable,
      documentBucket: props.documentBucket,
      logRetention: props.logRetention,
    };
    this.modelApiKeySecret =
      props.modelApiKeySecret ??
      new Secret(this, "ModelApiKey", {
        description: `po-agent ${props.customer.name}: model provider API key (replace the generated placeholder)`,
        removalPolicy: RemovalPolicy.RETAIN,
      });

    this.ingest = new PoAgentFunction(this, "Ingest", {
      ...common,
      handlerName: "ingest",
      timeout: Duration.minutes(1),
    });
    this.orchestrate = new PoAgentFunction(this, "Orchestrate", {
      ...common,
      handlerName: "orchestrate",
      // Below the state's 900 s TimeoutSeconds so Lambda, not Step Functions, reports a slow model.
      timeout: Duration.minutes(10),
      memorySize: 1024,
      environment: { MODEL_API_KEY_SECRET_ARN: this.modelApiKeySecret.secretArn },
    });
    this.finalize = new PoAgentFunction(this, "Finalize", { ...common, handlerName: "finalize" });
    this.recordFailure = new PoAgentFunction(this, "RecordFailure", { ...common, handlerName: "record-failure" });
    this.approvalBacklog = new PoAgentFunction(this, "ApprovalBacklog", { ...common, handlerName: "approval-backlog" });

    for (const fn of [this.ingest, this.orchestrate, this.finalize, this.recordFailure]) {
      props.ledgerTable.grantReadWriteData(fn);
    }
    // Lists pending approvals through the gsi1 index; grantReadData covers the table's indexes.
    props.ledgerTable.grantReadData(this.approvalBacklog);
    props.documentBucket.grantRead(this.ingest);
    // Large model and tool results go to the bucket under results/.
    props.documentBucket.grantReadWrite(this.orchestrate);
    this.modelApiKeySecret.grantRead(this.orchestrate);
  }
}

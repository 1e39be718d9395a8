import { Duration, RemovalPolicy, SecretValue } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { MODEL_KEY_PLACEHOLDER } from "../lambdas/shared/model/select.js";
import { grantLedger, grantObjects, KEYS, LEDGER_READ_ACTIONS } from "./grants.js";
import { grantModelAccess, modelEnvironment } from "./model-access.js";
import { PoAgentFunction } from "./po-agent-function.js";

export interface AgentFunctionsProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /**
   * Secret holding the model provider's API key; only its ARN reaches the orchestrator.
   * @default - a new secret holding MODEL_KEY_PLACEHOLDER, which the runtime reads as "no key
   *   configured" (offline reference model, said in the log); put the real key in it after deploying
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
        description: `po-agent ${props.customer.name}: Anthropic API key (replace the placeholder; no redeploy needed)`,
        // Not a secret: a marker the runtime recognizes, so a fresh stack runs on the reference model
        // instead of calling the API with a random key (401 on every run).
        secretStringValue: SecretValue.unsafePlainText(MODEL_KEY_PLACEHOLDER),
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
      // Above a whole turn's worst case (4 model attempts of at most DEFAULT_SDK_TIMEOUT_MS plus the
      // retry waits, 540 s) and below the state's 900 s TimeoutSeconds, so Lambda, not Step Functions,
      // reports a slow model.
      timeout: Duration.seconds(840),
      // It mostly waits on the model API; 512 MB keeps enough CPU for the reference model and tokenizer.
      memorySize: 512,
      environment: modelEnvironment(props.customer, this.modelApiKeySecret),
    });
    this.finalize = new PoAgentFunction(this, "Finalize", { ...common, handlerName: "finalize" });
    this.recordFailure = new PoAgentFunction(this, "RecordFailure", { ...common, handlerName: "record-failure" });
    this.approvalBacklog = new PoAgentFunction(this, "ApprovalBacklog", { ...common, handlerName: "approval-backlog" });

    for (const fn of [this.ingest, this.orchestrate, this.finalize, this.recordFailure]) {
      grantLedger(fn, props.ledgerTable);
    }
    // Lists pending approvals through the gsi1 index; reads the ledger, never writes it.
    grantLedger(this.approvalBacklog, props.ledgerTable, LEDGER_READ_ACTIONS);
    // Ingest hashes the new document (read by its version id); orchestrate reads tool results that
    // were too large for the ledger. Neither writes the bucket.
    grantObjects(this.ingest, props.documentBucket, "read", [KEYS.incoming]);
    grantObjects(this.orchestrate, props.documentBucket, "read", [KEYS.results]);
    grantModelAccess(this.orchestrate, props.customer, this.modelApiKeySecret);
  }
}

import { CfnOutput, Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { FunctionUrlAuthType, type IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { grantLedger, grantObjects, grantSecretValue, KEYS } from "./grants.js";
import { PoAgentFunction } from "./po-agent-function.js";

/** How MCP clients authenticate to the endpoint. */
export type McpAuth = "iam" | "bearer";

export interface McpEndpointProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /** The agent's state machine: approve/reject resume its waiting task. */
  readonly stateMachine: IStateMachine;
  /**
   * `iam`: the Function URL requires SigV4 (callers need lambda:InvokeFunctionUrl).
   * `bearer`: the URL is public and the handler checks a bearer token kept in a generated secret.
   * @default "iam"
   */
  readonly auth?: McpAuth;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/**
 * po-agent as an MCP server for other agents: a stateless Streamable HTTP endpoint on a Lambda
 * Function URL. Submitting goes through the intake bucket (so EventBridge starts the run as for
 * any upload); approve/reject go through the same audited decision path as the email links.
 */
export class McpEndpoint extends Construct {
  readonly function: IFunction;
  readonly url: string;
  /** Only in bearer mode. */
  readonly tokenSecret?: ISecret;

  constructor(scope: Construct, id: string, props: McpEndpointProps) {
    super(scope, id);
    const auth = props.auth ?? "iam";
    if (auth !== "iam" && auth !== "bearer")
      throw new Error(`invalid mcp auth "${String(auth)}": expected "iam" or "bearer"`);
    const tokenSecret =
      auth === "bearer"
        ? new Secret(this, "McpToken", {
            description: `Bearer token for po-agent's MCP endpoint (${props.customer.name})`,
            generateSecretString: { passwordLength: 48, excludePunctuation: true },
          })
        : undefined;
    const fn = new PoAgentFunction(this, "Server", {
      handlerName: "mcp-server",
      customer: props.customer,
      ledgerTable: props.ledgerTable,
      documentBucket: props.documentBucket,
      timeout: Duration.seconds(30),
      logRetention: props.logRetention,
      // The token's ARN only; the value is read from Secrets Manager at run time.
      // retry_run starts a retried run's new execution on the stack's state machine.
      environment: {
        STATE_MACHINE_ARN: props.stateMachine.stateMachineArn,
        ...(tokenSecret ? { MCP_TOKEN_SECRET_ARN: tokenSecret.secretArn } : {}),
      },
    });
    if (tokenSecret) grantSecretValue(fn, tokenSecret);
    grantLedger(fn, props.ledgerTable);
    // Upload only (submit_document): nothing on this path reads the bucket.
    grantObjects(fn, props.documentBucket, "write", [KEYS.incoming]);
    props.stateMachine.grantTaskResponse(fn);
    props.stateMachine.grantStartExecution(fn);
    const url = fn.addFunctionUrl({
      authType: auth === "bearer" ? FunctionUrlAuthType.NONE : FunctionUrlAuthType.AWS_IAM,
    });
    new CfnOutput(this, "Url", { value: url.url, description: `po-agent MCP endpoint (${auth} auth)` });
    this.function = fn;
    this.url = url.url;
    this.tokenSecret = tokenSecret;
  }
}

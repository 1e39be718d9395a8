import { CfnOutput, Stack, type StackProps, Tags } from "aws-cdk-lib";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { AgentFunctions } from "./agent-functions.js";
import { AgentStateMachine } from "./agent-state-machine.js";
import { ApprovalGate } from "./approval-gate.js";
import { assertDeployable, deployedCustomer } from "./deploy-checks.js";
import { Intake } from "./intake.js";
import { Ledger } from "./ledger.js";
import { type McpAuth, McpEndpoint } from "./mcp-endpoint.js";
import { acknowledgeNagFindings } from "./nag-acknowledgements.js";
import { Observability } from "./observability.js";
import { functionsByRole } from "./po-agent-function.js";
import { ToolFunctions } from "./tool-functions.js";

export interface PoAgentStackProps extends StackProps {
  /** Validated config of the one customer this stack serves. */
  readonly customer: CustomerConfig;
  /**
   * The file the config came from, named by synth errors about it.
   * @default - "customers/<name>.yaml"
   */
  readonly configFile?: string;
  /**
   * App-wide default address approval emails come from; a customer's `senderEmail` wins.
   * @default - "po-agent@example.com"
   */
  readonly senderEmail?: string;
  /**
   * How MCP clients authenticate to the stack's MCP endpoint: SigV4 (`iam`) or a bearer token
   * generated in Secrets Manager (`bearer`).
   * @default "iam"
   */
  readonly mcpAuth?: McpAuth;
  /**
   * Retention of every log group in the stack.
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
  /**
   * Topic notified when an alarm fires.
   * @default - no notification
   */
  readonly alarmTopic?: ITopic;
  /**
   * A CloudWatch dashboard for this customer ($3 a month beyond the account's first three).
   * @default false
   */
  readonly dashboard?: boolean;
}

/** Everything one customer needs: intake, ledger, agent and tool Lambdas, approvals, state machine, alarms. */
export class PoAgentStack extends Stack {
  /** The config the deployed functions carry (local-only MCP servers left out). */
  readonly customer: CustomerConfig;
  readonly intake: Intake;
  readonly ledger: Ledger;
  readonly agentFunctions: AgentFunctions;
  readonly toolFunctions: ToolFunctions;
  readonly approvalGate: ApprovalGate;
  readonly agentStateMachine: AgentStateMachine;
  readonly observability: Observability;
  readonly mcpEndpoint: McpEndpoint;

  constructor(scope: Construct, id: string, props: PoAgentStackProps) {
    super(scope, id, { description: `po-agent for ${props.customer.displayName}`, ...props });
    // A config that cannot work in AWS fails synth here, with one line naming the file and field.
    assertDeployable(props.customer, props.configFile ?? `customers/${props.customer.name}.yaml`);
    const customer = deployedCustomer(props.customer);
    this.customer = customer;
    const { logRetention } = props;
    Tags.of(this).add("po-agent:customer", customer.name);

    this.ledger = new Ledger(this, "Ledger");
    this.intake = new Intake(this, "Intake");
    const data = { customer, ledgerTable: this.ledger.table, documentBucket: this.intake.bucket, logRetention };
    this.agentFunctions = new AgentFunctions(this, "AgentFunctions", data);
    this.toolFunctions = new ToolFunctions(this, "ToolFunctions", {
      ...data,
      modelApiKeySecret: this.agentFunctions.modelApiKeySecret,
    });
    this.approvalGate = new ApprovalGate(this, "ApprovalGate", {
      ...data,
      // Per customer from its config, else the app-wide default.
      senderEmail: customer.senderEmail ?? props.senderEmail,
    });

    const agent = this.agentFunctions;
    const approvals = this.approvalGate;
    this.agentStateMachine = new AgentStateMachine(this, "AgentStateMachine", {
      functions: functionsByRole(this, { except: ["Server"] }),
      logRetention,
    });
    const stateMachine = this.agentStateMachine.stateMachine;
    this.intake.routeTo(stateMachine);
    approvals.allowDecisionsOn(stateMachine);
    this.mcpEndpoint = new McpEndpoint(this, "McpEndpoint", { ...data, stateMachine, auth: props.mcpAuth });

    this.observability = new Observability(this, "Observability", {
      stateMachine,
      functions: Object.values(functionsByRole(this)),
      // The state machine's functions fail runs (alarmed as ExecutionsFailed); these run outside any execution:
      // the approval clock's backlog on a schedule, the callback and the MCP endpoint behind their URLs.
      alarmedFunctions: [agent.approvalBacklog],
      urlFunctions: [approvals.approvalCallback, this.mcpEndpoint.function],
      dashboard: props.dashboard,
      customer,
      approvalBacklogFunction: agent.approvalBacklog,
      alarmTopic: props.alarmTopic,
    });

    // What an operator needs after `cdk deploy` (the MCP endpoint's URL is output by McpEndpoint).
    new CfnOutput(this, "IntakeBucketName", {
      value: this.intake.bucket.bucketName,
      description: "Upload purchase orders under incoming/ of this bucket; each upload starts a run.",
    });
    new CfnOutput(this, "ModelApiKeySecretArn", {
      value: agent.modelApiKeySecret.secretArn,
      description: "Put the Anthropic API key in this secret (until then runs use the offline reference model).",
    });
    new CfnOutput(this, "ApprovalUrl", {
      value: approvals.callbackUrl,
      description: "Base URL of the signed approval links in the approval emails.",
    });
    new CfnOutput(this, "StateMachineArn", {
      value: stateMachine.stateMachineArn,
      description: "The agent's state machine: one execution per run.",
    });
    new CfnOutput(this, "IntakeDeadLetterQueueUrl", {
      value: this.intake.deadLetterQueue.queueUrl,
      description: "Upload events EventBridge could not deliver to the state machine (replay them from here).",
    });
    // cdk-nag findings accepted on purpose, each with its reason (test/infra/nag.test.ts fails on any other).
    acknowledgeNagFindings(this);
  }
}

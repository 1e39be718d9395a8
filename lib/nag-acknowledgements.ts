import { type CfnElement, Stack, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import type { PoAgentStack } from "./po-agent-stack.js";

/**
 * The cdk-nag (AwsSolutions) findings a po-agent stack accepts, each with its reason. cdk-nag 3 runs
 * as a CDK policy-validation plugin, so acknowledgements use `Validations.of(scope).acknowledge`;
 * they are inert metadata when no plugin runs. Real findings are fixed instead (e.g. S1: the intake
 * bucket logs to an access-log bucket).
 */

/** One acknowledged rule (or rule finding): what it is and why it is accepted here. */
export interface NagAcknowledgement {
  readonly id: string;
  readonly reason: string;
}

function logicalId(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).getLogicalId(element);
}

/** Every acknowledgement a po-agent stack carries. Findings not listed here fail the nag test. */
export function nagAcknowledgements(stack: PoAgentStack): NagAcknowledgement[] {
  const functions = [
    stack.agentFunctions.ingest,
    stack.agentFunctions.orchestrate,
    stack.agentFunctions.finalize,
    stack.agentFunctions.recordFailure,
    stack.toolFunctions.extract,
    stack.toolFunctions.validate,
    stack.toolFunctions.transform,
    stack.toolFunctions.save,
    stack.toolFunctions.mcpTool,
    stack.approvalGate.requestApproval,
    stack.approvalGate.approvalTimeout,
  ];
  const table = logicalId(stack.ledger.table);
  const bucket = logicalId(stack.intake.bucket);
  const machine = logicalId(stack.agentStateMachine.stateMachine);
  return [
    {
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      reason:
        "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch logs; every function has an explicit log group with retention.",
    },
    {
      id: "AwsSolutions-L1",
      reason:
        "Node.js 22 is pinned on purpose: the esbuild target, the local runtime and the bundling test use it; runtime upgrades are deliberate changes.",
    },
    {
      id: "AwsSolutions-SMG4",
      reason:
        "The approval signing key rotates by redeploying (rotation would invalidate links already emailed), and the model API key is issued by the model provider, which a rotation Lambda cannot renew.",
    },
    {
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "X-Ray PutTraceSegments/PutTelemetryRecords and the state machine's log delivery actions do not support resource-level permissions.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${table}.Arn>/index/*]`,
      reason:
        "Ledger queries (runs and approvals listed by status) go through the table's gsi1 index; the grant names the table's own indexes only.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/incoming/*]`,
      reason:
        "Ingest and extract read new documents under incoming/ (by version); the MCP endpoint's submit_document uploads there (EventBridge starts the run). Keys are chosen by the uploader.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/results/*]`,
      reason:
        "Tool results over 100 KiB are written by the tool that produced them under results/<runId>/<toolUseId>.json and read back by orchestrate; run ids are known only at run time.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${machine}.Name>:*]`,
      reason:
        "Finalize and RecordFailure read their own run's execution history to count its cost; execution names are chosen at run time, and the grant names this stack's state machine only.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/context/*]`,
      reason: "Extract writes and fetch_context reads a run's prepared thread context at context/<runId>.json.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/processed/*]`,
      reason: "Save writes each saved order to processed/<poNumber>.json; PO numbers are known only at run time.",
    },
    ...functions.map((fn) => ({
      id: `AwsSolutions-IAM5[Resource::<${logicalId(fn)}.Arn>:*]`,
      reason:
        "grantInvoke lets the state machine invoke this function's versions and aliases; the function itself is fixed.",
    })),
  ];
}

/** Puts the acknowledgements on the stack (each with its reason). */
export function acknowledgeNagFindings(stack: PoAgentStack): void {
  for (const ack of nagAcknowledgements(stack)) Validations.of(stack).acknowledge(ack);
}

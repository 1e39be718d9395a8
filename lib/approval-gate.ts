import { Duration, Stack } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Grant, Role } from "aws-cdk-lib/aws-iam";
import { FunctionUrlAuthType, type IFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { grantLedger, grantSecretValue } from "./grants.js";
import { PoAgentFunction } from "./po-agent-function.js";

/** Sender used when neither the customer config, the stack prop nor the `senderEmail` context value names one. */
export const DEFAULT_SENDER_EMAIL = "po-agent@example.com";

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface ApprovalGateProps {
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /**
   * Address approval emails come from. The stack creates no SES identity: the address or (better) its
   * domain is verified once per account and region, and every customer stack only references it.
   * @default - "po-agent@example.com"
   */
  readonly senderEmail?: string;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/**
 * SES identity ARNs a sender may send as: the address itself and its domain (whichever the operator
 * verified), plus each approver's address and domain, because in the SES sandbox SES also authorizes
 * `ses:SendEmail` against the recipient's identity.
 */
export function sesIdentityArns(scope: Construct, senderEmail: string, customer: CustomerConfig): string[] {
  const names = new Set<string>();
  for (const address of [senderEmail, ...customer.approvers.map((a) => a.email)]) {
    names.add(address);
    names.add(address.slice(address.lastIndexOf("@") + 1));
  }
  const stack = Stack.of(scope);
  return [...names].map((name) => stack.formatArn({ service: "ses", resource: "identity", resourceName: name }));
}

/**
 * The human in the loop: request-approval emails signed links (from a verified SES identity), the
 * callback Function URL receives the decision and resumes the waiting task, approval-timeout records
 * a deadline that passed. Links are HMAC-signed with a generated secret.
 */
export class ApprovalGate extends Construct {
  readonly requestApproval: IFunction;
  readonly approvalTimeout: IFunction;
  readonly approvalCallback: IFunction;
  /** Base URL of the signed links (the callback Function URL). */
  readonly callbackUrl: string;
  readonly signingSecret: ISecret;
  /** The address approval emails are sent from. */
  readonly senderEmail: string;

  constructor(scope: Construct, id: string, props: ApprovalGateProps) {
    super(scope, id);
    const senderEmail = props.senderEmail ?? DEFAULT_SENDER_EMAIL;
    if (!EMAIL.test(senderEmail)) {
      throw new Error(`invalid sender email "${senderEmail}": expected an address such as ${DEFAULT_SENDER_EMAIL}`);
    }
    const common = {
      customer: props.customer,
      ledgerTable: props.ledgerTable,
      documentBucket: props.documentBucket,
      logRetention: props.logRetention,
    };

    this.senderEmail = senderEmail;
    this.signingSecret = new Secret(this, "SigningSecret", {
      description: `po-agent ${props.customer.name}: HMAC key that signs approval links`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });

    const approvalCallback = new PoAgentFunction(this, "ApprovalCallback", {
      ...common,
      handlerName: "approval-callback",
      timeout: Duration.seconds(15),
      environment: { APPROVAL_SIGNING_SECRET_ARN: this.signingSecret.secretArn },
    });
    // Auth NONE on purpose: approvers click links from email. Every link is HMAC-signed, expires, is
    // single-use and bound to one approver; GET only shows a confirm page, POST decides.
    this.callbackUrl = approvalCallback.addFunctionUrl({ authType: FunctionUrlAuthType.NONE }).url;
    this.approvalCallback = approvalCallback;

    this.requestApproval = new PoAgentFunction(this, "RequestApproval", {
      ...common,
      handlerName: "request-approval",
      environment: {
        APPROVAL_SIGNING_SECRET_ARN: this.signingSecret.secretArn,
        SENDER_EMAIL: senderEmail,
        APPROVAL_BASE_URL: this.callbackUrl,
      },
    });
    // The approval clock sends reminders with fresh signed links, so it is wired like request-approval.
    this.approvalTimeout = new PoAgentFunction(this, "ApprovalTimeout", {
      ...common,
      handlerName: "approval-timeout",
      environment: {
        APPROVAL_SIGNING_SECRET_ARN: this.signingSecret.secretArn,
        SENDER_EMAIL: senderEmail,
        APPROVAL_BASE_URL: this.callbackUrl,
      },
    });

    for (const fn of [this.requestApproval, this.approvalTimeout, this.approvalCallback]) {
      grantLedger(fn, props.ledgerTable);
      grantSecretValue(fn, this.signingSecret);
    }
    const identities = sesIdentityArns(this, senderEmail, props.customer);
    for (const grantee of [this.requestApproval, this.approvalTimeout]) {
      // SendEmail only (the SES v2 API); the code never sends raw MIME.
      Grant.addToPrincipal({ grantee, actions: ["ses:SendEmail"], resourceArns: identities });
    }
  }

  /**
   * Lets the callback resume (SendTaskSuccess/SendTaskFailure) tasks of `stateMachine`.
   *
   * The grant goes through an imported handle of the callback's role so it lands in a policy outside
   * the role's construct tree. Otherwise the callback function would wait for that policy, the policy
   * for the state machine, the state machine for request-approval and request-approval for the
   * callback's URL: a CloudFormation dependency cycle.
   */
  allowDecisionsOn(stateMachine: IStateMachine): void {
    const role = this.approvalCallback.role;
    if (role === undefined) {
      throw new Error("approval callback function has no role");
    }
    stateMachine.grantTaskResponse(Role.fromRoleArn(this, "CallbackRoleGrants", role.roleArn, { mutable: true }));
  }
}

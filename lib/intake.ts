import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Rule } from "aws-cdk-lib/aws-events";
import { SfnStateMachine } from "aws-cdk-lib/aws-events-targets";
import { BlockPublicAccess, Bucket, BucketEncryption, type IBucket } from "aws-cdk-lib/aws-s3";
import { type IQueue, Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

export interface IntakeProps {
  /**
   * Key prefix whose new objects start a run; other prefixes (results/, archives) do not.
   * @default - "incoming/"
   */
  readonly incomingPrefix?: string;
}

/**
 * Where purchase orders arrive: a private, versioned bucket that reports new objects to EventBridge,
 * and the rule that turns each new `incoming/` object into one state machine execution.
 */
export class Intake extends Construct {
  readonly bucket: IBucket;
  /**
   * Events EventBridge could not deliver to the state machine after its retries (throttled or failed
   * StartExecution): the PO is not lost, and the queue holds the event to replay for 14 days.
   */
  readonly deadLetterQueue: IQueue;
  private readonly rule: Rule;

  constructor(scope: Construct, id: string, props: IntakeProps = {}) {
    super(scope, id);
    // Who read or wrote which PO object, kept apart from the documents (cdk-nag AwsSolutions-S1).
    const accessLogs = new Bucket(this, "AccessLogs", {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ expiration: Duration.days(400) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(accessLogs).acknowledge({
      id: "AwsSolutions-S1",
      reason: "This is the access-log destination of the intake bucket; logging it into itself would loop.",
    });
    const bucket = new Bucket(this, "Bucket", {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      versioned: true,
      eventBridgeEnabled: true,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: "intake/",
    });
    this.bucket = bucket;
    const deadLetterQueue = new Queue(this, "DeadLetters", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue of the intake rule's target.",
    });
    this.deadLetterQueue = deadLetterQueue;
    this.rule = new Rule(this, "ObjectCreated", {
      description: "A new purchase order in the intake bucket starts one agent run.",
      eventPattern: {
        source: ["aws.s3"],
        detailType: ["Object Created"],
        detail: {
          bucket: { name: [bucket.bucketName] },
          object: { key: [{ prefix: props.incomingPrefix ?? "incoming/" }] },
        },
      },
    });
  }

  /**
   * Starts `stateMachine` for every new incoming object. The execution input is the EventBridge event
   * itself: the definition reads `$.detail.bucket.name` and `$.detail.object.key`.
   */
  routeTo(stateMachine: IStateMachine): void {
    this.rule.addTarget(
      new SfnStateMachine(stateMachine, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      }),
    );
  }
}

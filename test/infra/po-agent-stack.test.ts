import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { MODEL_KEY_PLACEHOLDER } from "../../lambdas/shared/model/select.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import {
  customerConfig,
  findDependencyCycle,
  logicalIdOf,
  poAgentFunctions,
  SKIP_BUNDLING,
  type SynthesizedStack,
  synthPoAgentStack,
} from "./helpers.js";

let s: SynthesizedStack;
beforeAll(() => {
  s = synthPoAgentStack("acme");
});

/** Statements of every IAM policy attached (by Ref, GetAtt or name parsed from the ARN) to `roleId`. */
function statementsOfRole(roleId: string): unknown[] {
  const policies = s.template.findResources("AWS::IAM::Policy");
  return Object.values(policies)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as unknown[]);
}

function roleIdOf(fn: { role?: import("aws-cdk-lib/aws-iam").IRole }): string {
  if (!fn.role) throw new Error("function has no role");
  return s.logicalId(fn.role);
}

describe("intake bucket", () => {
  it("blocks public access, is encrypted, versioned, retained and reports to EventBridge", () => {
    s.template.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: Match.objectLike({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        },
        VersioningConfiguration: { Status: "Enabled" },
      }),
    });
    s.template.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: { Ref: s.logicalId(s.stack.intake.bucket) },
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  it("denies every request that is not over TLS", () => {
    s.template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: s.logicalId(s.stack.intake.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Principal: { AWS: "*" },
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      },
    });
  });

  it("starts the state machine for objects created under incoming/ of this bucket", () => {
    s.template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.s3"],
        "detail-type": ["Object Created"],
        detail: {
          bucket: { name: [{ Ref: s.logicalId(s.stack.intake.bucket) }] },
          object: { key: [{ prefix: "incoming/" }] },
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { Ref: s.logicalId(s.stack.agentStateMachine.stateMachine) },
          // No Input/InputPath: the execution input is the event itself ($.detail.bucket.name, ...).
          Input: Match.absent(),
          InputPath: Match.absent(),
          InputTransformer: Match.absent(),
        }),
      ],
    });
  });
});

describe("ledger table", () => {
  it("is on-demand, point-in-time recoverable, retained, keyed pk/sk with the gsi1 index", () => {
    s.template.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: Match.objectLike({
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
          { AttributeName: "gsi1pk", AttributeType: "S" },
          { AttributeName: "gsi1sk", AttributeType: "S" },
        ]),
        GlobalSecondaryIndexes: [
          Match.objectLike({
            IndexName: "gsi1",
            KeySchema: [
              { AttributeName: "gsi1pk", KeyType: "HASH" },
              { AttributeName: "gsi1sk", KeyType: "RANGE" },
            ],
          }),
        ],
      }),
    });
  });
});

describe("state machine", () => {
  it("is a Standard workflow with X-Ray tracing and ALL-level logs to a log group with retention", () => {
    const logGroup = s.stack.agentStateMachine.node.findChild("Logs");
    s.template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      StateMachineType: "STANDARD",
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: "ALL",
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { "Fn::GetAtt": [s.logicalId(logGroup), "Arn"] } } }],
      },
    });
    s.template.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
  });

  it("may invoke every function its definition names", () => {
    const smRole = s.stack.agentStateMachine.stateMachine.node.findChild("Role");
    const statements = JSON.stringify(statementsOfRole(s.logicalId(smRole)));
    const invoked = [
      s.stack.agentFunctions.ingest,
      s.stack.agentFunctions.orchestrate,
      s.stack.agentFunctions.finalize,
      s.stack.agentFunctions.recordFailure,
      s.stack.toolFunctions.extract,
      s.stack.toolFunctions.validate,
      s.stack.toolFunctions.transform,
      s.stack.toolFunctions.save,
      s.stack.approvalGate.requestApproval,
      s.stack.approvalGate.approvalTimeout,
    ];
    expect(statements).toContain('"lambda:InvokeFunction"');
    for (const fn of invoked) {
      expect(statements).toContain(JSON.stringify({ "Fn::GetAtt": [s.logicalId(fn), "Arn"] }));
    }
  });
});

describe("lambdas", () => {
  it("all run Node 22 on arm64 with active tracing and a log group with retention", () => {
    const fns = poAgentFunctions(s.stack);
    expect(fns.map((f) => f.handlerName).sort()).toEqual([
      "approval-backlog",
      "approval-callback",
      "approval-timeout",
      "extract",
      "finalize",
      "ingest",
      "mcp-server",
      "mcp-tool",
      "orchestrate",
      "record-failure",
      "request-approval",
      "save",
      "transform",
      "validate",
    ]);
    const resources = s.template.findResources("AWS::Lambda::Function");
    const logGroups = s.template.findResources("AWS::Logs::LogGroup");
    for (const fn of fns) {
      const props = resources[s.logicalId(fn)]?.Properties;
      expect(props).toMatchObject({
        Runtime: "nodejs22.x",
        Architectures: ["arm64"],
        TracingConfig: { Mode: "Active" },
        Handler: "index.handler",
      });
      const logGroupId: string = props.LoggingConfig.LogGroup.Ref;
      expect(logGroups[logGroupId]?.Properties.RetentionInDays).toBe(30);
    }
  });

  it("get the table, bucket, customer and Powertools settings, never the config itself", () => {
    const resources = s.template.findResources("AWS::Lambda::Function");
    for (const fn of poAgentFunctions(s.stack)) {
      const env: Record<string, unknown> = resources[s.logicalId(fn)]?.Properties.Environment.Variables;
      expect(env).toMatchObject({
        LEDGER_TABLE: { Ref: s.logicalId(s.stack.ledger.table) },
        DOCUMENT_BUCKET: { Ref: s.logicalId(s.stack.intake.bucket) },
        CUSTOMER: "acme",
        CUSTOMER_CONFIG_FILE: "customer.json",
        POWERTOOLS_SERVICE_NAME: "po-agent",
        POWERTOOLS_METRICS_NAMESPACE: "PoAgent",
      });
      expect(JSON.stringify(env)).not.toContain("alice@acme.example");
      expect(JSON.stringify(env)).not.toContain("Bob's");
    }
  });

  it("reference the model API key secret by ARN only", () => {
    const secretId = s.logicalId(s.stack.agentFunctions.modelApiKeySecret);
    const resources = s.template.findResources("AWS::Lambda::Function");
    const orchestrateEnv = resources[s.logicalId(s.stack.agentFunctions.orchestrate)]?.Properties.Environment.Variables;
    expect(orchestrateEnv.MODEL_API_KEY_SECRET_ARN).toEqual({ Ref: secretId });

    for (const [id, fn] of Object.entries(resources)) {
      const env: Record<string, unknown> = fn.Properties.Environment?.Variables ?? {};
      for (const [name, value] of Object.entries(env)) {
        const where = `${id}.${name}`;
        // A secret value would arrive as a dynamic reference or as a literal in a KEY/TOKEN/PASSWORD variable.
        expect(JSON.stringify(value), where).not.toMatch(/resolve:secretsmanager|sk-ant-/);
        if (/KEY|TOKEN|PASSWORD|SECRET/.test(name)) {
          expect(name, where).toMatch(/_ARN$/);
          expect(value, where).toEqual({ Ref: expect.any(String) });
        }
      }
    }
  });
});

describe("MCP endpoint (po-agent as an MCP server)", () => {
  it("is a Function URL with IAM auth by default, with no token secret", () => {
    const fnId = s.logicalId(s.stack.mcpEndpoint.function);
    s.template.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "AWS_IAM",
      TargetFunctionArn: { "Fn::GetAtt": [fnId, "Arn"] },
    });
    expect(s.stack.mcpEndpoint.tokenSecret).toBeUndefined();
    const env = JSON.stringify(s.template.findResources("AWS::Lambda::Function")[fnId]?.Properties.Environment);
    expect(env).not.toContain("MCP_TOKEN_SECRET_ARN");
  });

  it("may resume waiting tasks of the state machine, start a retried run, write the ledger and upload only under incoming/", () => {
    // Prepare
    const bucketArn = { "Fn::GetAtt": [s.logicalId(s.stack.intake.bucket), "Arn"] };
    const stateMachine = { Ref: s.logicalId(s.stack.agentStateMachine.stateMachine) };

    // Act
    const statements = statementsOfRole(roleIdOf(s.stack.mcpEndpoint.function)) as {
      Action: string | string[];
      Resource: unknown;
    }[];

    // Assess
    const actionsOf = (st: { Action: string | string[] }) => [st.Action].flat();
    const sfn = statements.filter((st) => actionsOf(st).some((a) => a.startsWith("states:")));
    expect(sfn).toEqual([
      expect.objectContaining({
        Action: expect.arrayContaining(["states:SendTaskSuccess", "states:SendTaskFailure"]),
        Resource: stateMachine,
      }),
      // retry_run starts a retried run's new execution
      expect.objectContaining({ Action: "states:StartExecution", Resource: stateMachine }),
    ]);
    const s3 = statements.filter((st) => actionsOf(st).some((a) => a.startsWith("s3:")));
    expect(s3).toEqual([
      expect.objectContaining({
        Action: "s3:PutObject",
        Resource: { "Fn::Join": ["", [bucketArn, "/incoming/*"]] },
      }),
    ]);
    expect(JSON.stringify(statements)).toContain('"dynamodb:PutItem"');
  });

  it("in bearer mode is public, and reads its token from a generated secret by ARN only", () => {
    // Prepare
    const app = new App({ context: SKIP_BUNDLING });

    // Act
    const stack = new PoAgentStack(app, "PoAgent-acme", { customer: customerConfig("acme"), mcpAuth: "bearer" });
    const template = Template.fromStack(stack);

    // Assess
    const secret = stack.mcpEndpoint.tokenSecret;
    if (!secret) throw new Error("bearer mode has no token secret");
    const fnId = logicalIdOf(stack.mcpEndpoint.function);
    const secretRef = { Ref: logicalIdOf(secret) };
    template.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "NONE",
      TargetFunctionArn: { "Fn::GetAtt": [fnId, "Arn"] },
    });
    template.hasResourceProperties("AWS::SecretsManager::Secret", {
      GenerateSecretString: Match.objectLike({ PasswordLength: 48 }),
    });
    const env = template.findResources("AWS::Lambda::Function")[fnId]?.Properties.Environment.Variables;
    expect(env.MCP_TOKEN_SECRET_ARN).toEqual(secretRef);
    // The token itself is never in the template: only the generator and the ARN reference. (The one
    // SecretString is the model-key secret's placeholder, which is not a key.)
    const secretStrings = JSON.stringify(template.toJSON()).match(/"SecretString":"[^"]*"/g) ?? [];
    expect(secretStrings).toEqual([`"SecretString":${JSON.stringify(MODEL_KEY_PLACEHOLDER)}`]);
    const role = stack.mcpEndpoint.function.role;
    if (!role) throw new Error("the MCP function has no role");
    const roleId = logicalIdOf(role);
    const policies = Object.values(template.findResources("AWS::IAM::Policy")).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`),
    );
    expect(JSON.stringify(policies)).toContain('"secretsmanager:GetSecretValue"');
    expect(JSON.stringify(policies)).toContain(JSON.stringify(secretRef));
  });

  it("has no dependency cycle in either auth mode, and outputs the endpoint URL", () => {
    // Prepare
    const app = new App({ context: SKIP_BUNDLING });
    const bearer = new PoAgentStack(app, "PoAgent-acme", { customer: customerConfig("acme"), mcpAuth: "bearer" });

    // Act
    const templates = [s.template, Template.fromStack(bearer)];

    // Assess
    for (const template of templates) {
      expect(findDependencyCycle(template.toJSON())).toBeUndefined();
      const outputs = Object.values(template.findOutputs("*"));
      expect(outputs.map((o) => JSON.stringify(o.Value))).toContainEqual(
        expect.stringMatching(/McpEndpointServerFunctionUrl.*FunctionUrl/),
      );
    }
  });
});

describe("approval gate", () => {
  it("creates no SES identity and may send only as the referenced sender and to the approvers' identities", () => {
    expect(Object.keys(s.template.findResources("AWS::SES::EmailIdentity"))).toEqual([]);
    for (const fn of [s.stack.approvalGate.requestApproval, s.stack.approvalGate.approvalTimeout]) {
      const ses = (statementsOfRole(roleIdOf(fn)) as { Action?: unknown; Resource?: unknown }[]).filter((st) =>
        JSON.stringify(st.Action).includes("ses:"),
      );
      expect(ses).toHaveLength(1);
      expect(ses[0]?.Action).toBe("ses:SendEmail");
      const resources = JSON.stringify(ses[0]?.Resource);
      for (const name of ["identity/po-agent@example.com", "identity/example.com", "identity/alice@acme.example"])
        expect(resources).toContain(name);
      expect(resources).not.toContain("identity/*");
    }
  });

  it("sends from the customer's own senderEmail when its config names one", () => {
    const app = new App({ context: SKIP_BUNDLING });
    const customer = { ...customerConfig("acme"), senderEmail: "ap@acme.example" };
    const stack = new PoAgentStack(app, "PoAgent-acme", { customer, senderEmail: "default@example.com" });
    const template = Template.fromStack(stack);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ SENDER_EMAIL: "ap@acme.example" }) },
    });
    expect(JSON.stringify(template.toJSON())).not.toContain("default@example.com");
  });

  it("exposes the callback as an unauthenticated Function URL that request-approval builds links from", () => {
    const callbackId = s.logicalId(s.stack.approvalGate.approvalCallback);
    s.template.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "NONE",
      TargetFunctionArn: { "Fn::GetAtt": [callbackId, "Arn"] },
    });
    const url = s.stack.approvalGate.approvalCallback.node.findChild("FunctionUrl");
    const signingSecret = { Ref: s.logicalId(s.stack.approvalGate.signingSecret) };
    s.template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({
          SENDER_EMAIL: "po-agent@example.com",
          APPROVAL_BASE_URL: { "Fn::GetAtt": [s.logicalId(url), "FunctionUrl"] },
          APPROVAL_SIGNING_SECRET_ARN: signingSecret,
        }),
      },
    });
    for (const fn of [s.stack.approvalGate.requestApproval, s.stack.approvalGate.approvalCallback]) {
      expect(statementsOfRole(roleIdOf(fn))).toContainEqual(
        expect.objectContaining({
          Action: "secretsmanager:GetSecretValue",
          Resource: signingSecret,
        }),
      );
    }
  });

  it("lets the callback role send task success and failure to the state machine", () => {
    const statements = statementsOfRole(roleIdOf(s.stack.approvalGate.approvalCallback));
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Action: expect.arrayContaining(["states:SendTaskSuccess", "states:SendTaskFailure"]),
        Resource: { Ref: s.logicalId(s.stack.agentStateMachine.stateMachine) },
      }),
    );
  });

  it("rejects an invalid sender email at synth, showing the value", () => {
    const app = new App({ context: SKIP_BUNDLING });
    const build = () =>
      new PoAgentStack(app, "PoAgent-acme", { customer: customerConfig("acme"), senderEmail: "not an email" });
    expect(build).toThrow('invalid sender email "not an email"');
  });
});

describe("observability", () => {
  it.each(["ExecutionsFailed", "ExecutionThrottled", "ExecutionsAborted", "ExecutionsTimedOut"])(
    "alarms on a single %s",
    (metricName) => {
      s.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/States",
        MetricName: metricName,
        Dimensions: [{ Name: "StateMachineArn", Value: { Ref: s.logicalId(s.stack.agentStateMachine.stateMachine) } }],
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      });
    },
  );

  it("alarms on errors of the functions outside any execution; the others fail runs, which alarm", () => {
    const alarms = (metricName: string) =>
      Object.values(s.template.findResources("AWS::CloudWatch::Alarm", { Properties: { MetricName: metricName } }));
    const errors = alarms("Errors");
    expect(errors.map((a) => a.Properties.Dimensions[0].Value.Ref)).toEqual([
      s.logicalId(s.stack.agentFunctions.approvalBacklog),
    ]);
    // The two Function URL functions: a 5xx answer alarms, also the callback's own 500 page for a thrown
    // error (answered without a Lambda error, so `Errors` would never count it).
    const url5xx = alarms("Url5xxCount");
    expect(url5xx.map((a) => a.Properties.Dimensions)).toEqual(
      expect.arrayContaining(
        [s.stack.approvalGate.approvalCallback, s.stack.mcpEndpoint.function].map((fn) => [
          { Name: "FunctionName", Value: { Ref: s.logicalId(fn) } },
        ]),
      ),
    );
    expect(url5xx).toHaveLength(2);
    for (const alarm of url5xx)
      expect(alarm.Properties).toMatchObject({ Namespace: "AWS/Lambda", Statistic: "Sum", Period: 300 });
    s.template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ExecutionsFailed", Threshold: 1 });
    for (const alarm of [...errors, ...url5xx]) {
      expect(alarm.Properties).toMatchObject({ Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold" });
    }
    // The dashboard is opt-in ($3 a month per stack beyond three).
    s.template.resourceCountIs("AWS::CloudWatch::Dashboard", 0);
  });
});

describe("approval backlog", () => {
  it("runs approval-backlog every hour from an EventBridge schedule", () => {
    const backlog = s.stack.agentFunctions.approvalBacklog;
    s.template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 hour)",
      State: "ENABLED",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [s.logicalId(backlog), "Arn"] } })],
    });
    s.template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [s.logicalId(backlog), "Arn"] },
    });
  });

  it("lets approval-backlog query the ledger table and its gsi1 index", () => {
    const tableId = s.logicalId(s.stack.ledger.table);
    const statements = statementsOfRole(roleIdOf(s.stack.agentFunctions.approvalBacklog));
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Action: expect.arrayContaining(["dynamodb:Query", "dynamodb:GetItem"]),
        Resource: expect.arrayContaining([
          { "Fn::GetAtt": [tableId, "Arn"] },
          { "Fn::Join": ["", [{ "Fn::GetAtt": [tableId, "Arn"] }, "/index/*"]] },
        ]),
      }),
    );
  });

  it("alarms when the oldest pending approval of this customer is two days old", () => {
    s.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "PoAgent",
      MetricName: "ApprovalBacklogAge",
      Dimensions: Match.arrayWith([
        { Name: "customer", Value: "acme" },
        { Name: "service", Value: "po-agent" },
      ]),
      Statistic: "Maximum",
      Threshold: 2 * 24 * 60 * 60,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
  });
});

describe("the stack as a whole", () => {
  it("has no CloudFormation dependency cycle", () => {
    expect(findDependencyCycle(s.template.toJSON())).toBeUndefined();
  });

  it("the cycle check finds a cycle when there is one", () => {
    const cyclic = {
      Resources: {
        A: { Properties: { X: { Ref: "B" } } },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string, not JS.
        B: { Properties: { Y: { "Fn::Sub": "${C.Arn}" } } },
        C: { DependsOn: ["A"] },
      },
    };
    expect(findDependencyCycle(cyclic)).toEqual(["A", "B", "C"]);
  });

  it("hard-codes no physical names", () => {
    const nameKeys = [
      "BucketName",
      "TableName",
      "FunctionName",
      "StateMachineName",
      "LogGroupName",
      "RoleName",
      "Name",
      "RuleName",
      "AlarmName",
      "DashboardName",
    ];
    for (const [id, resource] of Object.entries(
      s.template.toJSON().Resources as Record<string, { Type: string; Properties?: object }>,
    )) {
      // A reference (Ref, GetAtt) to a generated name is fine; a literal string is a hard-coded name.
      const props: Record<string, unknown> = { ...resource.Properties };
      const literal = nameKeys.filter((k) => typeof props[k] === "string");
      expect(literal, `${id} (${resource.Type})`).toEqual([]);
    }
  });
});

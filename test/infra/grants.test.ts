import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { addCustomerStacks } from "../../lib/app.js";
import { PoAgentStack } from "../../lib/po-agent-stack.js";
import {
  customersDir,
  customerYaml,
  logicalIdOf,
  poAgentFunctions,
  SKIP_BUNDLING,
  type SynthesizedStack,
  synthPoAgentStack,
} from "./helpers.js";

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Every "action on resource" a function's role allows, with logical ids replaced by readable labels. */
function grantsOf(template: Template, stack: PoAgentStack, fn: IConstruct & { role?: IConstruct }): string[] {
  if (!fn.role) throw new Error("no role");
  const roleId = logicalIdOf(fn.role);
  const labels: [IConstruct, string][] = [
    [stack.ledger.table, "table"],
    [stack.intake.bucket, "bucket"],
    [stack.agentFunctions.modelApiKeySecret, "model-key"],
    [stack.approvalGate.signingSecret, "signing-key"],
    [stack.agentStateMachine.stateMachine, "state-machine"],
    ...(stack.mcpEndpoint.tokenSecret ? [[stack.mcpEndpoint.tokenSecret, "mcp-token"] as [IConstruct, string]] : []),
  ];
  const ids = new Map(labels.map(([construct, name]) => [logicalIdOf(construct), name]));
  const label = (node: unknown): string => {
    if (typeof node === "string") return node;
    if (Array.isArray(node)) return node.map(label).join(",");
    const o = (node ?? {}) as { Ref?: string; "Fn::GetAtt"?: [string, string]; "Fn::Join"?: [string, unknown[]] };
    if (o.Ref !== undefined) return o.Ref.startsWith("AWS::") ? `<${o.Ref.slice(5)}>` : (ids.get(o.Ref) ?? o.Ref);
    if (o["Fn::GetAtt"]) return ids.get(o["Fn::GetAtt"][0]) ?? o["Fn::GetAtt"].join(".");
    if (o["Fn::Join"]) return o["Fn::Join"][1].map(label).join(o["Fn::Join"][0]);
    return JSON.stringify(node);
  };
  const statements = Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
  const out = new Set<string>();
  for (const st of statements) {
    expect(st.Effect).toBe("Allow");
    for (const action of [st.Action].flat()) {
      if (action.startsWith("xray:")) continue; // active tracing, on "*"
      for (const resource of [st.Resource].flat()) out.add(`${action} ${label(resource)}`);
    }
  }
  return [...out].sort();
}

const LEDGER = ["GetItem", "PutItem", "UpdateItem", "Query"].flatMap((a) => [
  `dynamodb:${a} table`,
  `dynamodb:${a} table/index/*`,
]);
const obj = (access: "read" | "write", prefix: string) =>
  access === "read"
    ? [`s3:GetObject bucket/${prefix}*`, `s3:GetObjectVersion bucket/${prefix}*`]
    : [`s3:PutObject bucket/${prefix}*`];

const HISTORY = "states:GetExecutionHistory arn:<Partition>:states:<Region>:<AccountId>:execution:state-machine:*";

let s: SynthesizedStack;
beforeAll(() => {
  s = synthPoAgentStack("acme");
});

describe("grants match what each function's code does", () => {
  it("give every function exactly the actions its code sends, on the resources it uses", () => {
    const st = s.stack;
    const expected: Record<string, string[]> = {
      // StartExecution: a multi-PO document starts one child execution per PO (agent/fanout.ts).
      ingest: [...LEDGER, ...obj("read", "incoming/"), "states:StartExecution state-machine"],
      orchestrate: [...LEDGER, ...obj("read", "results/"), "secretsmanager:GetSecretValue model-key"],
      // GetExecutionHistory: the run's cost is counted from its own execution's events (cost-estimate.ts).
      finalize: [...LEDGER, HISTORY],
      "record-failure": [...LEDGER, HISTORY],
      "approval-backlog": [
        "dynamodb:GetItem table",
        "dynamodb:GetItem table/index/*",
        "dynamodb:Query table",
        "dynamodb:Query table/index/*",
      ],
      extract: [
        ...LEDGER,
        ...obj("write", "results/"),
        ...obj("read", "incoming/"),
        ...obj("read", "context/"),
        ...obj("write", "context/"),
        "secretsmanager:GetSecretValue model-key",
      ],
      validate: [...LEDGER, ...obj("write", "results/")],
      transform: [...LEDGER, ...obj("write", "results/")],
      save: [...LEDGER, ...obj("write", "results/"), ...obj("write", "processed/")],
      "mcp-tool": [...LEDGER, ...obj("write", "results/")],
      "approval-callback": [
        ...LEDGER,
        "secretsmanager:GetSecretValue signing-key",
        "states:SendTaskFailure state-machine",
        "states:SendTaskHeartbeat state-machine",
        "states:SendTaskSuccess state-machine",
      ],
      "mcp-server": [
        ...LEDGER,
        ...obj("write", "incoming/"),
        "states:StartExecution state-machine", // retry_run
        "states:SendTaskFailure state-machine",
        "states:SendTaskHeartbeat state-machine",
        "states:SendTaskSuccess state-machine",
      ],
    };
    const ses = ["po-agent@example.com", "example.com", "alice@acme.example", "acme.example"].map(
      (id) => `ses:SendEmail arn:<Partition>:ses:<Region>:<AccountId>:identity/${id}`,
    );
    expected["request-approval"] = [...LEDGER, "secretsmanager:GetSecretValue signing-key", ...ses];
    expected["approval-timeout"] = expected["request-approval"];

    const fns = poAgentFunctions(st);
    expect(fns).toHaveLength(14);
    for (const fn of fns) {
      expect(grantsOf(s.template, st, fn), fn.handlerName).toEqual([...(expected[fn.handlerName] ?? ["?"])].sort());
    }
  });

  it("let no function delete, scan or batch-write the ledger, or delete an object (append-only audit by IAM)", () => {
    const all = JSON.stringify(s.template.findResources("AWS::IAM::Policy"));
    expect(all).not.toMatch(/dynamodb:(DeleteItem|Scan|BatchWriteItem|\*)|s3:DeleteObject|s3:\*|"s3:GetObject\*"/);
  });
});

describe("model access", () => {
  const stackFor = (model: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const customer = CustomerConfig.parse({ ...customerYaml("acme"), model, ...extra });
    const stack = new PoAgentStack(new App({ context: SKIP_BUNDLING }), "PoAgent-acme", { customer });
    return { stack, template: Template.fromStack(stack) };
  };

  it("starts the model-key secret with the placeholder the runtime reads as 'no key', never generated text", () => {
    const secret = s.template.toJSON().Resources[logicalIdOf(s.stack.agentFunctions.modelApiKeySecret)];
    expect(secret.Properties.SecretString).toMatch(/^NO-KEY-CONFIGURED/);
    expect(secret.Properties.GenerateSecretString).toBeUndefined();
  });

  it("gives extract the model key (Claude reads scans) as it gives orchestrate", () => {
    const env = (fn: IConstruct) =>
      s.template.findResources("AWS::Lambda::Function")[logicalIdOf(fn)]?.Properties.Environment.Variables;
    const key = { Ref: logicalIdOf(s.stack.agentFunctions.modelApiKeySecret) };
    expect(env(s.stack.toolFunctions.extract).MODEL_API_KEY_SECRET_ARN).toEqual(key);
    expect(env(s.stack.agentFunctions.orchestrate).MODEL_API_KEY_SECRET_ARN).toEqual(key);
  });

  it("with provider bedrock grants bedrock:InvokeModel on the inference profile and its models, and no key", () => {
    const { stack, template } = stackFor({ provider: "bedrock", id: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" });
    for (const fn of [stack.agentFunctions.orchestrate, stack.toolFunctions.extract]) {
      const grants = grantsOf(template, stack, fn);
      expect(grants).toContain(
        "bedrock:InvokeModel arn:<Partition>:bedrock:<Region>:<AccountId>:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
      );
      expect(grants).toContain(
        "bedrock:InvokeModel arn:<Partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
      );
      expect(grants.join()).not.toContain("model-key");
    }
    // Nobody else may call Bedrock.
    for (const fn of poAgentFunctions(stack).filter((f) => !["orchestrate", "extract"].includes(f.handlerName)))
      expect(grantsOf(template, stack, fn).join(), fn.handlerName).not.toContain("bedrock:");
  });

  it("with provider auto grants no Bedrock access (auto never selects Bedrock)", () => {
    expect(JSON.stringify(s.template.findResources("AWS::IAM::Policy"))).not.toContain("bedrock:");
  });

  it("lets McpTool read the auth secret of each HTTP MCP server, and no other function", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:erp-token";
    const { stack, template } = stackFor(
      {},
      { mcpServers: [{ name: "erp", transport: "http", url: "https://erp.example/mcp", authSecretArn: arn }] },
    );
    expect(grantsOf(template, stack, stack.toolFunctions.mcpTool)).toContain(
      `secretsmanager:GetSecretValue ${arn}-??????`,
    );
    for (const fn of poAgentFunctions(stack).filter((f) => f.handlerName !== "mcp-tool"))
      expect(grantsOf(template, stack, fn).join(), fn.handlerName).not.toContain("erp-token");
  });
});

describe("configs that cannot work in AWS fail cdk synth with one line naming the file and field", () => {
  /** Runs the CDK app exactly as `cdk synth` does (the `app` command of cdk.json) on one customer file. */
  // Asynchronous, so the test worker stays responsive while the app runs.
  const synth = async (config: Record<string, unknown>) => {
    const dir = customersDir({ acme: config });
    try {
      await promisify(execFile)("npx", ["tsx", "bin/po-agent.ts"], {
        env: {
          ...process.env,
          CDK_CONTEXT_JSON: JSON.stringify({ customersDir: dir, ...SKIP_BUNDLING }),
          CDK_OUTDIR: `${dir}/cdk.out`,
        },
      });
      return { status: 0, stderr: "", dir };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { status: e.code, stderr: e.stderr.trim(), dir };
    }
  };
  const base = customerYaml("acme");
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "a stdio MCP server",
      { ...base, mcpServers: [{ name: "erp", transport: "stdio", command: "node" }] },
      /acme\.yaml: mcpServers\[0\]\.transport: stdio MCP server "erp" cannot run in Lambda/,
    ],
    [
      "a Bedrock provider with an Anthropic API model id",
      { ...base, model: { provider: "bedrock", id: "claude-sonnet-5" } },
      /acme\.yaml: model\.id: "claude-sonnet-5" is not a Bedrock model id or inference profile/,
    ],
    [
      "an approval chain longer than the execution can wait",
      {
        ...base,
        approvers: ["a", "b", "c", "d", "e"].map((id) => ({ id, name: id, email: `${id}@acme.example` })),
        approvalPolicy: {
          escalateAfterHours: 200,
          tiers: [
            {
              name: "all",
              description: "d",
              autoApproveUpTo: 1,
              preferredVendorsExempt: false,
              approvers: ["a", "b", "c", "d", "e"],
            },
          ],
        },
      },
      /acme\.yaml: approvalPolicy\.escalateAfterHours: 5 approvers in tier 0 × 200 h = 1000 h of waiting, over the 696 h/,
    ],
    [
      "a mounted tool name over 64 characters",
      {
        ...base,
        mcpServers: [
          {
            name: "enterprise_resource_plan",
            transport: "http",
            url: "https://erp.example/mcp",
            tools: { create_purchase_order_with_all_line_items_x: { effect: "write" } },
          },
        ],
      },
      /acme\.yaml: mcpServers\[0\]\.tools\.create_purchase_order_with_all_line_items_x: the tool's API name .* is 69 characters; the limit is 64/,
    ],
  ];
  /**
   * The same check in this process (what bin/po-agent.ts runs before printing the message): a full
   * `cdk synth` per case costs a process and ~20 s of CPU, so only the first case runs the CLI.
   */
  const synthInProcess = (config: Record<string, unknown>) => {
    const dir = customersDir({ acme: config });
    const app = new App({ outdir: `${dir}/cdk.out`, context: { customersDir: dir, ...SKIP_BUNDLING } });
    addCustomerStacks(app, dir);
    return app.synth();
  };
  const [first, ...rest] = cases;
  if (first) {
    const [what, config, line] = first;
    it(`refuses ${what}: cdk synth exits 1 with one line and no stack trace`, async () => {
      const out = await synth(config);
      expect(out.status).toBe(1);
      expect(out.stderr.split("\n"), out.stderr).toHaveLength(1);
      expect(out.stderr).toMatch(line);
    }, 60_000);
  }
  for (const [what, config, line] of rest) {
    it(`refuses ${what}`, () => {
      let thrown: unknown;
      try {
        synthInProcess(config);
      } catch (err) {
        thrown = err;
      }
      // The error bin/po-agent.ts prints as one line: a config error, its message one line naming file and field.
      expect(thrown).toBeInstanceOf(Error);
      const err = thrown as Error;
      expect(["ConfigError", "DeployConfigError"]).toContain(err.name);
      expect(err.message.split("\n"), err.message).toHaveLength(1);
      expect(err.message).toMatch(line);
    });
  }

  it("synthesizes the same customer once the problem is fixed (a localOnly stdio server is left out)", () => {
    const fixed = { ...base, mcpServers: [{ name: "erp", transport: "stdio", command: "node", localOnly: true }] };
    const assembly = synthInProcess(fixed);
    expect(assembly.stacks.map((st) => st.stackName)).toEqual(["PoAgent-acme"]);
    const stack = new PoAgentStack(new App({ context: SKIP_BUNDLING }), "PoAgent-acme", {
      customer: CustomerConfig.parse(fixed),
    });
    // The config the functions carry (customer.json in every bundle) never offers the server to the model.
    expect(stack.customer.mcpServers).toEqual([]);
  });
});

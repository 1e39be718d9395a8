import { readFileSync } from "node:fs";
import { Aws } from "aws-cdk-lib";
import { Policy, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import {
  DefinitionBody,
  type IStateMachine,
  LogLevel,
  StateMachine,
  StateMachineType,
} from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { ROLE_OF_PLACEHOLDER, ROLES, type RoleId } from "../lambdas/shared/catalogue.js";
import { repoPath } from "./po-agent-function.js";

/** The one definition both engines run; the local engine substitutes the same placeholders. */
export const AGENT_DEFINITION_FILE = repoPath("statemachines/agent.asl.json");

export interface AgentStateMachineProps {
  /**
   * The Lambdas by catalogue role; every role with an ASL placeholder (lambdas/shared/catalogue.ts)
   * must be given, and every `${...}` of the definition must be a catalogue placeholder.
   */
  readonly functions: Readonly<Partial<Record<RoleId, IFunction>>>;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The agent loop as a Standard workflow (long `.waitForTaskToken` waits, exactly-once steps), loaded
 * from `statemachines/agent.asl.json` with each `${...FunctionArn}` placeholder bound to a Lambda.
 */
export class AgentStateMachine extends Construct {
  readonly stateMachine: IStateMachine;

  constructor(scope: Construct, id: string, props: AgentStateMachineProps) {
    super(scope, id);
    const definition = readFileSync(AGENT_DEFINITION_FILE, "utf8");
    const functions = placeholderFunctions(definition, props.functions);
    const stateMachine = new StateMachine(this, "StateMachine", {
      // Inlined (not an S3 asset) so `cdk diff` shows definition changes and the template alone
      // proves which definition is deployed: the same file the local engine runs.
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries(
        Object.entries(functions).map(([placeholder, fn]) => [placeholder, fn.functionArn]),
      ),
      stateMachineType: StateMachineType.STANDARD,
      tracingEnabled: true,
      logs: {
        // Under /aws/vendedlogs/ so Step Functions needs no entry in the account-wide CloudWatch Logs
        // resource policy (whose 5,120-character limit breaks logging after a few dozen stacks);
        // named after the stack so N customer stacks never collide.
        destination: new LogGroup(this, "Logs", {
          logGroupName: `/aws/vendedlogs/states/${Aws.STACK_NAME}-agent`,
          retention: props.logRetention ?? RetentionDays.ONE_MONTH,
        }),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
    });
    // The definition comes from a file, so CDK cannot infer these permissions.
    for (const fn of Object.values(functions)) {
      fn.grantInvoke(stateMachine);
    }
    // A multi-PO document: Ingest starts one execution of this machine per PO (agent/fanout.ts). A
    // separate policy, not the role's default one: the function depends on its default policy and
    // the machine on the function, so a grant there would be a dependency cycle.
    const ingestRole = props.functions.Ingest?.role;
    if (ingestRole) {
      new Policy(this, "IngestStartsChildRuns", {
        roles: [ingestRole],
        statements: [
          new PolicyStatement({ actions: ["states:StartExecution"], resources: [stateMachine.stateMachineArn] }),
        ],
      });
    }
    // Finalize and RecordFailure price the run from its own execution's history (cost-estimate.ts):
    // GetExecutionHistory on this machine's executions only, in a separate policy for the same reason.
    const historyReaders = [props.functions.Finalize?.role, props.functions.RecordFailure?.role].filter(
      (r): r is NonNullable<typeof r> => r !== undefined,
    );
    new Policy(this, "CostReadersReadHistory", {
      roles: historyReaders,
      statements: [
        new PolicyStatement({
          actions: ["states:GetExecutionHistory"],
          resources: [
            `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${stateMachine.stateMachineName}:*`,
          ],
        }),
      ],
    });
    this.stateMachine = stateMachine;
  }
}

/** Placeholder → function for every `${...}` of the definition, checked against the catalogue both ways. */
export function placeholderFunctions(
  definition: string,
  given: Readonly<Partial<Record<RoleId, IFunction>>>,
): Record<string, IFunction> {
  const used = new Set([...definition.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1] ?? ""));
  const out: Record<string, IFunction> = {};
  for (const placeholder of used) {
    const role = (ROLE_OF_PLACEHOLDER as Record<string, RoleId | undefined>)[placeholder];
    if (role === undefined) {
      throw new Error(
        `statemachines/agent.asl.json uses \${${placeholder}}, which no role of lambdas/shared/catalogue.ts has`,
      );
    }
    const fn = given[role];
    if (fn === undefined) throw new Error(`no function given for role ${role} (\${${placeholder}})`);
    out[placeholder] = fn;
  }
  for (const [role, entry] of Object.entries(ROLES)) {
    if ("placeholder" in entry && !used.has(entry.placeholder)) {
      throw new Error(
        `the catalogue gives ${role} the placeholder ${entry.placeholder}, which the definition never uses`,
      );
    }
  }
  return out;
}

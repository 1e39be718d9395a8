import { randomBytes } from "node:crypto";
import type { Template } from "./bundles.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const REGION = "us-east-1";
export const ACCOUNT = "000000000000";

/**
 * Physical names and ARNs for one synthesized stack "deployed" on the local emulators, and the
 * resolution of the template's intrinsics (Ref, GetAtt, Join, Sub, Select, Split) to them: what
 * CloudFormation would hand each function in its environment and its role policies.
 */
export class LocalDeployment {
  readonly secrets = new Map<string, string>();

  constructor(
    readonly stackName: string,
    readonly template: Template,
    /** The customer's intake bucket name on the local S3 (one per customer). */
    private readonly intakeBucket: string,
  ) {
    for (const [id, r] of Object.entries(template.Resources)) {
      if (r.Type !== "AWS::SecretsManager::Secret") continue;
      const literal = r.Properties?.SecretString;
      this.secrets.set(this.ref(id), typeof literal === "string" ? literal : randomBytes(32).toString("hex"));
    }
  }

  get tableName(): string {
    return `${this.stackName}-ledger`;
  }

  get stateMachineArn(): string {
    return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${this.stackName}-agent`;
  }

  functionArn(logicalId: string): string {
    return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${this.stackName}-${logicalId}`;
  }

  roleArn(logicalId: string): string {
    return `arn:aws:iam::${ACCOUNT}:role/${this.stackName}-${logicalId}`;
  }

  /** What `Ref` of a resource returns. */
  ref(id: string): string {
    const type = this.template.Resources[id]?.Type ?? "";
    switch (type) {
      case "AWS::DynamoDB::Table":
        return this.tableName;
      case "AWS::S3::Bucket":
        return id.startsWith("IntakeBucket") ? this.intakeBucket : `${this.intakeBucket}-${id.toLowerCase()}`;
      case "AWS::SecretsManager::Secret":
        return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${this.stackName}-${id}-AbCdEf`;
      case "AWS::StepFunctions::StateMachine":
        return this.stateMachineArn;
      case "AWS::IAM::Role":
      case "AWS::Lambda::Function":
        return `${this.stackName}-${id}`;
      default:
        return `${this.stackName}-${id}`;
    }
  }

  getAtt(id: string, attribute: string): string {
    const type = this.template.Resources[id]?.Type ?? "";
    if (attribute === "Arn") {
      if (type === "AWS::DynamoDB::Table") return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${this.tableName}`;
      if (type === "AWS::S3::Bucket") return `arn:aws:s3:::${this.ref(id)}`;
      if (type === "AWS::Lambda::Function") return this.functionArn(id);
      if (type === "AWS::IAM::Role") return this.roleArn(id);
      return this.ref(id);
    }
    if (attribute === "Name" && type === "AWS::StepFunctions::StateMachine") {
      return this.stateMachineArn.split(":").pop() ?? "";
    }
    if (attribute === "FunctionUrl") return `https://${id.toLowerCase()}.lambda-url.${REGION}.on.aws/`;
    return `${this.ref(id)}.${attribute}`;
  }

  resolve(node: Json | undefined): string {
    if (node === undefined || node === null) return "";
    if (typeof node !== "object") return String(node);
    if (Array.isArray(node)) return node.map((n) => this.resolve(n)).join(",");
    const [fn, arg] = Object.entries(node)[0] ?? [];
    switch (fn) {
      case "Ref": {
        const pseudo: Record<string, string> = {
          "AWS::Region": REGION,
          "AWS::AccountId": ACCOUNT,
          "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com",
          "AWS::StackName": this.stackName,
        };
        return pseudo[String(arg)] ?? this.ref(String(arg));
      }
      case "Fn::GetAtt": {
        const [id, attribute] = Array.isArray(arg) ? arg : String(arg).split(".");
        return this.getAtt(String(id), String(attribute));
      }
      case "Fn::Join": {
        const [sep, parts] = arg as [string, Json[]];
        return parts.map((p) => this.resolve(p)).join(sep);
      }
      case "Fn::Select": {
        const [index, list] = arg as [number, Json];
        const items = Array.isArray(list) ? list.map((l) => this.resolve(l)) : this.resolveList(list);
        return items[Number(index)] ?? "";
      }
      case "Fn::Split": {
        return this.resolveList(node).join(",");
      }
      case "Fn::Sub": {
        const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [String(arg), {}];
        return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (vars[name] !== undefined) return this.resolve(vars[name]);
          if (name.startsWith("AWS::")) return this.resolve({ Ref: name });
          const [id, attribute] = name.split(".");
          return attribute ? this.getAtt(id ?? "", attribute) : this.ref(id ?? "");
        });
      }
      default:
        return JSON.stringify(node);
    }
  }

  private resolveList(node: Json): string[] {
    if (node && typeof node === "object" && !Array.isArray(node) && "Fn::Split" in node) {
      const [sep, source] = node["Fn::Split"] as [string, Json];
      return this.resolve(source).split(sep);
    }
    return [this.resolve(node)];
  }

  /** A policy document with every intrinsic resolved to a string. */
  resolvePolicy(doc: Json): Json {
    const walk = (n: Json): Json => {
      if (n === null || typeof n !== "object") return n;
      if (Array.isArray(n)) return n.map(walk);
      const keys = Object.keys(n);
      if (keys.length === 1 && (keys[0] === "Ref" || keys[0]?.startsWith("Fn::"))) return this.resolve(n);
      return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, walk(v)]));
    };
    return walk(doc);
  }

  /** The identity policies attached to a role (inline AWS::IAM::Policy resources naming it). */
  policiesOfRole(roleLogicalId: string): { name: string; policy: Json }[] {
    const roleName = this.ref(roleLogicalId);
    const out: { name: string; policy: Json }[] = [];
    for (const [id, r] of Object.entries(this.template.Resources)) {
      if (r.Type !== "AWS::IAM::Policy") continue;
      const roles = (r.Properties?.Roles as Json[] | undefined) ?? [];
      if (!roles.some((role) => this.resolve(role) === roleName)) continue;
      out.push({ name: id, policy: this.resolvePolicy(r.Properties?.PolicyDocument ?? {}) });
    }
    return out;
  }

  /** Environment.Variables of a function as Lambda would set them. */
  environmentOf(variables: Record<string, Json>): Record<string, string> {
    return Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, this.resolve(v)]));
  }
}

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type AssetStaging, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AttributeType, Table } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { EXEC_WRAPPER, PoAgentFunction } from "../../lib/po-agent-function.js";
import { BundleProcess } from "../../scripts/deployed/bundles.js";

/**
 * Functions that evaluate the Cedar policy start node through an exec wrapper that adds `--liftoff-only`
 * (lib/po-agent-function.ts says why); the others run the runtime as it is. Proven on synthesized functions:
 * the variable Lambda reads, the script in the asset, and what the script starts.
 */
let outdir = "";
let template: Template;
const assetOf = (fn: PoAgentFunction) =>
  (fn.node.findChild("Code").node.findChild("Stage") as AssetStaging).absoluteStagedPath;
let saveDir = "";
let finalizeDir = "";
let save: PoAgentFunction;
let finalize: PoAgentFunction;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), "po-agent-wrapper-"));
  const app = new App({ outdir });
  const stack = new Stack(app, "Wrapper");
  const common = {
    customer: loadCustomerFile("customers/acme.yaml"),
    ledgerTable: new Table(stack, "Table", { partitionKey: { name: "pk", type: AttributeType.STRING } }),
    documentBucket: new Bucket(stack, "Bucket"),
  };
  save = new PoAgentFunction(stack, "Save", { handlerName: "save", ...common });
  finalize = new PoAgentFunction(stack, "Finalize", { handlerName: "finalize", ...common });
  template = Template.fromStack(stack);
  saveDir = assetOf(save);
  finalizeDir = assetOf(finalize);
}, 120_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/**
 * An arm64 node, Lambda's architecture (the stack's functions are ARM_64): `PO_AGENT_ARM64_NODE` (a command
 * that runs one; `.ci/run` provisions Node 22 for arm64 from the npm registry under qemu-user), or this node
 * on an arm64 machine. Without one the arm64 tests are skipped with a line saying so; under `CI=true` they fail.
 */
const arm64Node = process.env.PO_AGENT_ARM64_NODE || (process.arch === "arm64" ? process.execPath : undefined);
const arm64Required = process.env.CI === "true";
if (!arm64Node && !arm64Required)
  console.warn("exec-wrapper.test: no arm64 node (set PO_AGENT_ARM64_NODE, see .ci/run): the arm64 tests are skipped");
const needArm64 = (): string => {
  if (!arm64Node) throw new Error("CI=true: PO_AGENT_ARM64_NODE must name an arm64 node (.ci/run provisions one)");
  return arm64Node;
};

/**
 * One process of `node` started through Save's wrapper, eagerly compiling the Cedar engine (every function,
 * not only those one evaluation reaches) and deciding a permit under and over a limit.
 */
const cedarProbe = (node: string) => {
  const engine = join(saveDir, "node_modules/@cedar-policy/cedar-wasm/nodejs/cedar_wasm.js");
  const probe = `const c = require(${JSON.stringify(engine)});
const decide = (amount) => { const r = c.isAuthorized({ principal: { type: "Agent", id: "po-agent" },
  action: { type: "Action", id: "save" }, resource: { type: "PO", id: "po-1" }, context: { amount },
  policies: { staticPolicies: 'permit(principal, action == Action::"save", resource) when { context.amount <= 10000 };' },
  entities: [] }); return r.type === "success" ? r.response.decision : r.type; };
console.log(JSON.stringify({ arch: process.arch, flags: process.execArgv.filter((f) => f.startsWith("--")),
  version: c.getCedarVersion(), under: decide(10000), over: decide(10001) }));`;
  const out = execFileSync(join(saveDir, EXEC_WRAPPER.file), [node, "--no-wasm-lazy-compilation", "-e", probe], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
};

const envOf = (fn: PoAgentFunction) => {
  const id = Stack.of(fn).getLogicalId(fn.node.defaultChild as never);
  return template.toJSON().Resources[id].Properties.Environment.Variables as Record<string, unknown>;
};

describe("the exec wrapper of the functions that evaluate the policy", () => {
  it("is set on Save, whose bundle ships the Cedar engine, and not on Finalize, whose bundle does not", () => {
    // Assess
    expect(existsSync(join(saveDir, "node_modules/@cedar-policy/cedar-wasm"))).toBe(true);
    expect(envOf(save).AWS_LAMBDA_EXEC_WRAPPER).toBe(`/var/task/${EXEC_WRAPPER.file}`);
    expect(existsSync(join(finalizeDir, "node_modules/@cedar-policy"))).toBe(false);
    expect(envOf(finalize).AWS_LAMBDA_EXEC_WRAPPER).toBeUndefined();
    expect(existsSync(join(finalizeDir, EXEC_WRAPPER.file))).toBe(false);
  });

  it.skipIf(process.platform === "win32")(
    "is an executable script in the asset that starts the given node with --liftoff-only and the runtime's arguments",
    () => {
      // Prepare
      const script = join(saveDir, EXEC_WRAPPER.file);

      // Act: as Lambda runs it, the interpreter's path first, then the runtime's own arguments.
      const out = execFileSync(
        script,
        [process.execPath, "--max-old-space-size=200", "-e", "console.log(JSON.stringify(process.execArgv))"],
        { encoding: "utf8" },
      );

      // Assess
      expect(statSync(script).mode & 0o111).toBe(0o111);
      expect(JSON.parse(out)).toEqual(["--liftoff-only", "--max-old-space-size=200", "-e", expect.any(String)]);
    },
  );

  it.skipIf(process.platform === "win32")(
    "compiles every function of the shipped Cedar wasm with Liftoff alone (a function it cannot compile aborts node under --liftoff-only)",
    () => {
      // Prepare: the engine as the bundle ships it; eager compilation reaches every function, not only those one
      // evaluation calls, so a Cedar upgrade with an instruction Liftoff lacks fails here, not in a Lambda.
      const engine = join(saveDir, "node_modules/@cedar-policy/cedar-wasm/nodejs/cedar_wasm.js");
      const probe = `const c = require(${JSON.stringify(engine)}); console.log(typeof c.isAuthorized, c.getCedarVersion())`;

      // Act
      const out = execFileSync(
        join(saveDir, EXEC_WRAPPER.file),
        [process.execPath, "--no-wasm-lazy-compilation", "-e", probe],
        {
          encoding: "utf8",
        },
      );

      // Assess
      expect(out.trim()).toMatch(/^function \d+\.\d+\.\d+$/);
    },
    60_000,
  );

  it.skipIf(process.platform === "win32")(
    "starts the synthesized Save bundle with --liftoff-only, as check:deployed and bench:bundles host it",
    async () => {
      // Prepare: the function's environment as the template has it, the tokens replaced.
      const env = {
        ...Object.fromEntries(
          Object.entries(envOf(save)).map(([k, v]) => [k, typeof v === "string" ? v : `${k.toLowerCase()}-local`]),
        ),
        AWS_REGION: "us-east-1",
      };

      // Act
      const wrapped = await BundleProcess.start(saveDir, env);
      const plain = await BundleProcess.start(finalizeDir, { ...env, AWS_LAMBDA_EXEC_WRAPPER: "" });
      const outside = () => BundleProcess.start(finalizeDir, { ...env, AWS_LAMBDA_EXEC_WRAPPER: "/opt/elsewhere.sh" });
      await Promise.all([wrapped.close(), plain.close()]);

      // Assess: the wrapped process runs with the flag and initialized; a wrapper outside the bundle is refused.
      expect(wrapped.initError).toBeUndefined();
      expect(wrapped.execArgv).toContain("--liftoff-only");
      expect(plain.execArgv).not.toContain("--liftoff-only");
      expect(outside).toThrow(/AWS_LAMBDA_EXEC_WRAPPER is \/opt\/elsewhere\.sh/);
    },
    60_000,
  );
});

describe.skipIf(process.platform === "win32" || (!arm64Node && !arm64Required))(
  "the exec wrapper on arm64, the architecture the stack deploys",
  () => {
    it("compiles every function of the shipped Cedar wasm with Liftoff alone on arm64, and decides as on this machine", () => {
      // Prepare: --liftoff-only is a V8 testing flag; Liftoff is a per-architecture compiler, so what holds
      // on x64 is not proof for the arm64 Lambdas.
      const node = needArm64();

      // Act
      const arm = cedarProbe(node);
      const here = cedarProbe(process.execPath);

      // Assess
      expect(arm).toMatchObject({ arch: "arm64", under: "allow", over: "deny" });
      expect(arm.flags).toEqual(["--liftoff-only", "--no-wasm-lazy-compilation"]);
      expect({ ...arm, arch: process.arch }).toEqual(here);
    }, 180_000);

    it("initializes the synthesized Save bundle on arm64 through its wrapper", async () => {
      // Prepare
      const node = needArm64();
      const env = {
        ...Object.fromEntries(
          Object.entries(envOf(save)).map(([k, v]) => [k, typeof v === "string" ? v : `${k.toLowerCase()}-local`]),
        ),
        AWS_REGION: "us-east-1",
      };

      // Act
      const p = await BundleProcess.start(saveDir, env, { node });
      await p.close();

      // Assess
      expect(p.initError).toBeUndefined();
      expect(p.arch).toBe("arm64");
      expect(p.execArgv).toContain("--liftoff-only");
    }, 180_000);
  },
);

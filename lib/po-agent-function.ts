import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AssetHashType, type AssetStaging, DockerImage, Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Architecture, Code, Function as LambdaFunction, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import { buildSync } from "esbuild";
import { type HandlerName, ROLES, type RoleId } from "../lambdas/shared/catalogue.js";
import { checkCustomerConfig } from "../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";

export type { HandlerName } from "../lambdas/shared/catalogue.js";

/** File name of the customer config inside every bundle; handlers read it via `CUSTOMER_CONFIG_FILE`. */
export const CUSTOMER_CONFIG_FILE = "customer.json";

/**
 * Dependencies too large for every cold start that esbuild cannot split into a chunk (CommonJS required
 * synchronously, a wasm read from disk, PDF.js imported by unpdf): left out of the bundle (external) and
 * shipped beside it under `node_modules/`, only into bundles whose code names them; the code loads them
 * on first use (`lazyModule`, lambdas/shared/lazy.ts, or unpdf's own dynamic import of PDF.js). `copy`
 * takes files as they are from the repository's node_modules; `bundle` makes one CommonJS file of a
 * module that spans many. Everything else, the AWS SDK included, is bundled (see PoAgentFunction).
 */
export const LAZY_DEPENDENCIES: readonly LazyDependency[] = [
  // PDF.js (1.6 MB): unpdf imports it on the first PDF; extract and ingest read PDFs.
  { specifier: "unpdf/pdfjs", copy: ["unpdf/package.json", "unpdf/dist/pdfjs.mjs"] },
  // The Cedar engine and its 4.1 MB wasm, compiled on the first policy evaluation.
  {
    specifier: "@cedar-policy/cedar-wasm/nodejs",
    copy: [
      "@cedar-policy/cedar-wasm/package.json",
      "@cedar-policy/cedar-wasm/nodejs/package.json",
      "@cedar-policy/cedar-wasm/nodejs/cedar_wasm.js",
      "@cedar-policy/cedar-wasm/nodejs/cedar_wasm_bg.wasm",
    ],
  },
  // cl100k_base ranks (1 MB): counted only when compressing a thread or estimating unreported usage.
  {
    specifier: "gpt-tokenizer/encoding/cl100k_base",
    bundle: { entry: "gpt-tokenizer/cjs/encoding/cl100k_base.js", to: "gpt-tokenizer/encoding/cl100k_base.js" },
  },
];

/**
 * The exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) of the functions that evaluate the Cedar policy. Lambda runs it with
 * the interpreter's path and the runtime's own arguments; it starts the same runtime with one V8 flag, Liftoff as
 * the only wasm compiler. Cedar's first evaluation in a fresh process costs 210–450 ms CPU with V8's default
 * tiering (the optimizing compiler at work on the wasm functions it reaches) and 110–160 ms with Liftoff only, on
 * Node 20 and Node 22 alike; warm evaluations stay about 2 ms (measured on the development machine, 2026-12-01).
 * NODE_OPTIONS cannot carry such a V8 flag; a wrapper script can. Not written on Windows, where the zipped asset
 * would lose the executable bit (aws/aws-cdk#10776) and Lambda could not start the runtime: those functions then
 * pay the slower first evaluation.
 */
export const EXEC_WRAPPER = {
  file: "node-liftoff.sh",
  text: [
    "#!/bin/sh",
    "# Lambda runs this (AWS_LAMBDA_EXEC_WRAPPER) with the path of node and the runtime's own arguments.",
    "# Same runtime, one V8 flag: Liftoff compiles the Cedar engine's wasm, with no optimizing tier.",
    'node="$1"',
    "shift",
    'exec "$node" --liftoff-only "$@"',
    "",
  ].join("\n"),
  /** The specifier whose presence in a bundle's code calls for the wrapper. */
  for: "@cedar-policy/cedar-wasm/nodejs",
} as const;

/**
 * Packages the bundles replace: ajv and ajv-formats (with fast-uri, 140 KB) are the MCP SDK's default
 * JSON Schema validator, built by its Client and Server constructors unless given one. po-agent gives
 * them one (NO_SCHEMA_VALIDATION, lambdas/shared/mcp/validator.ts: nothing it does validates a schema
 * there), so the bundles hold a stand-in that throws if ever called instead of loading ajv at init.
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {
  ajv: repoPath("lambdas/shared/mcp/ajv-absent.ts"),
  "ajv-formats": repoPath("lambdas/shared/mcp/ajv-absent.ts"),
};

export interface LazyDependency {
  /** What the code imports or requires; external to esbuild, and the test of whether a bundle needs it. */
  readonly specifier: string;
  /** Paths under node_modules/ copied as they are. */
  readonly copy?: readonly string[];
  /** One entry under node_modules/ bundled (CommonJS, minified) to one file at `to`. */
  readonly bundle?: { readonly entry: string; readonly to: string };
}

/** Repository root: the esbuild project root and the base of every path the app reads. */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Absolute path of a repository file, independent of the process working directory. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

export interface PoAgentFunctionProps {
  /**
   * Folder under `lambdas/` whose `handler.ts` exports `handler`; must be the catalogue's for the id.
   * @default - the catalogue's handler of the construct id (lambdas/shared/catalogue.ts ROLES)
   */
  readonly handlerName?: HandlerName;
  /** Validated customer config; copied into the bundle as `customer.json`, never into env vars. */
  readonly customer: CustomerConfig;
  readonly ledgerTable: ITable;
  readonly documentBucket: IBucket;
  /**
   * @default - 30 seconds
   */
  readonly timeout?: Duration;
  /**
   * @default - 256 MiB
   */
  readonly memorySize?: number;
  /**
   * Variables added to the common ones (table, bucket, customer, Powertools).
   * @default - only the common variables
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * @default - one month
   */
  readonly logRetention?: RetentionDays;
}

/** The banner of every output file: some dependencies are CommonJS and call require() or read files next to themselves. */
const ESM_BANNER =
  "import { createRequire } from 'node:module';import { dirname as __poDirname } from 'node:path';import { fileURLToPath as __poFileUrlToPath } from 'node:url';const require = createRequire(import.meta.url);const __filename = __poFileUrlToPath(import.meta.url);const __dirname = __poDirname(__filename);";

/**
 * Every po-agent Lambda: Node 22 on arm64, X-Ray active, its own log group with retention, bundled by the
 * locally installed esbuild (never Docker) with the customer config written next to the handler.
 *
 * The bundle is `index.mjs` plus chunks beside it (esbuild code splitting): everything a handler imports
 * statically is what Lambda loads at init; every `await import()` (the S3, SES, Step Functions and
 * Secrets Manager clients where not every call uses them, the Anthropic and Bedrock SDKs, the MCP client,
 * the SDK's SSO/STS/ini credential providers that a Lambda, whose credentials are environment variables,
 * never reaches) is a chunk read on first use only (lambdas/shared/aws/runtime.ts, `lazyClient`). The AWS SDK is bundled at the versions package-lock.json pins, not taken from the
 * runtime: the runtime's copy is hundreds of files resolved one by one at init, at a version we never
 * tested (AWS recommends bundling it for cold starts: aws/aws-cdk#25492).
 */
export class PoAgentFunction extends LambdaFunction {
  /** The `lambdas/` folder this function runs. */
  readonly handlerName: HandlerName;

  /** Its role in the catalogue (the construct id). Not `role`: that is the function's IAM role. */
  readonly catalogueRole: RoleId;

  /** `id` is the function's role in the catalogue, which names its handler folder. */
  constructor(scope: Construct, id: RoleId, props: PoAgentFunctionProps) {
    const handlerName = handlerOf(id, props.handlerName);
    // Validated here, whoever built it: the bundle's code trusts this file (lambdas/shared/aws/runtime.ts).
    // As the YAML loader checks a file (schema and semantic checks), each problem with its field and bad value.
    const checked = checkCustomerConfig(props.customer);
    if (!checked.ok)
      throw new Error(`${scope.node.path}/${id}: invalid customer config: ${checked.problems.join("; ")}`);
    const customerJson = JSON.stringify(checked.config);
    super(scope, id, {
      code: Code.fromAsset(REPO_ROOT, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Required by the interface, never run: local bundling either succeeds or throws.
          image: DockerImage.fromRegistry("po-agent-bundles-locally"),
          // Not executed either: it keys CDK's asset cache, so it names everything the output depends on.
          command: ["po-agent-bundle", handlerName, createHash("sha256").update(customerJson).digest("hex")],
          local: {
            tryBundle: (outputDir: string) => {
              bundleHandler(handlerName, customerJson, outputDir);
              return true;
            },
          },
        },
      }),
      handler: "index.handler",
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 256,
      // Created in the parent scope: `this` cannot own children before super() returns.
      logGroup: new LogGroup(scope, `${id}Logs`, { retention: props.logRetention ?? RetentionDays.ONE_MONTH }),
      environment: {
        LEDGER_TABLE: props.ledgerTable.tableName,
        DOCUMENT_BUCKET: props.documentBucket.bucketName,
        CUSTOMER: props.customer.name,
        CUSTOMER_CONFIG_FILE,
        POWERTOOLS_SERVICE_NAME: "po-agent",
        POWERTOOLS_METRICS_NAMESPACE: "PoAgent",
        ...props.environment,
      },
    });
    this.handlerName = handlerName;
    this.catalogueRole = id;
    // Bundled by now (the code was bound in super()); the wrapper is in the bundle only where the policy is evaluated.
    const staged = (this.node.findChild("Code").node.findChild("Stage") as AssetStaging).absoluteStagedPath;
    if (existsSync(join(staged, EXEC_WRAPPER.file)))
      this.addEnvironment("AWS_LAMBDA_EXEC_WRAPPER", `/var/task/${EXEC_WRAPPER.file}`);
  }
}

/**
 * Bundles `lambdas/<handler>/handler.ts` into `outputDir`: `index.mjs` and its chunks, `customer.json`,
 * and the lazy dependencies the code names. Minified without `keepNames`: it wraps every function and class
 * of the bundle, the AWS SDK included, in a `__name()` call at load (about a tenth of init CPU and 6% of the
 * bytes). Error names are a contract (Lambda reports `error.name` as errorType and Step Functions matches
 * Retry/Catch ErrorEquals on it), so every error class declares its name as a string literal instead of
 * taking its class's (lambdas/shared/errors.ts; test/unit/error-names.test.ts), and the SDKs we match on
 * by name set theirs explicitly. No source maps: a 3.4 MB map per bundle, and --enable-source-maps makes
 * every stack trace expensive.
 */
export function bundleHandler(handlerName: HandlerName, customerJson: string, outputDir: string): void {
  const { metafile } = buildSync({
    absWorkingDir: REPO_ROOT,
    entryPoints: { index: repoPath(`lambdas/${handlerName}/handler.ts`) },
    bundle: true,
    splitting: true,
    outdir: outputDir,
    outExtension: { ".js": ".mjs" },
    // Beside index.mjs, so `__dirname` and createRequire() see the bundle root from every chunk.
    chunkNames: "[name]-[hash]",
    format: "esm",
    platform: "node",
    target: "node22",
    mainFields: ["module", "main"],
    banner: { js: ESM_BANNER },
    minify: true,
    sourcemap: false,
    external: LAZY_DEPENDENCIES.map((d) => d.specifier),
    alias: { ...BUNDLE_ALIASES },
    logLevel: "warning",
    metafile: true,
  });
  // Nothing may be left for the runtime to provide but Node's own modules and the shipped lazy dependencies.
  const lazy = new Set(LAZY_DEPENDENCIES.map((d) => d.specifier));
  const outside = Object.values(metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !isBuiltin(i.path) && !lazy.has(i.path))
    .map((i) => i.path);
  if (outside.length > 0)
    throw new Error(
      `lambdas/${handlerName}: the bundle imports ${[...new Set(outside)].join(", ")} from outside itself`,
    );
  writeFileSync(join(outputDir, CUSTOMER_CONFIG_FILE), customerJson);
  const code = reachableChunks(outputDir);
  const names = (specifier: string) => [...code.values()].some((c) => c.includes(specifier));
  for (const dep of LAZY_DEPENDENCIES) if (names(dep.specifier)) ship(dep, outputDir);
  if (names(EXEC_WRAPPER.for) && process.platform !== "win32") {
    const wrapper = join(outputDir, EXEC_WRAPPER.file);
    writeFileSync(wrapper, EXEC_WRAPPER.text);
    // chmod, not writeFileSync's mode, which the umask narrows (0027 would leave Lambda's user unable to run it).
    chmodSync(wrapper, 0o755);
  }
}

/**
 * The code of index.mjs and of every chunk its code names (statically or in an `import()`), transitively;
 * the other chunks are deleted. esbuild emits a chunk for every `import()` in the module graph, also where
 * tree shaking dropped the code that held it (a tool's `run` in a bundle that only lists the tool): such a
 * chunk is never loaded, and the lazy dependencies it names are not shipped.
 */
function reachableChunks(outputDir: string): Map<string, string> {
  const files = readdirSync(outputDir).filter((f) => f.endsWith(".mjs"));
  const code = new Map<string, string>();
  const visit = (file: string) => {
    if (code.has(file)) return;
    const text = readFileSync(join(outputDir, file), "utf8");
    code.set(file, text);
    for (const other of files) if (text.includes(`"./${other}"`)) visit(other);
  };
  visit("index.mjs");
  for (const file of files) if (!code.has(file)) rmSync(join(outputDir, file));
  return code;
}

function handlerOf(role: RoleId, given: HandlerName | undefined): HandlerName {
  const entry = ROLES[role];
  if (entry === undefined)
    throw new Error(`unknown function role "${String(role)}": add it to lambdas/shared/catalogue.ts`);
  if (given !== undefined && given !== entry.handler) {
    throw new Error(`function ${role} runs lambdas/${entry.handler} in the catalogue, not lambdas/${given}`);
  }
  return entry.handler;
}

/**
 * Every catalogue role's function under `scope`, by role; throws when one is missing (unless listed in
 * `except`: created later) or doubled, so the state machine and the alarms cannot forget a Lambda.
 */
export function functionsByRole(
  scope: Construct,
  opts: { readonly except?: readonly RoleId[] } = {},
): Partial<Record<RoleId, PoAgentFunction>> {
  const found = scope.node.findAll().filter((c): c is PoAgentFunction => c instanceof PoAgentFunction);
  const byRole: Partial<Record<RoleId, PoAgentFunction>> = {};
  for (const fn of found) {
    const role = fn.catalogueRole;
    const seen = byRole[role];
    if (seen) throw new Error(`two functions for role ${role}: ${seen.node.path}, ${fn.node.path}`);
    byRole[role] = fn;
  }
  const missing = (Object.keys(ROLES) as RoleId[]).filter(
    (r) => byRole[r] === undefined && !(opts.except ?? []).includes(r),
  );
  if (missing.length > 0) throw new Error(`no function for catalogue role(s) ${missing.join(", ")}`);
  return byRole;
}

/** Copies one lazy dependency into `outputDir/node_modules`. */
function ship(dep: LazyDependency, outputDir: string): void {
  const files = [
    ...(dep.copy ?? []).map((path) => ({ from: repoPath(`node_modules/${path}`), to: path })),
    ...(dep.bundle ? [{ from: bundledDependency(dep.bundle), to: dep.bundle.to }] : []),
  ];
  for (const { from, to } of files) {
    const target = join(outputDir, "node_modules", to);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(from, target);
  }
}

const bundled = new Map<string, string>();

/** A dependency bundled once per synthesis into a temporary file (esbuild, as the handlers are). */
function bundledDependency(spec: { entry: string; to: string }): string {
  const hit = bundled.get(spec.entry);
  if (hit) return hit;
  const outfile = join(mkdtempSync(join(tmpdir(), "po-agent-lazy-")), basename(spec.to));
  buildSync({
    entryPoints: [repoPath(`node_modules/${spec.entry}`)],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node22",
    minify: true,
    legalComments: "none",
    outfile,
    logLevel: "warning",
  });
  bundled.set(spec.entry, outfile);
  return outfile;
}

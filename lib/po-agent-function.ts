import { fileURLToPath } from "node:url";
import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { LogLevel, NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";

/** The folders under `lambdas/` that hold a `handler.ts`; each becomes one Lambda. */
export type HandlerName =
  | "ingest"
  | "orchestrate"
  | "extract"
  | "validate"
  | "transform"
  | "save"
  | "mcp-tool"
  | "request-approval"
  | "approval-timeout"
  | "approval-callback"
  | "finalize"
  | "record-failure"
  | "approval-backlog"
  | "mcp-server";

/** File name of the customer config inside every bundle; handlers read it via `CUSTOMER_CONFIG_FILE`. */
export const CUSTOMER_CONFIG_FILE = "customer.json";

/** The Cedar policy engine's WebAssembly, copied next to each handler whose bundle loads it. */
const CEDAR_WASM = repoPath("node_modules/@cedar-policy/cedar-wasm/nodejs/cedar_wasm_bg.wasm");

/** Repository root: the esbuild project root and the base of every path the app reads. */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Absolute path of a repository file, independent of the process working directory. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

export interface PoAgentFunctionProps {
  /** Folder under `lambdas/` whose `handler.ts` exports `handler`. */
  readonly handlerName: HandlerName;
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

/**
 * Every po-agent Lambda: Node 22 on arm64, X-Ray active, its own log group with retention, bundled by the
 * locally installed esbuild (never Docker) with the customer config written next to the handler.
 */
export class PoAgentFunction extends NodejsFunction {
  /** The `lambdas/` folder this function runs. */
  readonly handlerName: HandlerName;

  constructor(scope: Construct, id: string, props: PoAgentFunctionProps) {
    const customerJson = JSON.stringify(props.customer);
    super(scope, id, {
      entry: repoPath(`lambdas/${props.handlerName}/handler.ts`),
      handler: "handler",
      projectRoot: REPO_ROOT,
      depsLockFilePath: repoPath("package-lock.json"),
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
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: "node22",
        mainFields: ["module", "main"],
        // Some dependencies are CommonJS and call require() or read files next to themselves (the Cedar
        // engine loads its .wasm from __dirname); give the ESM bundle both.
        banner:
          "import { createRequire } from 'node:module';import { dirname as __poDirname } from 'node:path';import { fileURLToPath as __poFileUrlToPath } from 'node:url';const require = createRequire(import.meta.url);const __filename = __poFileUrlToPath(import.meta.url);const __dirname = __poDirname(__filename);",
        minify: true,
        // Error names are a contract: Lambda reports `error.name` as errorType and Step Functions
        // matches Retry/Catch ErrorEquals on it, so minification must not rename the error classes.
        keepNames: true,
        logLevel: LogLevel.WARNING,
        // No source maps: a 3.4 MB map per bundle, and --enable-source-maps makes every stack trace
        // expensive; keepNames keeps function and class names readable in traces and error types.
        sourceMap: false,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [
            `printf '%s' ${shellQuote(customerJson)} > ${shellQuote(`${outputDir}/${CUSTOMER_CONFIG_FILE}`)}`,
            // Only into bundles that load the Cedar engine (approval-backlog, for one, never evaluates policy).
            `if grep -q cedar_wasm_bg.wasm ${shellQuote(`${outputDir}/index.mjs`)}; then cp ${shellQuote(CEDAR_WASM)} ${shellQuote(`${outputDir}/cedar_wasm_bg.wasm`)}; fi`,
          ],
        },
      },
    });
    this.handlerName = props.handlerName;
  }
}

/** POSIX single-quoting: the config is written verbatim whatever characters it holds. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

import { type ChildProcess, fork, type StdioOptions, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HANDLER_OF_ROLE } from "../../lambdas/shared/catalogue.js";

/** Repository root (the default cloud assembly is its cdk.out). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HOST = fileURLToPath(new URL("./host.mjs", import.meta.url));

/** What the Lambda runtime returns for one invocation: the result, or the error as Step Functions sees it. */
export type Invocation = (
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly errorType: string; readonly errorMessage: string }
) & {
  /** Another invocation of the same process ran beside it (a Lambda container never does that). */
  readonly overlapped?: boolean;
};

type HostMessage =
  | { type: "ready"; initMs: number; initCpuMs?: number; execArgv?: string[]; arch?: string }
  | { type: "init-error"; errorType: string; errorMessage: string; initMs: number }
  | ({ type: "result"; id: number; cpuMs?: number; overlapped?: boolean } & Invocation);

/**
 * One synthesized bundle in its own process (a cold Lambda container): imported once with the
 * function's environment, then invoked with events. Never the TypeScript sources.
 */
export class BundleProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, (inv: Invocation) => void>();
  private stderr = "";
  /**
   * CPU time of each invocation so far, in order of completion, ms: process-wide while it ran, so `overlapped`
   * says another invocation of this process ran beside it. The first includes what it loads on first use.
   */
  readonly invocations: { cpuMs: number; overlapped: boolean }[] = [];

  private constructor(
    private readonly child: ChildProcess,
    /** Module initialization time, ms (import of index.mjs until the handler is exported). */
    readonly initMs: number,
    /** Set when the module itself threw at import (Runtime.ImportModuleError / init error in Lambda). */
    readonly initError: { errorType: string; errorMessage: string } | undefined,
    /** CPU time of that initialization, ms (user + system): its cost on one full core, whatever the load. */
    readonly initCpuMs?: number,
    /** The flags node runs with (what an exec wrapper added, e.g. `--liftoff-only`). */
    readonly execArgv: readonly string[] = [],
    /** The processor architecture node runs on (`process.arch`: `arm64` is Lambda's, here under an emulator). */
    readonly arch: string = process.arch,
  ) {
    child.on("message", (msg: HostMessage) => {
      if (msg.type !== "result") return;
      if (msg.cpuMs !== undefined) this.invocations.push({ cpuMs: msg.cpuMs, overlapped: msg.overlapped === true });
      const done = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      const overlapped = msg.overlapped === true;
      done?.(
        msg.ok
          ? { ok: true, result: msg.result, overlapped }
          : { ok: false, errorType: msg.errorType, errorMessage: msg.errorMessage, overlapped },
      );
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    child.on("exit", (code) => {
      for (const [id, done] of this.waiting) {
        this.waiting.delete(id);
        done({ ok: false, errorType: "Runtime.ExitError", errorMessage: `exit ${code}: ${this.stderr}` });
      }
    });
  }

  /**
   * Starts `dir/index.mjs` with exactly `env` (plus PATH so the host can start). `node`: the node
   * executable to run it with (default: this one), e.g. an arm64 node under an emulator.
   */
  static start(
    dir: string,
    env: Readonly<Record<string, string>>,
    opts: { quiet?: boolean; node?: string } = {},
  ): Promise<BundleProcess> {
    const node = opts.node ?? process.execPath;
    const childEnv = {
      PATH: process.env.PATH ?? "",
      LAMBDA_TASK_ROOT: dir,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...env,
    };
    const stdio: StdioOptions = ["ignore", opts.quiet === false ? "inherit" : "ignore", "pipe", "ipc"];
    const wrapper = env.AWS_LAMBDA_EXEC_WRAPPER;
    const child = !wrapper
      ? // Plain node, as Lambda runs it: fork() would otherwise pass on this process's execArgv (tsx's
        // loader, whose hooks would resolve and transform every module of the bundle on a second thread).
        fork(HOST, [dir], { execPath: node, execArgv: [], env: childEnv, stdio })
      : // As the runtime's bootstrap does: the function's wrapper script, given node's path and the runtime's
        // arguments, starts node itself (the IPC channel passes through its exec).
        spawn(wrapperIn(dir, wrapper), [node, HOST, dir], { env: childEnv, stdio });
    return new Promise((resolve, reject) => {
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const onExit = (code: number | null) => reject(new Error(`bundle host for ${dir} exited (${code}): ${stderr}`));
      child.once("exit", onExit);
      child.once("message", (msg: HostMessage) => {
        child.off("exit", onExit);
        if (msg.type === "ready")
          resolve(new BundleProcess(child, msg.initMs, undefined, msg.initCpuMs, msg.execArgv ?? [], msg.arch));
        else if (msg.type === "init-error")
          resolve(new BundleProcess(child, msg.initMs, { errorType: msg.errorType, errorMessage: msg.errorMessage }));
      });
    });
  }

  /** `traceHeader`: the invocation's `_X_AMZN_TRACE_ID` (unset without one), as the runtime sets it per call. */
  invoke(event: unknown, opts: { traceHeader?: string } = {}): Promise<Invocation> {
    if (this.initError) return Promise.resolve({ ok: false, ...this.initError });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ type: "invoke", id, event, ...opts });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.send({ type: "exit" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
  }
}

/** The bundle's file an `AWS_LAMBDA_EXEC_WRAPPER` of `/var/task/<file>` names (the function's code is /var/task). */
function wrapperIn(dir: string, wrapper: string): string {
  const file = wrapper.startsWith("/var/task/") ? wrapper.slice("/var/task/".length) : "";
  const path = join(dir, file);
  if (file === "" || file.includes("..") || !existsSync(path))
    throw new Error(`AWS_LAMBDA_EXEC_WRAPPER is ${wrapper}, which is not a file of the bundle in ${dir}`);
  return path;
}

interface AssetManifest {
  readonly files: Record<
    string,
    {
      readonly source: { readonly path: string };
      readonly destinations: Record<string, { readonly objectKey: string }>;
    }
  >;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One AWS::Lambda::Function of a synthesized template with its bundle directory. */
export interface SynthesizedFunction {
  readonly logicalId: string;
  /** The `lambdas/<handler>` folder, from the CDK construct path metadata. */
  readonly constructPath: string;
  readonly bundleDir: string;
  /** `Environment.Variables` as written in the template (values may be CloudFormation intrinsics). */
  readonly environment: Record<string, Json>;
  /** Logical id of the execution role (`Role: { Fn::GetAtt: [id, Arn] }`). */
  readonly roleLogicalId: string | undefined;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
}

export interface Template {
  readonly Resources: Record<
    string,
    { readonly Type: string; readonly Properties?: Record<string, Json>; readonly Metadata?: Record<string, Json> }
  >;
}

/** Reads a cloud assembly's template and asset manifest for one stack and locates every function's bundle. */
export function synthesizedFunctions(
  assemblyDir: string,
  stackName: string,
): {
  template: Template;
  functions: SynthesizedFunction[];
} {
  const template = JSON.parse(readFileSync(join(assemblyDir, `${stackName}.template.json`), "utf8")) as Template;
  const manifest = JSON.parse(readFileSync(join(assemblyDir, `${stackName}.assets.json`), "utf8")) as AssetManifest;
  const functions: SynthesizedFunction[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== "AWS::Lambda::Function") continue;
    const props = resource.Properties ?? {};
    const code = props.Code as { S3Key?: Json } | undefined;
    const asset = Object.values(manifest.files).find((f) =>
      Object.values(f.destinations).some((d) => d.objectKey === code?.S3Key),
    );
    if (!asset) continue; // inline code (CDK's own helpers), not a po-agent bundle
    const role = props.Role as { "Fn::GetAtt"?: [string, string] } | undefined;
    const env = (props.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {};
    functions.push({
      logicalId,
      constructPath: String(resource.Metadata?.["aws:cdk:path"] ?? logicalId),
      bundleDir: join(assemblyDir, asset.source.path),
      environment: env,
      roleLogicalId: role?.["Fn::GetAtt"]?.[0],
      timeoutSeconds: typeof props.Timeout === "number" ? props.Timeout : 3,
      memorySize: typeof props.MemorySize === "number" ? props.MemorySize : 128,
    });
  }
  return { template, functions };
}

/** Construct id of each function (the `aws:cdk:path` segment before `/Resource`) → its lambdas/ folder. */
export const HANDLER_OF_ID: Record<string, string> = HANDLER_OF_ROLE;

/** What a bundle loads at init and what it leaves for first use, read from its files. */
export interface BundleLayout {
  /** index.mjs and every chunk it imports statically, transitively: what Lambda reads at init. */
  readonly initFiles: readonly string[];
  readonly initBytes: number;
  /** The chunks only an `import()` reaches: read on first use. */
  readonly lazyFiles: readonly string[];
  readonly lazyBytes: number;
}

/** Static imports of a relative chunk in esbuild's output (`import{a as b}from"./x.mjs"`, `import"./x.mjs"`). */
const STATIC_CHUNK_IMPORT =
  /\bimport\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+|[\w$]+(?:\s*,\s*\{[^}]*\})?)?\s*(?:from\s*)?"(\.\/[^"]+\.mjs)"/g;

export function bundleLayout(dir: string): BundleLayout {
  const files = readdirSync(dir).filter((f) => f.endsWith(".mjs"));
  const code = new Map(files.map((f) => [f, readFileSync(join(dir, f), "utf8")]));
  const init = new Set<string>();
  const visit = (file: string) => {
    if (init.has(file) || !code.has(file)) return;
    init.add(file);
    for (const m of code.get(file)?.matchAll(STATIC_CHUNK_IMPORT) ?? []) visit((m[1] ?? "").slice(2));
  };
  visit("index.mjs");
  const bytes = (list: string[]) => list.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  const lazy = files.filter((f) => !init.has(f));
  return {
    initFiles: [...init],
    initBytes: bytes([...init]),
    lazyFiles: lazy,
    lazyBytes: bytes(lazy),
  };
}

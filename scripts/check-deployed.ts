/**
 * What deploys is what is tested: synthesizes the customer stacks (or reuses cdk.out), runs every
 * sample through the synthesized bundles from cdk.out on the local engine and emulators (each
 * function in its own process with the environment its template gives it), records every AWS API call
 * each bundle makes and evaluates it against that function's role policy from the template with an
 * IAM evaluator (@cloud-copilot/iam-simulate: AGPL-3.0, a devDependency used only here, never bundled).
 * Then it injects, per function, the failures the definition's Retry/Catch are written for and checks
 * the errorType the bundle reports against their ErrorEquals names. Every invocation of the sample runs
 * is sampled for X-Ray (a fresh trace header, as Lambda sets it) with a fake daemon as
 * AWS_XRAY_DAEMON_ADDRESS: each must send its handler's subsegment and one per AWS call the recorder saw
 * (traces.ts). So must the Function URL bundles, which no execution invokes: each customer's callback (every
 * approval's confirm page and decision, a link that is not valid, and a cold one while Secrets Manager
 * fails: the 500 page, its subsegment a fault) and MCP endpoint (a tool call and retry_run) are sampled, and
 * each must have had a checked trace. The other calls outside the runs are unsampled or untraced and must
 * send nothing.
 *
 *   npm run check:deployed -- [--json] [--reuse] [--out DIR] [--customers a,b]
 *
 * Last line with --json: { bundlesRun, awsCallsChecked, denied, errorNamesChecked, errorNameMismatches,
 * costRecordsChecked, costMismatches, retriesChecked, outcomesChecked, outcomeMismatches, tracedInvocations,
 * subsegmentsChecked, traceProblems,
 * medianRunAwsUsd,
 * coldStartMs: { <function>: median }, firstCallCpuMs: { <function>: median }, warmCallCpuMs: { … },
 * firstCallOverlapped: [<function>] }.
 * Exit 1 when a call is denied, a name mismatches, a run breaks or ends otherwise than samples/README.md says.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { runSimulation, runUnsafeSimulation } from "@cloud-copilot/iam-simulate";
import { Ledger } from "../lambdas/shared/ledger/ledger.js";
import { type LambdaRoute, LocalEngine, substitute } from "../local/engine.js";
import { ExecutionHistories } from "../local/execution-history.js";
import { listen, urlOf } from "../local/ports.js";
import { startServices } from "../local/services.js";
import { createSfnApiHandler } from "../local/sfn-api.js";
import { bucketFor } from "../local/stack.js";
import { lambdaTaskStates } from "../local/trace.js";
import {
  BundleProcess,
  HANDLER_OF_ID,
  type Invocation,
  REPO_ROOT,
  type SynthesizedFunction,
  synthesizedFunctions,
} from "./deployed/bundles.js";
import { sampleExpectations } from "./deployed/expected-outcomes.js";
import { type AwsCall, Recorder } from "./deployed/recorder.js";
import { ACCOUNT, LocalDeployment, REGION } from "./deployed/template.js";
import { checkTraces, FakeXRayDaemon, newTraceHeader, type TracedInvocation } from "./deployed/traces.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Args {
  json: boolean;
  reuse: boolean;
  out: string;
  customers: string[] | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, reuse: false, out: join(REPO_ROOT, "cdk.out"), customers: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") args.json = true;
    else if (a === "--reuse") args.reuse = true;
    else if (a === "--out") args.out = argv[++i] ?? args.out;
    else if (a === "--customers") args.customers = (argv[++i] ?? "").split(",").filter(Boolean);
    else throw new Error(`unknown argument ${a}: expected --json, --reuse, --out DIR, --customers a,b`);
  }
  return args;
}

interface FunctionUnderTest extends SynthesizedFunction {
  readonly stack: string;
  readonly customer: string;
  readonly handler: string;
  /** The access key id it signs with: the recorder tells functions apart by it. */
  readonly accessKeyId: string;
  readonly env: Record<string, string>;
}

/** The custom error names (not States.* / Lambda.*) that Retry/Catch name, per function ARN the definition invokes. */
function errorNamesByFunction(definition: string): Map<string, Set<string>> {
  const byArn = new Map<string, Set<string>>();
  const visit = (states: Record<string, Json>) => {
    for (const state of Object.values(states) as { [k: string]: Json }[]) {
      const processor = state.ItemProcessor as { States?: Record<string, Json> } | undefined;
      if (processor?.States) visit(processor.States);
      const fn = (state.Parameters as { FunctionName?: string } | undefined)?.FunctionName;
      if (typeof fn !== "string") continue;
      const names = byArn.get(fn) ?? new Set<string>();
      for (const rule of [...((state.Retry as Json[]) ?? []), ...((state.Catch as Json[]) ?? [])] as {
        ErrorEquals: string[];
      }[])
        for (const n of rule.ErrorEquals) if (!/^(States|Lambda)\./.test(n)) names.add(n);
      byArn.set(fn, names);
    }
  };
  visit((JSON.parse(definition) as { States: Record<string, Json> }).States);
  return byArn;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : Math.round(s[Math.floor((s.length - 1) / 2)] ?? 0);
};

async function synthesize(args: Args, stacks: string[]): Promise<void> {
  if (args.reuse && existsSync(join(args.out, "manifest.json"))) return;
  // The CDK CLI bundles only the stacks it is asked for; the app is the `app` command of cdk.json.
  await promisify(execFile)(
    "npx",
    ["cdk", "synth", "--quiet", "--no-notices", "--no-version-reporting", "-o", args.out, ...stacks],
    { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
  );
}

function customersOf(args: Args): string[] {
  const all = readdirSync(join(REPO_ROOT, "customers"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.slice(0, -5));
  return args.customers ?? all;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => {
    if (!args.json) console.log(line);
    else console.error(line);
  };
  const started = Date.now();
  const customers = customersOf(args);
  await synthesize(
    args,
    customers.map((c) => `PoAgent-${c}`),
  );
  log(`synthesized ${customers.length} stacks into ${args.out} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  const dataDir = mkdtempSync(join(tmpdir(), "po-agent-deployed-"));
  const daemon = new FakeXRayDaemon();
  await daemon.start();
  const deployments = new Map<string, LocalDeployment>();
  const functions: FunctionUnderTest[] = [];
  // Approvals already decided through a callback bundle: the emulated mailbox is shared by every
  // customer's pass, so a later customer must not try an earlier one's links with its own signing key.
  const decided = new Set<string>();
  for (const customer of customers) {
    const stack = `PoAgent-${customer}`;
    const { template, functions: fns } = synthesizedFunctions(args.out, stack);
    const deployment = new LocalDeployment(stack, template, bucketFor(customer));
    deployments.set(stack, deployment);
    for (const fn of fns) {
      const id = fn.constructPath.split("/").at(-2) ?? "";
      const handler = HANDLER_OF_ID[id];
      if (!handler) throw new Error(`${fn.constructPath}: not a po-agent function`);
      const accessKeyId = `${customer}.${handler}`;
      functions.push({
        ...fn,
        stack,
        customer,
        handler,
        accessKeyId,
        env: {
          ...deployment.environmentOf(fn.environment as Record<string, Json>),
          AWS_REGION: REGION,
          AWS_DEFAULT_REGION: REGION,
          AWS_ACCESS_KEY_ID: accessKeyId,
          AWS_SECRET_ACCESS_KEY: "local",
          AWS_LAMBDA_FUNCTION_NAME: deployment.ref(fn.logicalId),
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
          AWS_XRAY_DAEMON_ADDRESS: daemon.address,
        },
      });
    }
  }

  const services = await startServices({
    dataDir,
    buckets: customers.map(bucketFor),
    credentials: [
      { accessKeyId: "local", secretAccessKey: "local" },
      ...functions.map((f) => ({ accessKeyId: f.accessKeyId, secretAccessKey: "local" })),
    ],
  });
  const secrets = new Map<string, string>();
  for (const d of deployments.values()) for (const [k, v] of d.secrets) secrets.set(k, v);
  const upstreams: Record<string, string> = {
    dynamodb: services.dynamodbEndpoint,
    s3: services.s3Endpoint,
    ses: services.sesEndpoint,
  };
  let stateMachineArn = "";
  const recorder = new Recorder({
    region: REGION,
    account: ACCOUNT,
    upstreams,
    secrets,
    stateMachineArnOf: () => stateMachineArn,
  });
  await recorder.start();
  const clientOpts = { region: REGION, credentials: { accessKeyId: "local", secretAccessKey: "local" } };
  const s3 = new S3Client({ ...clientOpts, endpoint: services.s3Endpoint, forcePathStyle: true });
  const dynamodb = new DynamoDBClient({ ...clientOpts, endpoint: services.dynamodbEndpoint });

  const processes: BundleProcess[] = [];
  const initMs = new Map<string, number[]>();
  /** Per handler, the CPU of the first invocation of its cold process and the median of the later ones. */
  const firstCallCpu = new Map<string, number[]>();
  const warmCallCpu = new Map<string, number[]>();
  /** Functions whose first call shared its process with another call (no clean first-call figure). */
  const overlappedFirstCalls = new Set<string>();
  /** `measure`: started alone, so its module-init time counts as a cold start (parallel starts share the CPU). */
  const startBundle = async (fn: FunctionUnderTest, measure: boolean): Promise<BundleProcess> => {
    const p = await BundleProcess.start(fn.bundleDir, { ...fn.env, AWS_ENDPOINT_URL: recorder.url });
    processes.push(p);
    if (measure) initMs.set(fn.handler, [...(initMs.get(fn.handler) ?? []), p.initMs]);
    return p;
  };
  let bundlesRun = 0;
  let errorNamesChecked = 0;
  const mismatches: string[] = [];
  const problems: string[] = [];
  const outcomes: string[] = [];
  let costRecordsChecked = 0;
  let retriesChecked = 0;
  const costMismatches: string[] = [];
  const costUsd: number[] = [];
  const expected = sampleExpectations(REPO_ROOT);
  let outcomesChecked = 0;
  const outcomeMismatches: string[] = [];
  let sfnServer: Server | undefined;
  const traced: TracedInvocation[] = [];
  /** The functions no execution invokes whose traces must still be checked (each customer's Function URLs). */
  const requiredTraces: string[] = [];

  try {
    for (const [stack, deployment] of deployments) {
      const fns = functions.filter((f) => f.stack === stack);
      const customer = fns[0]?.customer ?? "";
      stateMachineArn = deployment.stateMachineArn;
      // The ledger table as the template declares it (keys and the gsi1 index).
      const table = Object.values(deployment.template.Resources).find((r) => r.Type === "AWS::DynamoDB::Table");
      const tp = (table?.Properties ?? {}) as Record<string, Json>;
      await dynamodb.send(
        new CreateTableCommand({
          TableName: deployment.tableName,
          KeySchema: tp.KeySchema as never,
          AttributeDefinitions: tp.AttributeDefinitions as never,
          GlobalSecondaryIndexes: ((tp.GlobalSecondaryIndexes as Record<string, Json>[] | undefined) ?? []).map(
            (g) => ({
              IndexName: String(g.IndexName),
              KeySchema: g.KeySchema as never,
              Projection: g.Projection as never,
            }),
          ),
          BillingMode: "PAY_PER_REQUEST",
        }),
      );

      // One cold process per function, as a fresh stack's first invocations get.
      const live = new Map<string, BundleProcess>();
      const phase = Date.now();
      for (const [i, p] of (await Promise.all(fns.map((fn) => startBundle(fn, false)))).entries()) {
        const fn = fns[i];
        if (fn) live.set(fn.logicalId, p);
      }
      log(`${customer}: ${fns.length} bundles started in ${((Date.now() - phase) / 1000).toFixed(1)} s`);
      bundlesRun += fns.length;

      const sm = Object.values(deployment.template.Resources).find(
        (r) => r.Type === "AWS::StepFunctions::StateMachine",
      );
      const substitutions = Object.fromEntries(
        Object.entries((sm?.Properties?.DefinitionSubstitutions ?? {}) as Record<string, Json>).map(([k, v]) => [
          k,
          deployment.resolve(v),
        ]),
      );
      const definition = substitute(
        deployment.resolve((sm?.Properties?.DefinitionString ?? "") as Json),
        substitutions,
      );
      /**
       * A sampled invocation of a Function URL bundle, checked like the runs' invocations and, as their handler
       * names are known, by that name: `## approval-callback`, `## mcp-server`.
       */
      const invokeUrl = async (
        fn: FunctionUnderTest,
        event: unknown,
        opts: { process?: BundleProcess; fault?: boolean } = {},
      ): Promise<Invocation | undefined> => {
        const trace = newTraceHeader(true);
        const out = await (opts.process ?? live.get(fn.logicalId))?.invoke(event, { traceHeader: trace.header });
        if (out)
          traced.push({
            label: `${customer}/${fn.handler}`,
            root: trace.root,
            parent: trace.parent,
            customer,
            subsegment: `## ${fn.handler}`,
            fault: opts.fault ?? false,
            overlapped: out.overlapped === true,
          });
        return out;
      };
      for (const fn of fns)
        if (fn.handler === "approval-callback" || fn.handler === "mcp-server")
          requiredTraces.push(`${customer}/${fn.handler}`);
      const firstEvents = new Map<string, unknown>();
      const routes: Record<string, LambdaRoute> = {};
      for (const fn of fns) {
        routes[deployment.functionArn(fn.logicalId)] = async (payload) => {
          if (!firstEvents.has(fn.logicalId)) firstEvents.set(fn.logicalId, payload);
          const trace = newTraceHeader(true);
          const out = await live.get(fn.logicalId)?.invoke(payload, { traceHeader: trace.header });
          if (!out) throw new Error(`no process for ${fn.handler}`);
          const runId = (payload as { runId?: unknown } | null)?.runId;
          traced.push({
            label: `${customer}/${fn.handler}`,
            root: trace.root,
            parent: trace.parent,
            customer,
            ...(typeof runId === "string" ? { runId } : {}),
            overlapped: out.overlapped === true,
          });
          if (out.ok) return out.result;
          throw Object.assign(new Error(out.errorMessage), { name: out.errorType });
        };
      }
      // Each execution's history as GetExecutionHistory returns it (Finalize's bundle reads it to count
      // the run's cost), and, independently, the engine's own counts to check the cost records against.
      const histories = new ExecutionHistories();
      const lambdaStates = lambdaTaskStates(definition);
      const counted = new Map<string, { transitions: number; invocations: number }>();
      const engine = new LocalEngine({
        definition,
        routes,
        retryIntervalOverrides: 0,
        stateMachineArn,
        onEvent: (arn, event) => {
          histories.onEvent(arn, event);
          const c = counted.get(arn) ?? { transitions: 0, invocations: 0 };
          counted.set(arn, c);
          if (event.type === "StateEntered" || event.type === "StateRetried") c.transitions++;
          if ((event.type === "StateEntered" && lambdaStates.has(event.state.name)) || event.type === "StateRetried")
            c.invocations++;
        },
        onTask: (arn, task) => histories.onTask(arn, task),
      });
      sfnServer?.close();
      sfnServer = createServer(createSfnApiHandler(engine, { executionHistory: (arn) => histories.history(arn) }));
      await listen(sfnServer, 0);
      upstreams.states = urlOf(sfnServer);

      // Every sample of the customer, uploaded under incoming/ and started as EventBridge would.
      const sampleDir = join(REPO_ROOT, "samples", customer);
      const samples = existsSync(sampleDir) ? readdirSync(sampleDir).filter((f) => !f.startsWith("README")) : [];
      const bucket = bucketFor(customer);
      const executions = [];
      for (const [i, file] of samples.entries()) {
        const key = `incoming/${file}`;
        const body = readFileSync(join(sampleDir, file));
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        const run = engine.startExecution({
          name: `deployed-${customer}-${i}`,
          input: {
            version: "0",
            "detail-type": "Object Created",
            source: "aws.s3",
            account: ACCOUNT,
            region: REGION,
            resources: [`arn:aws:s3:::${bucket}`],
            detail: { bucket: { name: bucket }, object: { key, size: body.byteLength, "version-id": `v${i + 1}` } },
          },
        });
        executions.push({ file, run });
        // The first run alone, so each function's first (cold) call has its process to itself and its CPU
        // is a clean first-call figure; a run that waits for an approval is left to the loop below.
        if (i === 0) await Promise.race([run.result, new Promise((r) => setTimeout(r, 60_000))]);
      }
      // Escalated runs wait on a task token: approve each through the approval-callback bundle, with the
      // link from the email request-approval sent: the confirm page it shows (GET), then the POST it makes.
      const callback = fns.find((f) => f.handler === "approval-callback");
      const settle = Promise.all(executions.map((e) => e.run.result));
      for (let round = 0; round < 200; round++) {
        const done = await Promise.race([
          settle.then(() => true),
          new Promise<false>((r) => setTimeout(() => r(false), 250)),
        ]);
        if (done) break;
        const waiting = engine.pendingTasks();
        if (waiting.length === 0 || !callback) continue;
        const store = (await (await fetch(`${services.sesEndpoint}/store`)).json()) as Json;
        for (const token of JSON.stringify(store).match(/approvals\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g) ?? []) {
          const t = token.slice("approvals/".length);
          const claims = JSON.parse(Buffer.from(t.split(".")[0] ?? "", "base64url").toString()) as {
            a: string;
            d: string;
          };
          if (claims.d !== "approve" || decided.has(claims.a)) continue;
          decided.add(claims.a);
          const page = await invokeUrl(callback, functionUrlEvent("GET", `/approvals/${t}`));
          if (!page?.ok || (page.result as { statusCode?: number }).statusCode !== 200)
            problems.push(
              `${customer}: the confirm page of ${claims.a} from the callback bundle: ${JSON.stringify(page)}`,
            );
          const out = await invokeUrl(callback, functionUrlEvent("POST", `/approvals/${t}`));
          if (!out?.ok || (out.result as { statusCode?: number }).statusCode !== 200)
            problems.push(`${customer}: approving ${claims.a} through the callback bundle: ${JSON.stringify(out)}`);
        }
      }
      // A link that is not valid (its signature is not the key's), whether or not a run asked for an approval:
      // the callback answers it with the 403 page, traced like any other request.
      if (callback) {
        const forged = `${Buffer.from('{"a":"apr_forged","d":"approve"}').toString("base64url")}.c2lnbmF0dXJl`;
        const out = await invokeUrl(callback, functionUrlEvent("GET", `/approvals/${forged}`));
        if (!out?.ok || (out.result as { statusCode?: number }).statusCode !== 403)
          problems.push(`${customer}: a link that is not valid, through the callback bundle: ${JSON.stringify(out)}`);
        // A cold callback (no key cached) while Secrets Manager fails: the answer hono's error handler gave, a
        // 500 page, and the handler's subsegment a fault.
        const cold = await startBundle(callback, false);
        recorder.inject(callback.accessKeyId, "secretsmanager", faultFor("secretsmanager"));
        const failed = await invokeUrl(callback, functionUrlEvent("GET", `/approvals/${forged}`), {
          process: cold,
          fault: true,
        });
        recorder.inject(callback.accessKeyId, "secretsmanager", undefined);
        await cold.close();
        const answer = (failed?.ok ? failed.result : {}) as { statusCode?: number; body?: string };
        if (answer.statusCode !== 500 || answer.body !== "Internal Server Error")
          problems.push(`${customer}: the callback bundle with Secrets Manager failing: ${JSON.stringify(failed)}`);
      }
      log(`${customer}: ${executions.length} samples run in ${((Date.now() - phase) / 1000).toFixed(1)} s since start`);
      for (const { file, run } of executions) {
        const desc = engine.describeExecution(run.executionArn);
        const status = desc?.status ?? "?";
        if (status === "RUNNING") {
          problems.push(`${customer}/${file}: still running after the wait`);
          run.abort();
        }
        outcomes.push(
          `${customer}/${file}: ${status}${desc?.error ? ` ${desc.error}: ${(desc.cause ?? "").slice(0, 160)}` : ""}`,
        );
      }

      // Cost truth: every run's cost record (written by the Finalize or RecordFailure bundle from the
      // execution's history) must hold the transitions and invocations the engine itself counted.
      const ledger = new Ledger(dynamodb, deployment.tableName);
      // Every run of the samples (each record read once: the cost and outcome checks below).
      const sampleRuns = await ledger.listRuns();
      for (const run of sampleRuns) {
        const want = counted.get(run.executionId);
        const aws = run.cost?.aws;
        if (!want || !aws) continue;
        costRecordsChecked++;
        costUsd.push(aws.totalUsd);
        if (
          aws.source !== "history" ||
          aws.stateTransitions !== want.transitions ||
          aws.lambdaInvocations !== want.invocations
        )
          costMismatches.push(
            `${customer}/${run.runId}: cost record says ${aws.stateTransitions} transitions, ${aws.lambdaInvocations} invocations (${aws.source}); the execution made ${want.transitions} and ${want.invocations}`,
          );
        else
          log(
            `cost ${run.runId}: ${aws.stateTransitions} transitions, ${aws.lambdaInvocations} invocations (${aws.lambdaGbSeconds.toFixed(2)} GB-s), ${aws.dynamodbReadUnits}/${aws.dynamodbWriteUnits} DynamoDB RRU/WRU, ${aws.s3Requests} S3 requests, ${aws.logBytes} log bytes: $${aws.totalUsd.toFixed(6)}`,
          );
      }

      // Outcomes: each sample's run ends as samples/README.md says (the table test/local/sample-outcomes.test.ts
      // holds the sources to). Every approval is granted through the callback bundle here, so a sample the
      // README leaves awaiting approval must end saved with an approved approval, and the others with none.
      const runsByExecution = new Map(sampleRuns.filter((r) => !r.parentRunId).map((r) => [r.executionId, r]));
      for (const { file, run } of executions) {
        outcomesChecked++;
        const want = expected.get(`${customer}/${file}`);
        const got = runsByExecution.get(run.executionArn);
        const approved = (got?.decided ?? []).some((a) => a.status === "approved");
        const ended = got ? `${got.status}${approved ? " after an approval" : ""}` : "no run record";
        const wanted = want === "awaiting approval" ? "saved after an approval" : want;
        if (wanted === undefined) outcomeMismatches.push(`${customer}/${file}: samples/README.md gives no outcome`);
        else if (ended !== wanted)
          outcomeMismatches.push(
            `${customer}/${file}: ended ${ended}${got?.reason ? ` (${got.reason.slice(0, 120)})` : ""}; samples/README.md: ${want}`,
          );
      }

      // Outside any execution: the scheduled backlog check and the MCP endpoint.
      const backlog = fns.find((f) => f.handler === "approval-backlog");
      if (backlog) {
        const out = await live
          .get(backlog.logicalId)
          ?.invoke(
            { source: "aws.events", "detail-type": "Scheduled Event" },
            { traceHeader: newTraceHeader(false).header },
          );
        if (!out?.ok) problems.push(`${customer}: approval-backlog: ${JSON.stringify(out)}`);
      }
      const mcp = fns.find((f) => f.handler === "mcp-server");
      if (mcp) {
        const rpc = {
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "list_pending_approvals", arguments: {} },
        };
        // Sampled (its trace checked), then unsampled (it must send nothing).
        const sampled = await invokeUrl(mcp, functionUrlEvent("POST", "/mcp", JSON.stringify(rpc)));
        if (!sampled?.ok || (sampled.result as { statusCode?: number }).statusCode !== 200)
          problems.push(`${customer}: mcp-server: ${JSON.stringify(sampled)}`);
        const out = await live.get(mcp.logicalId)?.invoke(functionUrlEvent("POST", "/mcp", JSON.stringify(rpc)), {
          traceHeader: newTraceHeader(false).header,
        });
        if (!out?.ok) problems.push(`${customer}: mcp-server: ${JSON.stringify(out)}`);
      }

      // Retry in AWS: a run fails (Save's DynamoDB answers 500 through every retry), then an operator
      // calls retry_run on the MCP endpoint bundle; the new execution must reuse the stored turns and
      // end saved, the audit must name the caller's principal, and the same bytes again stay a duplicate.
      const save = fns.find((f) => f.handler === "save");
      const sample = samples.find((f) => f.endsWith("-saved.json"));
      if (save && mcp && sample) {
        const problem = await checkRetry({
          customer,
          bucket,
          // Another PO (a new number): the sample's own was saved by its run above.
          body: Buffer.from(
            readFileSync(join(sampleDir, sample), "utf8").replace(/"poNumber": "([^"]+)"/, '"poNumber": "$1-RETRY"'),
          ),
          engine,
          ledger,
          breakSave: (on) => recorder.inject(save.accessKeyId, "dynamodb", on ? faultFor("dynamodb") : undefined),
          callMcp: async (name, args) => {
            const rpc = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name, arguments: args } };
            const out = await invokeUrl(mcp, functionUrlEvent("POST", "/mcp", JSON.stringify(rpc)));
            return out?.ok
              ? toolResult(String((out.result as { body?: string }).body ?? ""))
              : { isError: true, text: JSON.stringify(out) };
          },
          put: (key, body) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body })).then(() => {}),
        });
        if (problem) problems.push(`${customer}: retry_run: ${problem}`);
        else retriesChecked++;
      }

      // Fault injection: each function the definition invokes, in a fresh process, with the event the run
      // gave it, while DynamoDB (and S3 for the document readers) answers 500. The errorType must be one
      // of the names its states' Retry/Catch match.
      const names = errorNamesByFunction(definition);
      for (const fn of fns) {
        const expected = names.get(deployment.functionArn(fn.logicalId));
        const event = firstEvents.get(fn.logicalId);
        if (!expected || expected.size === 0 || event === undefined) continue;
        // S3 only for ingest: it reads the document before anything else (a replayed extract call would not).
        for (const service of ["dynamodb", ...(fn.handler === "ingest" ? ["s3"] : [])]) {
          const p = await startBundle(fn, true);
          recorder.inject(fn.accessKeyId, service, faultFor(service));
          const out: Invocation = await p.invoke(event);
          recorder.inject(fn.accessKeyId, service, undefined);
          await p.close();
          errorNamesChecked += 1;
          const errorType = out.ok ? "(succeeded)" : out.errorType;
          if (!expected.has(errorType))
            mismatches.push(
              `${customer}/${fn.handler} with ${service} failing: errorType "${errorType}", expected one of ${[...expected].join(", ")}`,
            );
        }
      }
      // A cold start of each function no fault run measured (callback, backlog, MCP endpoint).
      for (const fn of fns.filter((f) => !initMs.has(f.handler))) await (await startBundle(fn, true)).close();
      // First and warm calls of the sample runs, from the calls no other call of the same process overlapped
      // (the samples run at once, so a process often serves several calls together).
      for (const fn of fns) {
        const [first, ...later] = live.get(fn.logicalId)?.invocations ?? [];
        if (first === undefined) continue;
        if (!first.overlapped) firstCallCpu.set(fn.handler, [...(firstCallCpu.get(fn.handler) ?? []), first.cpuMs]);
        else overlappedFirstCalls.add(fn.handler);
        const warm = later.filter((c) => !c.overlapped).map((c) => c.cpuMs);
        if (warm.length > 0) warmCallCpu.set(fn.handler, [...(warmCallCpu.get(fn.handler) ?? []), median(warm)]);
      }
      for (const p of live.values()) await p.close();
      engine.abortAll();
    }

    // Every recorded call against the calling function's role policy from the template.
    const byKey = new Map(functions.map((f) => [f.accessKeyId, f]));
    const denied: string[] = [];
    const seen = new Map<string, string>();
    for (const call of recorder.calls) {
      const fn = byKey.get(call.fn);
      if (!fn?.roleLogicalId) {
        denied.push(`${call.fn}: ${call.action} ${call.resource} (unknown caller)`);
        continue;
      }
      const key = `${call.fn} ${call.action} ${call.resource}`;
      if (!seen.has(key)) seen.set(key, await evaluate(deployments.get(fn.stack), fn, call));
      const verdict = seen.get(key);
      if (verdict !== "Allowed")
        denied.push(`${fn.customer}/${fn.handler}: ${call.action} on ${call.resource}: ${verdict}`);
    }

    // UDP datagrams are sent as each subsegment closes; the last ones may still be in flight, for longer on
    // a loaded machine: checked after 300 ms, then again every 100 ms until nothing is missing, for at most
    // 10 s, then reported (a document that should not have been sent is looked for during the first 300 ms).
    await new Promise((r) => setTimeout(r, 300));
    let traces = checkTraces(traced, daemon.docs, recorder.calls, requiredTraces);
    for (let waited = 0; traces.problems.length > 0 && waited < 10_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      traces = checkTraces(traced, daemon.docs, recorder.calls, requiredTraces);
    }
    const traceProblems = [...traces.problems, ...daemon.malformed.map((m) => `malformed datagram: ${m}`)];
    if (traces.checked === 0) traceProblems.push("no sampled invocation ran alone in its process: nothing checked");
    const coldStartMs = Object.fromEntries([...initMs].map(([fn, xs]) => [fn, median(xs)]));
    for (const line of outcomes) log(`run ${line}`);
    for (const u of recorder.unmapped) log(`unmapped request: ${u}`);
    for (const d of new Set(denied)) log(`DENIED ${d}`);
    for (const m of mismatches) log(`MISMATCH ${m}`);
    for (const p of problems) log(`PROBLEM ${p}`);
    for (const c of costMismatches) log(`COST ${c}`);
    for (const o of outcomeMismatches) log(`OUTCOME ${o}`);
    for (const t of traceProblems) log(`TRACE ${t}`);
    for (const label of requiredTraces)
      log(`traced ${label}: ${traced.filter((i) => i.label === label && !i.overlapped).length} invocations checked`);
    const summary = {
      bundlesRun,
      awsCallsChecked: recorder.calls.length,
      denied: denied.length,
      errorNamesChecked,
      errorNameMismatches: mismatches.length,
      costRecordsChecked,
      costMismatches: costMismatches.length,
      retriesChecked,
      outcomesChecked,
      outcomeMismatches: outcomeMismatches.length,
      tracedInvocations: traces.checked,
      subsegmentsChecked: traces.subsegments,
      traceProblems: traceProblems.length,
      medianRunAwsUsd: Number(
        (costUsd.length ? ([...costUsd].sort((a, b) => a - b)[Math.floor((costUsd.length - 1) / 2)] ?? 0) : 0).toFixed(
          6,
        ),
      ),
      coldStartMs,
      // What a cold container's first call costs beyond init (the chunks it imports on first use, first
      // compilation of its code paths) versus a warm call: CPU ms, process-wide while the call ran.
      firstCallCpuMs: Object.fromEntries([...firstCallCpu].map(([fn, xs]) => [fn, median(xs)])),
      warmCallCpuMs: Object.fromEntries([...warmCallCpu].map(([fn, xs]) => [fn, median(xs)])),
      firstCallOverlapped: [...overlappedFirstCalls].filter((fn) => !firstCallCpu.has(fn)).sort(),
    };
    log(`${((Date.now() - started) / 1000).toFixed(1)} s in all`);
    console.log(args.json ? JSON.stringify(summary) : JSON.stringify(summary, null, 2));
    return denied.length > 0 ||
      mismatches.length > 0 ||
      problems.length > 0 ||
      costMismatches.length > 0 ||
      costRecordsChecked === 0 ||
      outcomeMismatches.length > 0 ||
      outcomesChecked === 0 ||
      traceProblems.length > 0 ||
      recorder.unmapped.length > 0
      ? 1
      : 0;
  } finally {
    for (const p of processes) await p.close().catch(() => {});
    sfnServer?.close();
    await recorder.close();
    await services.close();
    await daemon.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The text of a tools/call answer (the stateless endpoint answers JSON or one SSE message). */
function toolResult(body: string): { isError: boolean; text: string } {
  const json = body.trim().startsWith("{")
    ? body
    : (body
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6) ?? "{}");
  const res = (JSON.parse(json) as { result?: { isError?: boolean; content?: { text?: string }[] }; error?: unknown })
    .result;
  return { isError: res?.isError === true || !res, text: res?.content?.[0]?.text ?? json };
}

async function settled(engine: LocalEngine, executionArn: string) {
  for (let i = 0; i < 600; i++) {
    const d = engine.describeExecution(executionArn);
    if (d && d.status !== "RUNNING") return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  return engine.describeExecution(executionArn);
}

/** The retry scenario of main(); returns what went wrong, or undefined. */
async function checkRetry(c: {
  customer: string;
  bucket: string;
  body: Buffer;
  engine: LocalEngine;
  ledger: Ledger;
  breakSave(on: boolean): void;
  callMcp(name: string, args: Record<string, Json>): Promise<{ isError: boolean; text: string }>;
  put(key: string, body: Buffer): Promise<void>;
}): Promise<string | undefined> {
  const event = (key: string, version: string) => ({
    version: "0",
    "detail-type": "Object Created",
    source: "aws.s3",
    account: ACCOUNT,
    region: REGION,
    resources: [`arn:aws:s3:::${c.bucket}`],
    detail: { bucket: { name: c.bucket }, object: { key, size: c.body.byteLength, "version-id": version } },
  });
  await c.put("incoming/retry-check.json", c.body);
  c.breakSave(true);
  const first = c.engine.startExecution({
    name: `deployed-${c.customer}-retry-check`,
    input: event("incoming/retry-check.json", "vr1"),
  });
  const failedRun = await first.result.finally(() => c.breakSave(false));
  const runs = await c.ledger.listRuns(["failed"]);
  const run = runs.find((r) => r.executionId === first.executionArn);
  if (failedRun.status !== "FAILED" || !run)
    return `the run with Save failing did not end failed (${failedRun.status})`;
  const turnsBefore = (await c.ledger.getTurns(run.runId)).length;

  const answer = await c.callMcp("retry_run", { runId: run.runId });
  if (answer.isError) return `the tool refused: ${answer.text.slice(0, 300)}`;
  const retried = JSON.parse(answer.text) as { executionId: string; turnsReused: number };
  if (retried.turnsReused !== turnsBefore || turnsBefore === 0)
    return `reused ${retried.turnsReused} turns of ${turnsBefore} stored`;
  const second = await settled(c.engine, retried.executionId);
  const after = await c.ledger.getRun(run.runId);
  if (second?.status !== "SUCCEEDED" || after?.status !== "saved")
    return `the retried execution ended ${second?.status ?? "unstarted"}, the run ${after?.status}: ${after?.reason ?? ""}`;
  const audit = (await c.ledger.getAudit(run.runId)).filter((a) => a.action === "run.retried");
  const principal = `operator:mcp:arn:aws:iam::${ACCOUNT}:user/operator`;
  if (audit.length !== 1 || audit[0]?.actor !== principal)
    return `audit has ${audit.map((a) => a.actor).join(", ") || "no run.retried"}, expected one by ${principal}`;
  if (after.cost?.aws.source !== "history") return "the retried run's cost record is not from its execution's history";

  // The same bytes uploaded again: a duplicate, the run untouched.
  await c.put("incoming/retry-check-again.json", c.body);
  const again = await c.engine.startExecution({
    name: `deployed-${c.customer}-retry-again`,
    input: event("incoming/retry-check-again.json", "vr2"),
  }).result;
  const status = (again.output as { run?: { status?: string } } | undefined)?.run?.status;
  const still = await c.ledger.getRun(run.runId);
  if (status !== "duplicate" || still?.status !== "saved" || still.executionId !== retried.executionId)
    return `the same bytes again gave ${again.status}/${status}; the run is ${still?.status}`;
  return undefined;
}

function faultFor(service: string) {
  if (service === "secretsmanager")
    return {
      status: 500,
      contentType: "application/x-amz-json-1.1",
      body: JSON.stringify({ __type: "InternalServiceError", message: "injected" }),
    };
  return service === "s3"
    ? {
        status: 503,
        contentType: "application/xml",
        body: "<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>",
      }
    : {
        status: 500,
        contentType: "application/x-amz-json-1.0",
        body: JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "injected" }),
      };
}

/** A Lambda Function URL event (payload format 2.0), as the approval links and MCP clients produce. */
function functionUrlEvent(method: string, path: string, body?: string) {
  return {
    version: "2.0",
    rawPath: path,
    rawQueryString: "",
    headers: {
      "content-type": body ? "application/json" : "application/x-www-form-urlencoded",
      accept: "application/json, text/event-stream",
    },
    requestContext: {
      domainName: "local.lambda-url.us-east-1.on.aws",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "check-deployed" },
      authorizer: { iam: { userArn: `arn:aws:iam::${ACCOUNT}:user/operator` } },
    },
    body: body ?? "",
    isBase64Encoded: false,
  };
}

/**
 * The service reference lists no resource types for the Step Functions task-token actions
 * (SendTaskSuccess/Failure/Heartbeat), but AWS authorizes them against the state machine the token
 * belongs to (its AccessDenied names that ARN, and a grant on it works): those are evaluated on that
 * ARN with the evaluator's unvalidated entry point; everything else goes through full validation.
 */
const TOKEN_ACTIONS = new Set(["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]);

async function evaluate(
  deployment: LocalDeployment | undefined,
  fn: FunctionUnderTest,
  call: AwsCall,
): Promise<string> {
  if (!deployment || !fn.roleLogicalId) return "no role";
  const simulation = {
    request: {
      principal: `arn:aws:sts::${ACCOUNT}:assumed-role/${deployment.ref(fn.roleLogicalId)}/${deployment.ref(fn.logicalId)}`,
      action: call.action,
      resource: { resource: call.resource, accountId: ACCOUNT },
      contextVariables: {},
    },
    identityPolicies: deployment.policiesOfRole(fn.roleLogicalId),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (TOKEN_ACTIONS.has(call.action)) return runUnsafeSimulation(simulation, {});
  const result = await runSimulation(simulation, {});
  if (result.resultType === "error") return `evaluator error: ${JSON.stringify(result.errors).slice(0, 300)}`;
  return result.overallResult;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);

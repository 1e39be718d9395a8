import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LANES, ROLES, TOOLS, type ToolName } from "../../lambdas/shared/catalogue.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { BundleProcess, bundleLayout, HANDLER_OF_ID, synthesizedFunctions } from "../../scripts/deployed/bundles.js";
import { LocalDeployment, REGION } from "../../scripts/deployed/template.js";

/** Issue 11's limit on what a cold start loads. */
const MAX_INDEX_BYTES = 1.5 * 1024 * 1024;

/** The functions that send mail (the approval requests, reminders and decisions); no other bundle carries SES. */
const MAIL_SENDERS = new Set(["request-approval", "approval-callback", "approval-timeout"]);

/**
 * The SDK clients each function loads at init, besides DynamoDB (the ledger: every function, every call):
 * those its every call uses (so its cold start pays for them in the init figure, not hidden in the first
 * call). Every other client it can use is a chunk read on first use.
 */
const CLIENTS_AT_INIT: Record<string, readonly string[]> = {
  ingest: ["S3Client"], // reads the document
  extract: ["S3Client"], // reads the document (the model key only for a scan or an image: on first use)
  save: ["S3Client"], // writes the order
  orchestrate: ["SecretsManagerClient"], // the model key
  finalize: ["SFNClient"], // the execution's history (the run's cost)
  "record-failure": ["SFNClient"],
  // Mails and signs links on every call; the task token is sent on first use.
  "request-approval": ["SESv2Client", "SecretsManagerClient"],
  // Checks a link's signature on every call; Step Functions only for a POST decision, SES never.
  "approval-callback": ["SecretsManagerClient"],
  // The clock's first wait and escalations need no client: all on first use.
  "approval-timeout": [],
  // mcp-server: none; each request is one MCP message, and only submit_document uploads (S3) and only
  // approve, reject and retry_run reach Step Functions.
};
const LAZY_CLIENTS = ["S3Client", "SFNClient", "SecretsManagerClient", "SESv2Client"] as const;

/**
 * Text that only the module defining a class holds and that minification keeps (the bundles keep no class
 * names): an SDK client's default `serviceId`, a library's own error message. The library's own code, not
 * a mere mention of the class name by ours (a lazy import, a log line).
 */
const MARKERS = {
  DynamoDBClient: 'serviceId??"DynamoDB"',
  S3Client: 'serviceId??"S3"',
  SFNClient: 'serviceId??"SFN"',
  SecretsManagerClient: 'serviceId??"Secrets Manager"',
  SESv2Client: 'serviceId??"SESv2"',
  STSClient: 'serviceId??"STS"',
  SSOOIDCClient: 'serviceId??"SSO OIDC"',
  SSOClient: 'serviceId??"SSO"',
  BaseAnthropic: "running in a browser-like environment",
  StreamableHTTPClientTransport: "StreamableHTTPClientTransport already started",
  PostalMime: "create a new PostalMime object",
  XMLParser: "XML data is accepted in String or Bytes",
  GptEncoding: "Harmony chat format requires dedicated special tokens",
  // PDF.js ships prebuilt by unpdf, its class names kept.
  PDFPageProxy: "PDFPageProxy",
} as const;
type Marked = keyof typeof MARKERS;
const defines = (code: string, cls: Marked) => code.includes(MARKERS[cls]);

/** The handler folder of the Lambda that runs a tool, from the catalogue (mounted `<server>.<tool>` → McpTool). */
function laneHandlerOf(name: string): string {
  const lane = name in TOOLS ? LANES[TOOLS[name as ToolName].lane] : LANES.mcp;
  return "role" in lane ? ROLES[lane.role].handler : "(none)";
}

/** Every name in a `Retry`/`Catch` `ErrorEquals` of a state machine definition. */
function errorEqualsNames(definition: unknown): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      const equals = (node as { ErrorEquals?: unknown }).ErrorEquals;
      if (Array.isArray(equals)) for (const n of equals) names.add(String(n));
      Object.values(node).forEach(walk);
    }
  };
  walk(definition);
  return names;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("lambda bundling", () => {
  /** handler name → bundle directory, filled by the bundling test. */
  const bundles = new Map<string, string>();
  /** The cloud assembly the first test synthesizes; check:deployed below runs on it (one synth, not two). */
  let outdir = "";

  // The one test that really bundles: every other infra test skips it with aws:cdk:bundling-stacks = [].
  // The app runs in a child process, exactly as `cdk synth` runs it, so this worker stays responsive.
  it("bundles every handler with the local esbuild, without Docker, and ships the customer config", async () => {
    // Prepare: any attempt to use Docker fails loudly.
    outdir = mkdtempSync(join(tmpdir(), "po-agent-cdk-"));
    const stackName = "PoAgent-acme";

    // Act
    await promisify(execFile)("npx", ["tsx", "bin/po-agent.ts"], {
      env: {
        ...process.env,
        CDK_DOCKER: "/nonexistent/docker-must-not-run",
        CDK_OUTDIR: outdir,
        // As the CLI does: bundle only the stacks asked for (both customers: check:deployed below runs
        // each one's samples through its own bundles), and record construct paths (they name the handlers).
        CDK_CONTEXT_JSON: JSON.stringify({
          "aws:cdk:bundling-stacks": [stackName, "PoAgent-customer37"],
          "aws:cdk:enable-path-metadata": true,
        }),
      },
      maxBuffer: 64 * 1024 * 1024,
    });

    // Assess: each stack's bundles, customer37's too (check:deployed below runs them, and it cannot tell a
    // run that followed another config: it checks grants, error names and costs, not outcomes).
    for (const name of ["acme", "customer37"]) {
      const customer = deployedCustomer(loadCustomerFile(`customers/${name}.yaml`));
      const fns = synthesizedFunctions(outdir, `PoAgent-${name}`).functions;
      expect(fns).toHaveLength(14);
      for (const fn of fns) {
        const handler = HANDLER_OF_ID[fn.constructPath.split("/").at(-2) ?? ""] ?? fn.constructPath;
        const dir = fn.bundleDir;
        expect(existsSync(join(dir, "index.mjs")), handler).toBe(true);
        expect(readFileSync(join(dir, "index.mjs"), "utf8"), handler).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
        // The deployed config: local-only MCP servers (acme's sample ERP) are left out.
        expect(JSON.parse(readFileSync(join(dir, "customer.json"), "utf8")), `${name}/${handler}`).toEqual(customer);
        if (`PoAgent-${name}` === stackName) bundles.set(handler, dir);
      }
    }
  }, 600_000);

  // The cold-start budget (issue 11): what Lambda loads at init is index.mjs and the chunks it imports
  // statically; every other chunk is read by an import() on first use, the lazy dependencies under
  // node_modules/ likewise.
  it("keeps what each bundle loads at init under 1.5 MB, with only the code its role runs on every call", () => {
    expect(bundles.size).toBe(14);
    for (const [name, dir] of bundles) {
      const layout = bundleLayout(dir);
      const read = (files: readonly string[]) => files.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
      const init = read(layout.initFiles);
      const all = read([...layout.initFiles, ...layout.lazyFiles]);
      expect(statSync(join(dir, "index.mjs")).size, name).toBeLessThanOrEqual(MAX_INDEX_BYTES);
      expect(layout.initBytes, `${name} loads ${layout.initBytes} bytes at init`).toBeLessThanOrEqual(MAX_INDEX_BYTES);
      // The AWS SDK is bundled (the runtime's copy is never used); at init only the clients every call uses.
      expect(defines(init, "DynamoDBClient"), `${name} bundles the SDK`).toBe(true);
      for (const cls of LAZY_CLIENTS)
        expect(defines(init, cls), `${name} loads ${cls} at init`).toBe((CLIENTS_AT_INIT[name] ?? []).includes(cls));
      // Mail: SES only in the approval functions (approval-deps.ts), at init only where every call mails.
      expect(defines(all, "SESv2Client"), `${name} carries SES`).toBe(MAIL_SENDERS.has(name));
      // Credentials are environment variables in Lambda: the SSO/STS/ini providers of the default chain
      // are chunks that are never read.
      for (const cls of ["STSClient", "SSOOIDCClient", "SSOClient"] as const)
        expect(defines(init, cls), `${name} loads ${cls} at init`).toBe(false);
      // The Anthropic SDK: only where the model is called, and only on the first call that needs it
      // (the reference model and replayed turns never do).
      expect(defines(init, "BaseAnthropic"), `${name} loads the Anthropic SDK at init`).toBe(false);
      expect(defines(all, "BaseAnthropic"), `${name} carries the Anthropic SDK`).toBe(
        name === "orchestrate" || name === "extract",
      );
      // The MCP client SDK at init only in McpTool, whose every call is an MCP call.
      expect(defines(init, "StreamableHTTPClientTransport"), `${name} loads the MCP client at init`).toBe(
        name === "mcp-tool",
      );
      // Only the document readers hold the parsers; PDF.js, the tokenizer and Cedar stay out of every chunk.
      expect(defines(all, "PostalMime"), `${name} bundles postal-mime`).toBe(name === "extract" || name === "ingest");
      for (const cls of ["GptEncoding", "PDFPageProxy"] as const)
        expect(defines(all, cls), `${name} bundles ${cls}`).toBe(false);
      expect(all.includes("cedar_wasm_bg.wasm"), `${name} bundles cedar_wasm_bg.wasm`).toBe(false);
    }
    const orchestrate = bundleLayout(bundles.get("orchestrate") ?? "");
    const code = orchestrate.initFiles.map((f) => readFileSync(join(bundles.get("orchestrate") ?? "", f), "utf8"));
    for (const marker of ["XMLParser", "PostalMime"] as const)
      expect(
        code.some((c) => defines(c, marker)),
        `orchestrate loads ${marker}`,
      ).toBe(false);
    // Each marker matches the code it stands for, else the checks above that it is absent prove nothing.
    const codeOf = (name: string, files: (l: ReturnType<typeof bundleLayout>) => readonly string[]) => {
      const dir = bundles.get(name) ?? "";
      return files(bundleLayout(dir))
        .map((f) => readFileSync(join(dir, f), "utf8"))
        .join("\n");
    };
    const ingestAll = codeOf("ingest", (l) => [...l.initFiles, ...l.lazyFiles]);
    for (const cls of ["STSClient", "SSOOIDCClient", "SSOClient"] as const)
      expect(defines(ingestAll, cls), `ingest's credential-provider chunks define ${cls}`).toBe(true);
    // fast-xml-parser: the XML readers' (a chunk read when an XML document is met); the S3 client parses without it.
    expect(defines(ingestAll, "XMLParser"), "ingest's XML readers define XMLParser").toBe(true);
    expect(
      defines(
        codeOf("extract", () => ["node_modules/gpt-tokenizer/encoding/cl100k_base.js"]),
        "GptEncoding",
      ),
    ).toBe(true);
    expect(
      defines(
        codeOf("extract", () => ["node_modules/unpdf/dist/pdfjs.mjs"]),
        "PDFPageProxy",
      ),
    ).toBe(true);
    // Shipped where the code needs them, never elsewhere.
    const shipped = (name: string, path: string) => existsSync(join(bundles.get(name) ?? "", "node_modules", path));
    expect(shipped("extract", "unpdf/dist/pdfjs.mjs")).toBe(true);
    expect(shipped("extract", "gpt-tokenizer/encoding/cl100k_base.js")).toBe(true);
    expect(shipped("save", "@cedar-policy/cedar-wasm/nodejs/cedar_wasm_bg.wasm")).toBe(true);
    expect(shipped("validate", "unpdf/dist/pdfjs.mjs")).toBe(false);
    expect(shipped("approval-backlog", "@cedar-policy/cedar-wasm/nodejs/cedar_wasm_bg.wasm")).toBe(false);
    // Nothing else under node_modules/: no @aws-sdk for the runtime to fill in.
    for (const [name, dir] of bundles) {
      const modules = existsSync(join(dir, "node_modules")) ? readdirSync(join(dir, "node_modules")) : [];
      for (const m of modules)
        expect(["unpdf", "@cedar-policy", "gpt-tokenizer"], `${name}: node_modules/${m}`).toContain(m);
    }
  });

  it("runs POs through the bundled handlers, as Lambda would, against the emulated services", async () => {
    // Prepare: the bundles from the test above, as they are: each carries everything it imports (the AWS
    // SDK included), and the assembly lies outside the repository, so nothing resolves from its node_modules.
    expect(bundles.size).toBe(14);
    const customer = loadCustomerFile("customers/acme.yaml");
    const dataDir = mkdtempSync(join(tmpdir(), "po-agent-bundled-"));
    const stack = await LocalStack.start({ dataDir, customers: [customer] });
    try {
      const bucket = bucketFor(customer.name);
      vi.stubEnv("ANTHROPIC_API_KEY", "");
      vi.stubEnv("MODEL_API_KEY_SECRET_ARN", "");
      for (const [k, v] of Object.entries({
        LEDGER_TABLE: "po-agent-ledger",
        DOCUMENT_BUCKET: bucket,
        CUSTOMER: customer.name,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        AWS_ENDPOINT_URL_S3: stack.services.s3Endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: stack.services.dynamodbEndpoint,
        POWERTOOLS_LOG_LEVEL: "ERROR",
        POWERTOOLS_METRICS_DISABLED: "true",
      })) {
        vi.stubEnv(k, v);
      }
      const load = async (name: string) => {
        const dir = bundles.get(name) ?? "";
        vi.stubEnv("LAMBDA_TASK_ROOT", dir);
        const mod = (await import(join(dir, "index.mjs"))) as { handler: (event: unknown) => Promise<unknown> };
        return mod.handler;
      };
      const ingest = await load("ingest");
      const orchestrate = await load("orchestrate");
      const tools: Record<string, (event: unknown) => Promise<unknown>> = {};
      for (const role of Object.values(ROLES).filter((r) => r.group === "tools"))
        tools[role.handler] = await load(role.handler);
      const finalize = await load("finalize");

      // Act: what the state machine does, one Task at a time, for a JSON PO, a PDF (PDF.js, loaded
      // lazily) and an email thread (compressed with the lazily loaded tokenizer).
      const runs: { sample: string; runId: string; result: unknown }[] = [];
      for (const sample of [
        "01-packaging-saved.json",
        "08-pdf-text-layer-saved.pdf",
        "09-email-thread-csv-attachment-saved.eml",
      ]) {
        const key = `manual/${sample}`;
        await stack.s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(`samples/acme/${sample}`) }),
        );
        const { runId } = (await ingest({ bucket, key, executionId: `bundled-${sample}` })) as { runId: string };
        let step = (await orchestrate({ runId })) as { type: string; calls?: { toolUseId: string; name: string }[] };
        for (let i = 0; step.type === "tools" && i < 10; i++) {
          // Each call goes to its lane's Lambda, as the state machine routes it (mounted tools to McpTool).
          await Promise.all(
            (step.calls ?? []).map((call) => {
              const fn = tools[laneHandlerOf(call.name)];
              if (!fn) throw new Error(`no bundle runs ${call.name}`);
              return fn({ runId, call });
            }),
          );
          step = (await orchestrate({ runId })) as typeof step;
        }
        runs.push({ sample, runId, result: await finalize({ runId, step }) });
      }
      const runId = runs[0]?.runId ?? "";
      // The scheduled backlog check counts only this customer's pending approvals.
      for (const [approvalId, who] of [
        ["bundled-approval-1", customer.name],
        ["bundled-approval-other", "someone-else"],
      ] as const) {
        await stack.ledger.putApproval({
          approvalId,
          runId,
          customer: who,
          turn: 1,
          call: { toolUseId: "toolu_1", name: "save", input: {} },
          callHash: "hash",
          reason: "over the auto-approve limit",
          rule: "tier:default",
          approvers: ["alice"],
          summary: { poNumber: "ACM-PO-1", supplierName: "Supplier", amount: "1.00" },
          status: "pending",
          emailedTo: [],
          usedNonces: [],
        });
      }
      const backlog = await (await load("approval-backlog"))({
        source: "aws.events",
        "detail-type": "Scheduled Event",
      });

      // Assess: each run saved its order (the effect), with one model call per stored turn.
      for (const run of runs) {
        expect(run.result, `${run.sample}: ${JSON.stringify(run.result)}`).toMatchObject({ outcome: "saved" });
        const record = await stack.ledger.getRun(run.runId);
        expect(record?.status, run.sample).toBe("saved");
        expect(record?.counters.modelCalls, run.sample).toBe((await stack.ledger.getTurns(run.runId)).length);
        expect(record?.poNumber, run.sample).toBeDefined();
        expect(await stack.ledger.getOrder(customer.name, record?.poNumber ?? ""), run.sample).toBeDefined();
      }
      expect(await stack.ledger.getOrder(customer.name, "ACM-PO-22817")).toBeDefined();
      expect(backlog).toMatchObject({ pending: 1 });
      expect((backlog as { oldestAgeSeconds: number }).oldestAgeSeconds).toBeLessThan(600);
    } finally {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 600_000);
  // Error names are a contract and the bundles keep no class names (minified without keepNames): the
  // minified code itself must throw the names the state machine and the failure records read.
  it("throws, from the minified bundles, the error names the state machine's Retry/Catch match", async () => {
    // Prepare: the names the definition matches besides the runtime's (States.*, Lambda.*): each needs a case here.
    const definition: unknown = JSON.parse(readFileSync("statemachines/agent.asl.json", "utf8"));
    const ours = [...errorEqualsNames(definition)].filter((n) => !/^(States|Lambda)\./.test(n));
    expect(ours).toEqual(["TransientError"]);
    const states = (definition as { States: Record<string, { Parameters?: { FunctionName?: string } }> }).States;
    const turn = Object.values(states).find((st) => st.Parameters?.FunctionName?.includes("OrchestrateFunctionArn"));
    expect(turn, "the state that invokes Orchestrate").toBeDefined();
    expect(errorEqualsNames((turn as { Retry?: unknown }).Retry), "Orchestrate's Retry").toContain("TransientError");
    const stackName = "PoAgent-acme";
    const { template, functions } = synthesizedFunctions(outdir, stackName);
    const deployment = new LocalDeployment(stackName, template, "bundled-names-bucket");
    // A DynamoDB that answers every request with a 500, as it does in an outage.
    const dynamodb = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(500, { "content-type": "application/x-amz-json-1.0" });
        res.end(
          JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "injected" }),
        );
      });
    });
    await new Promise<void>((resolve) => dynamodb.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(dynamodb.address() as AddressInfo).port}`;
    const envOf = (fn: (typeof functions)[number]): Record<string, string> => ({
      ...deployment.environmentOf(fn.environment as Parameters<LocalDeployment["environmentOf"]>[0]),
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      MODEL_API_KEY_SECRET_ARN: "",
      POWERTOOLS_LOG_LEVEL: "CRITICAL",
      POWERTOOLS_METRICS_DISABLED: "true",
    });
    const initErrors: { fn: string; wrongCustomer?: string; noTable?: string }[] = [];
    let orchestrate: Awaited<ReturnType<BundleProcess["invoke"]>> | undefined;
    try {
      // Act: every bundle started with another customer's name (its bundled config then disagrees) and
      // without its table's name; Orchestrate asked to take a turn while DynamoDB fails.
      for (const fn of functions) {
        const name = HANDLER_OF_ID[fn.constructPath.split("/").at(-2) ?? ""] ?? fn.logicalId;
        const env = envOf(fn);
        const wrongCustomer = await BundleProcess.start(fn.bundleDir, { ...env, CUSTOMER: "someone-else" });
        await wrongCustomer.close();
        const { LEDGER_TABLE: _table, ...withoutTable } = env;
        const noTable = await BundleProcess.start(fn.bundleDir, withoutTable);
        await noTable.close();
        initErrors.push({
          fn: name,
          wrongCustomer: wrongCustomer.initError?.errorType,
          noTable: noTable.initError?.errorType,
        });
      }
      const fn = functions.find((f) => HANDLER_OF_ID[f.constructPath.split("/").at(-2) ?? ""] === "orchestrate");
      if (!fn) throw new Error("no Orchestrate function in the template");
      const p = await BundleProcess.start(fn.bundleDir, envOf(fn));
      orchestrate = await p.invoke({ runId: "run-during-an-outage" });
      await p.close();
    } finally {
      dynamodb.close();
    }

    // Assess: the state machine retries Orchestrate's outage; a bad config or environment is reported by name.
    expect(orchestrate).toMatchObject({ ok: false, errorType: "TransientError" });
    expect(initErrors).toHaveLength(14);
    for (const e of initErrors) expect(e).toEqual({ fn: e.fn, wrongCustomer: "ConfigError", noTable: "EnvError" });
  }, 300_000);

  /**
   * `npm run check:deployed` inside `npm test`, so a grant or an error name can never drift again:
   * on the assembly synthesized above (`--reuse`), it runs both customers' samples through their
   * stacks' bundles (each customer's config asks for different grants: MCP servers, approval chains) and
   * fails on any denied AWS call, error-name mismatch, cost record that differs from its execution's
   * events, or a failed retry_run scenario.
   */
  it("check:deployed: both customers' samples through their bundles, no denied call, no error-name, cost or outcome mismatch", async () => {
    expect(existsSync(join(outdir, "manifest.json"))).toBe(true);
    const { stdout } = await promisify(execFile)(
      "npx",
      ["tsx", "scripts/check-deployed.ts", "--json", "--customers", "acme,customer37", "--reuse", "--out", outdir],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      },
    ).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`check:deployed failed:\n${err.stderr ?? ""}\n${err.stdout ?? ""}`);
    });
    const last = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    expect(last).toMatchObject({
      bundlesRun: 28,
      denied: 0,
      errorNameMismatches: 0,
      costMismatches: 0,
      outcomeMismatches: 0,
    });
    // every sample of both customers ended as samples/README.md says (acme 9, customer37 12)
    expect(last.outcomesChecked).toBe(21);
    // every sample's cost record equals its execution's counts; retry_run resumed a failed run on the bundles
    expect(Number(last.costRecordsChecked)).toBeGreaterThanOrEqual(18);
    expect(last.retriesChecked).toBe(1);
    expect(Number(last.awsCallsChecked)).toBeGreaterThan(200);
    expect(Number(last.errorNamesChecked)).toBeGreaterThanOrEqual(20);
  }, 900_000);
});

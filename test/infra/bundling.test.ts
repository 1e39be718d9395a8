import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LANES, ROLES, TOOLS, type ToolName } from "../../lambdas/shared/catalogue.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { deployedCustomer } from "../../lib/deploy-checks.js";
import { bucketFor, LocalStack } from "../../local/stack.js";
import { bundleLayout, HANDLER_OF_ID, synthesizedFunctions } from "../../scripts/deployed/bundles.js";

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
  "request-approval": ["SESv2Client", "SFNClient", "SecretsManagerClient"], // mail, the token, the signing key
  "approval-callback": ["SESv2Client", "SFNClient", "SecretsManagerClient"],
  "approval-timeout": ["SESv2Client", "SFNClient", "SecretsManagerClient"],
  // mcp-server: none; each request is one MCP message, and only submit_document uploads (S3) and only
  // approve, reject and retry_run reach Step Functions.
};
const LAZY_CLIENTS = ["S3Client", "SFNClient", "SecretsManagerClient", "SESv2Client"];

/**
 * A class the bundle defines, by the name keepNames registers for it (`(this,"Name")` in a static
 * block): the library's own code, not a mere mention of the name by ours.
 */
const defines = (code: string, className: string) => code.includes(`(this,"${className}")`);

/** The handler folder of the Lambda that runs a tool, from the catalogue (mounted `<server>.<tool>` → McpTool). */
function laneHandlerOf(name: string): string {
  const lane = name in TOOLS ? LANES[TOOLS[name as ToolName].lane] : LANES.mcp;
  return "role" in lane ? ROLES[lane.role].handler : "(none)";
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
        // As the CLI does: bundle only this stack, and record construct paths (they name the handlers).
        CDK_CONTEXT_JSON: JSON.stringify({
          "aws:cdk:bundling-stacks": [stackName],
          "aws:cdk:enable-path-metadata": true,
        }),
      },
      maxBuffer: 64 * 1024 * 1024,
    });

    // Assess
    const customer = deployedCustomer(loadCustomerFile("customers/acme.yaml"));
    const fns = synthesizedFunctions(outdir, stackName).functions;
    expect(fns).toHaveLength(14);
    for (const fn of fns) {
      const handler = HANDLER_OF_ID[fn.constructPath.split("/").at(-2) ?? ""] ?? fn.constructPath;
      const dir = fn.bundleDir;
      expect(existsSync(join(dir, "index.mjs")), handler).toBe(true);
      expect(readFileSync(join(dir, "index.mjs"), "utf8"), handler).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
      // The deployed config: local-only MCP servers (acme's sample ERP) are left out.
      expect(JSON.parse(readFileSync(join(dir, "customer.json"), "utf8")), handler).toEqual(customer);
      bundles.set(handler, dir);
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
      // Mail: SES only in the functions that send it, and there at init (every call of theirs sends).
      expect(defines(all, "SESv2Client"), `${name} carries SES`).toBe(MAIL_SENDERS.has(name));
      // Credentials are environment variables in Lambda: the SSO/STS/ini providers of the default chain
      // are chunks that are never read.
      for (const cls of ["STSClient", "SSOOIDCClient", "SSOClient"])
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
      expect(all.includes("PostalMime"), `${name} bundles postal-mime`).toBe(name === "extract" || name === "ingest");
      for (const marker of ["GptEncoding", "PDFPageProxy", "cedar_wasm_bg.wasm"])
        expect(all.includes(marker), `${name} bundles ${marker}`).toBe(false);
    }
    const orchestrate = bundleLayout(bundles.get("orchestrate") ?? "");
    const code = orchestrate.initFiles.map((f) => readFileSync(join(bundles.get("orchestrate") ?? "", f), "utf8"));
    for (const marker of ["XMLParser", "PostalMime"])
      expect(
        code.some((c) => c.includes(marker)),
        `orchestrate loads ${marker}`,
      ).toBe(false);
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
  /**
   * `npm run check:deployed` inside `npm test`, so a grant or an error name can never drift again:
   * on the assembly synthesized above (`--reuse`), it runs acme's samples through the bundles and
   * fails on any denied AWS call, error-name mismatch, cost record that differs from its execution's
   * events, or a failed retry_run scenario.
   */
  it("check:deployed: acme's samples through these bundles, no denied call, no error-name or cost mismatch", async () => {
    expect(existsSync(join(outdir, "manifest.json"))).toBe(true);
    const { stdout } = await promisify(execFile)(
      "npx",
      ["tsx", "scripts/check-deployed.ts", "--json", "--customers", "acme", "--reuse", "--out", outdir],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      },
    ).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`check:deployed failed:\n${err.stderr ?? ""}\n${err.stdout ?? ""}`);
    });
    const last = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    expect(last).toMatchObject({ bundlesRun: 14, denied: 0, errorNameMismatches: 0, costMismatches: 0 });
    // every sample's cost record equals its execution's counts; retry_run resumed a failed run on the bundles
    expect(Number(last.costRecordsChecked)).toBeGreaterThanOrEqual(9);
    expect(last.retriesChecked).toBe(1);
    expect(Number(last.awsCallsChecked)).toBeGreaterThan(100);
    expect(Number(last.errorNamesChecked)).toBeGreaterThanOrEqual(10);
  }, 900_000);
});

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Document, parseDocument as parseYaml } from "yaml";
import { loadCustomerFile, loadCustomers } from "../../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import type { ModelResponse, TextBlock, ToolUseBlock, Usage } from "../../lambdas/shared/model/types.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { parseDocument } from "../../lambdas/shared/po/parse-text.js";
import { LocalStack, type LocalStackOptions, type RunEvent } from "../../local/stack.js";

/** Repository paths, independent of the test runner's working directory. */
export const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));
export const CUSTOMERS_DIR = join(REPO_DIR, "customers");
export const SAMPLES_DIR = join(REPO_DIR, "samples");

/** A fresh directory under the OS temp dir; the caller removes it (or lets `startTestStack` do so). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `po-agent-${prefix}-`));
}

/** The real customer configs from `customers/`. */
export function realCustomers(): CustomerConfig[] {
  return loadCustomers(CUSTOMERS_DIR);
}

/** One real customer config, loaded the way the app loads it. */
export function realCustomer(name: string): CustomerConfig {
  return loadCustomerFile(join(CUSTOMERS_DIR, `${name}.yaml`));
}

/** Bytes of `samples/<customer>/<file>`. */
export function sampleBytes(customer: string, file: string): Buffer {
  return readFileSync(join(SAMPLES_DIR, customer, file));
}

/** The normalized PO of a sample, as the extract tool would return it. */
export function samplePo(customer: string, file: string): NormalizedPo {
  return parseDocument(sampleBytes(customer, file), file).po;
}

/**
 * Copies `customers/*.yaml` into a temp dir, applying `edits[name]` to that customer's YAML
 * document (e.g. `doc.setIn(["budgets", "maxTurns"], 2)`). Returns the directory.
 */
export function customersDirWith(edits: Record<string, (doc: Document) => void> = {}): string {
  const dir = tempDir("test-customers");
  for (const file of readdirSync(CUSTOMERS_DIR).filter((f) => f.endsWith(".yaml"))) {
    const text = readFileSync(join(CUSTOMERS_DIR, file), "utf8");
    const edit = edits[file.replace(/\.yaml$/, "")];
    if (!edit) {
      writeFileSync(join(dir, file), text);
      continue;
    }
    const doc = parseYaml(text);
    edit(doc);
    writeFileSync(join(dir, file), doc.toString());
  }
  return dir;
}

export interface TestStack {
  stack: LocalStack;
  dataDir: string;
  /** Every RunEvent the stack emitted, in order. */
  events: RunEvent[];
  /** Closes the stack and removes its data dir. */
  close(): Promise<void>;
}

/**
 * Starts a LocalStack on a fresh temp data dir with the given model factory, the real customers
 * (unless others are given) and no retry backoff.
 */
export async function startTestStack(opts: {
  model: NonNullable<LocalStackOptions["model"]>;
  customers?: CustomerConfig[];
  /** @default - model retries with millisecond waits (the real policy waits seconds) */
  modelRetry?: LocalStackOptions["modelRetry"];
}): Promise<TestStack> {
  const dataDir = tempDir("stack");
  const events: RunEvent[] = [];
  const stack = await LocalStack.start({
    dataDir,
    customers: opts.customers ?? realCustomers(),
    model: opts.model,
    retryIntervalMs: 0,
    modelRetry: opts.modelRetry ?? { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 5 },
    onEvent: (e) => events.push(e),
  });
  return {
    stack,
    dataDir,
    events,
    async close() {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `predicate` until it holds or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- model responses ------------------------------------------------------------------------

export const PRICED_MODEL = "claude-sonnet-4-5";

export function toolUse(id: string, name: string, input: unknown): ToolUseBlock {
  return { type: "tool_use", id, name, input };
}

export function text(value: string): TextBlock {
  return { type: "text", text: value };
}

/** A model response: `tool_use` when it holds tool calls, `end_turn` otherwise. */
export function reply(
  content: (TextBlock | ToolUseBlock)[],
  opts: { model?: string; usage?: Usage } = {},
): ModelResponse {
  return {
    model: opts.model ?? PRICED_MODEL,
    content,
    stop_reason: content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn",
    usage: opts.usage ?? { input_tokens: 0, output_tokens: 0 },
  };
}

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadCustomerFile, loadCustomers } from "../../lambdas/shared/config/load.js";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { ConfigError } from "../../lambdas/shared/errors.js";
import { bundleHandler } from "../../lib/po-agent-function.js";

/**
 * A Lambda reads the customer config that synthesis validated and wrote beside its code, without validating
 * it again (lambdas/shared/aws/runtime.ts): these tests prove that skipping the parse changes nothing, that
 * what the synth cannot know is still checked, and that the zod schema stays out of the bundles.
 */
const dir = mkdtempSync(join(tmpdir(), "po-agent-bundled-config-"));
const saved = { ...process.env };

afterEach(() => {
  process.env = { ...saved };
  vi.resetModules();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Imports the Lambda wiring module afresh with `file` as the bundled config and `customer` as CUSTOMER. */
async function bundledCustomer(file: string, customer: string): Promise<CustomerConfig> {
  process.env.LAMBDA_TASK_ROOT = dir;
  process.env.CUSTOMER_CONFIG_FILE = file;
  process.env.CUSTOMER = customer;
  process.env.LEDGER_TABLE = "ledger";
  process.env.DOCUMENT_BUCKET = "bucket";
  process.env.AWS_REGION = "us-east-1";
  vi.resetModules();
  const runtime = await import("../../lambdas/shared/aws/runtime.js");
  return runtime.customer;
}

describe("the customer config a Lambda reads from its bundle", () => {
  it("is a fixed point of the schema for every shipped customer, so parsing it again would change nothing", () => {
    // Prepare: what synthesis writes is the parsed config as JSON.
    const customers = loadCustomers("customers");
    expect(customers.length).toBeGreaterThanOrEqual(2);
    for (const c of customers) {
      const shipped = JSON.parse(JSON.stringify(CustomerConfig.parse(c)));

      // Act
      const again = CustomerConfig.parse(shipped);

      // Assess
      expect(again, c.name).toEqual(shipped);
    }
  });

  it("is the synth's config, with defaults applied, when the file is for this function's customer", async () => {
    // Prepare
    const acme = loadCustomerFile("customers/acme.yaml");
    writeFileSync(join(dir, "acme.json"), JSON.stringify(acme));

    // Act
    const customer = await bundledCustomer("acme.json", "acme");

    // Assess
    expect(customer).toEqual(JSON.parse(JSON.stringify(acme)));
    expect(customer.approvers.every((a) => Array.isArray(a.delegates))).toBe(true);
  });

  it("refuses another customer's file, naming the file and both customers", async () => {
    // Prepare
    writeFileSync(join(dir, "acme.json"), JSON.stringify(loadCustomerFile("customers/acme.yaml")));

    // Act
    const loading = bundledCustomer("acme.json", "customer37");

    // Assess
    // (the module is imported afresh, so its ConfigError is another class object than this file's: compare names)
    await expect(loading).rejects.toMatchObject({ name: ConfigError.name });
    await expect(loading).rejects.toThrow(/acme\.json is for customer "acme" but CUSTOMER is "customer37"/);
  });

  it("refuses a file that is not JSON or not a config object, naming the file", async () => {
    // Prepare
    writeFileSync(join(dir, "broken.json"), '{"name": "acme",');
    writeFileSync(join(dir, "list.json"), '["acme"]');

    // Act
    const broken = bundledCustomer("broken.json", "acme");
    await broken.catch(() => undefined);
    const list = bundledCustomer("list.json", "acme");

    // Assess
    await expect(broken).rejects.toMatchObject({ name: ConfigError.name });
    await expect(broken).rejects.toThrow(/broken\.json: .*JSON/);
    await expect(list).rejects.toThrow(/list\.json: not a customer config/);
  });
});

describe("a synthesized bundle", () => {
  let out = "";
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), "po-agent-bundle-config-"));
    bundleHandler("finalize", JSON.stringify(loadCustomerFile("customers/acme.yaml")), out);
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("carries no customer-config schema: the config is validated at synth, not at every cold start", () => {
    // Prepare: a message only the schema's time-zone check holds, and one of its field messages.
    const code = readdirSync(out)
      .filter((f) => f.endsWith(".mjs"))
      .map((f) => readFileSync(join(out, f), "utf8"))
      .join("\n");

    // Assess: the handler code is there, the schema is not.
    // (booleans: a failure must not print megabytes of minified code)
    expect(code.includes("customer.json")).toBe(true);
    expect(code.includes("an IANA time zone such as America/Chicago")).toBe(false);
    expect(code.includes("lowercase id (letters, digits, - or _)")).toBe(false);
  });
});

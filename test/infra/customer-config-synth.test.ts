import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type AssetStaging, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AttributeType, Table } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { afterAll, describe, expect, it } from "vitest";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { CUSTOMER_CONFIG_FILE, PoAgentFunction } from "../../lib/po-agent-function.js";
import { customerYaml } from "./helpers.js";

/**
 * PoAgentFunction validates the customer config it is given, whoever built the props (lib/app.ts loads it
 * from YAML, a test or another app may not), because the bundle's code reads customer.json without parsing
 * it again (lambdas/shared/aws/runtime.ts). A bad field stops synthesis with one line naming the function
 * and the field; a good config is what the bundle carries.
 */
const acme = loadCustomerFile("customers/acme.yaml");
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

/** A stack with a table and a bucket, and a function built in it from `customer` (bundled unless `skip`). */
function synth(customer: CustomerConfig, opts: { skipBundling?: boolean } = {}) {
  const outdir = mkdtempSync(join(tmpdir(), "po-agent-config-synth-"));
  outdirs.push(outdir);
  const app = new App({ outdir, ...(opts.skipBundling ? { context: { "aws:cdk:bundling-stacks": [] } } : {}) });
  const stack = new Stack(app, "ConfigSynth");
  const data = {
    ledgerTable: new Table(stack, "Table", { partitionKey: { name: "pk", type: AttributeType.STRING } }),
    documentBucket: new Bucket(stack, "Bucket"),
  };
  const build = () => new PoAgentFunction(stack, "Finalize", { customer, ...data });
  return { stack, build };
}

const stagedConfig = (fn: PoAgentFunction) => {
  const dir = (fn.node.findChild("Code").node.findChild("Stage") as AssetStaging).absoluteStagedPath;
  return readFileSync(join(dir, CUSTOMER_CONFIG_FILE), "utf8");
};

describe("a customer config given to PoAgentFunction directly", () => {
  const approver = acme.approvers[0];
  if (!approver) throw new Error("customers/acme.yaml has no approver");
  const extraField = { ...acme, approvalLimit: 5000 };
  const tier = acme.approvalPolicy.tiers[0];
  if (!tier) throw new Error("customers/acme.yaml has no tier");
  // Each case as the YAML loader (lambdas/shared/config/load.ts) words it: the field and the bad value.
  const bad: [string, CustomerConfig, RegExp][] = [
    [
      "a time zone that is not one",
      { ...acme, timeZone: "Mars/Olympus" },
      /: timeZone: expected an IANA time zone such as America\/Chicago, got "Mars\/Olympus"/,
    ],
    [
      "an approver's email",
      { ...acme, approvers: [{ ...approver, email: "alice at acme" }, ...acme.approvers.slice(1)] },
      /: approvers\[0\]\.email: expected an email address, got "alice at acme"/,
    ],
    [
      "a delegate who is no approver",
      { ...acme, approvers: [{ ...approver, delegates: ["nobody"] }, ...acme.approvers.slice(1)] },
      /: approvers\[0\]\.delegates\[0\]: unknown approver id "nobody"/,
    ],
    ["a field the schema does not know", extraField, /: approvalLimit: unknown field "approvalLimit"; allowed: name, /],
    // What the schema cannot express, which the loader checks after it: the bundle trusts these too.
    [
      "two approvers with one id",
      { ...acme, approvers: [...acme.approvers, { ...approver, email: "other@acme-mfg.example" }] },
      /: approvers\[2\]\.id: duplicate approver id "priya"/,
    ],
    [
      "an amount that is not exact in the currency",
      { ...acme, approvalPolicy: { ...acme.approvalPolicy, tiers: [{ ...tier, autoApproveUpTo: 5000.005 }] } },
      /: approvalPolicy\.tiers\[0\]\.autoApproveUpTo: expected an exact USD amount, got 5000\.005/,
    ],
    [
      "days no tier applies on",
      {
        ...acme,
        approvalPolicy: { ...acme.approvalPolicy, tiers: [{ ...tier, when: { weekdays: ["mon", "tue"] } }] },
      },
      /: approvalPolicy\.tiers: no tier applies on wed, thu, fri, sat, sun/,
    ],
  ];

  it.each(bad)(
    "with %s fails synthesis, one line naming the function and the field, before any bundling",
    (_, customer, field) => {
      // Prepare
      const { stack, build } = synth(customer, { skipBundling: true });

      // Act
      let thrown: unknown;
      try {
        build();
      } catch (err) {
        thrown = err;
      }

      // Assess
      expect(thrown).toBeInstanceOf(Error);
      const message = (thrown as Error).message;
      expect(message).toMatch(/^ConfigSynth\/Finalize: invalid customer config: /);
      expect(message).toMatch(field);
      expect(message).not.toContain("\n");
      // Nothing was created for the function: no construct, no Lambda, no log group.
      expect(stack.node.tryFindChild("Finalize")).toBeUndefined();
      const template = Template.fromStack(stack);
      template.resourceCountIs("AWS::Lambda::Function", 0);
      template.resourceCountIs("AWS::Logs::LogGroup", 0);
    },
  );

  it("when valid, is written unchanged to the bundle's customer.json", () => {
    // Prepare: as lib/app.ts builds it, loaded and validated from YAML
    const { build } = synth(acme);

    // Act
    const fn = build();

    // Assess
    expect(stagedConfig(fn)).toBe(JSON.stringify(acme));
  }, 120_000);

  it("when written by hand without the defaults, is written with the schema's defaults applied", () => {
    // Prepare: a config as a human writes it (no delegates, budgets, model, ...), passed without parsing
    const raw = customerYaml("handmade") as unknown as CustomerConfig;
    const { build } = synth(raw);

    // Act
    const fn = build();

    // Assess
    const written = JSON.parse(stagedConfig(fn)) as CustomerConfig;
    expect(written).toEqual(JSON.parse(JSON.stringify(CustomerConfig.parse(raw))));
    expect(written).not.toEqual(raw);
    expect(written.approvers[0]?.delegates).toEqual([]);
  }, 120_000);
});

import { Bucket } from "aws-cdk-lib/aws-s3";
import { describe, expect, it } from "vitest";
import { nagAcknowledgements, nagReport, runNag } from "../../lib/nag.js";
import { realCustomers } from "../support/stack.js";
import { synthPoAgentStack } from "./helpers.js";

describe("cdk-nag AwsSolutions on every customer stack", () => {
  it("reports zero unacknowledged errors for every customer in customers/", () => {
    // Prepare
    const customers = realCustomers();

    // Act
    const { stacks, violations } = nagReport(customers);

    // Assess: every customer's stack was checked (a run over no stacks is clean too).
    expect(customers.length).toBeGreaterThanOrEqual(2);
    expect(stacks).toEqual(customers.map((c) => `PoAgent-${c.name}`));
    expect(violations.map((v) => `${v.rule} at ${v.constructPath}`)).toEqual([]);
  }, 60_000);

  it("reports zero unacknowledged errors with the MCP endpoint in bearer-token mode", () => {
    // Prepare
    const customers = realCustomers().slice(0, 1);

    // Act
    const { stacks, violations } = nagReport(customers, { stackProps: { mcpAuth: "bearer" } });

    // Assess
    expect(stacks).toHaveLength(1);
    expect(violations.map((v) => `${v.rule} at ${v.constructPath}`)).toEqual([]);
  }, 60_000);

  it("still reports a real finding that nobody acknowledged (the check is live)", () => {
    // Prepare: a bucket without access logs, SSL enforcement or public-access block.
    const [customer] = realCustomers();

    // Act
    const violations = runNag(customer ? [customer] : [], (stack) => {
      new Bucket(stack, "CarelessBucket");
    });

    // Assess
    const rules = violations.filter((v) => v.constructPath.includes("CarelessBucket")).map((v) => v.rule);
    expect(rules).toEqual(expect.arrayContaining(["AwsSolutions-S1", "AwsSolutions-S10"]));
  }, 60_000);

  it("gives every acknowledgement a rule id and a written reason", () => {
    // Prepare
    const { stack } = synthPoAgentStack("acme");

    // Act
    const acks = nagAcknowledgements(stack);

    // Assess
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.id).toMatch(/^AwsSolutions-[A-Z]+\d+/);
      expect(ack.reason.length, ack.id).toBeGreaterThanOrEqual(40);
    }
    expect(new Set(acks.map((a) => a.id)).size).toBe(acks.length);
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCustomer, loadCustomerFile, loadCustomers } from "../../lambdas/shared/config/load.js";
import { ConfigError } from "../../lambdas/shared/errors.js";

const root = mkdtempSync(join(tmpdir(), "po-agent-config-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A valid config; tests edit single lines so expected line numbers stay readable. */
const BASE = [
  "name: demo", // 1
  "displayName: Demo Co", // 2
  "timeZone: America/Chicago", // 3
  "currency: USD", // 4
  "rules: Approve up to $1,000.", // 5
  "approvers:", // 6
  "  - id: alice", // 7
  "    name: Alice", // 8
  "    email: alice@example.com", // 9
  "    delegates: [bob]", // 10
  "  - id: bob", // 11
  "    name: Bob", // 12
  "    email: bob@example.com", // 13
  "approvalPolicy:", // 14
  "  tiers:", // 15
  "    - name: default", // 16
  "      description: Everything", // 17
  "      autoApproveUpTo: 1000", // 18
  "      preferredVendorsExempt: true", // 19
  "      approvers: [alice]", // 20
];

let counter = 0;
/** Writes `<dir>/<name>.yaml` with lines of BASE replaced (1-based line → new text) and returns its path. */
function writeConfig(edits: Record<number, string> = {}, name = "demo", extra: string[] = []): string {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir);
  const lines = BASE.map((l, i) => edits[i + 1] ?? l);
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, [...lines, ...extra].join("\n"));
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loading the shipped customer configs", () => {
  it("loads every customers/*.yaml sorted by name", () => {
    // Act
    const configs = loadCustomers("customers");
    // Assess
    expect(configs.map((c) => c.name)).toEqual(["acme", "customer37"]);
  });

  it("keeps customer 37's rule verbatim and its two tiers in order", () => {
    // Act
    const c = loadCustomer("customers", "customer37");
    // Assess
    expect(c.rules).toBe(
      "approve invoices before POs if over $10K except for preferred vendors unless it's Thursday when Bob approves but only up to $7.5K",
    );
    expect(c.timeZone).toBe("America/Chicago");
    expect(c.approvalPolicy.tiers.map((t) => [t.name, t.autoApproveUpTo, t.preferredVendorsExempt])).toEqual([
      ["thursday-bob", 7500, false],
      ["default", 10000, true],
    ]);
    expect(c.approvers.find((a) => a.id === "bob")).toMatchObject({ limit: 7500, weekdays: ["thu"] });
    expect(c.vendors.some((v) => v.preferred)).toBe(true);
  });

  it("loads acme with its single tier", () => {
    // Act
    const c = loadCustomer("customers", "acme");
    // Assess
    expect(c.approvalPolicy.tiers).toHaveLength(1);
    expect(c.approvalPolicy.tiers[0]).toMatchObject({ autoApproveUpTo: 5000, preferredVendorsExempt: true });
  });

  it("a valid file loads with defaults applied", () => {
    // Prepare
    const path = writeConfig();
    // Act
    const c = loadCustomerFile(path);
    // Assess
    expect(c.vendors).toEqual([]);
    expect(c.approvers[1]?.delegates).toEqual([]);
  });
});

describe("invalid customer configs name file, line, column and field", () => {
  it("a bad email", () => {
    // Prepare
    const path = writeConfig({ 13: "    email: bob" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:13:12: approvers[1].email: expected an email address, got "bob"`);
  });

  it("a YAML syntax error", () => {
    // Prepare
    const path = writeConfig({ 10: "    delegates: [bob" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toMatch(new RegExp(`^${escapeRegExp(path)}:1[01]:\\d+: YAML syntax error: `));
  });

  it("a name that differs from the file name", () => {
    // Prepare
    const path = writeConfig({ 1: "name: other" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:1:7: name: expected "demo" (the file name without .yaml), got "other"`);
  });

  it("an unknown delegate", () => {
    // Prepare
    const path = writeConfig({ 10: "    delegates: [zed]" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:10:17: approvers[0].delegates[0]: unknown approver id "zed"`);
  });

  it("an unknown approver in a tier", () => {
    // Prepare
    const path = writeConfig({ 20: "      approvers: [carol]" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:20:19: approvalPolicy.tiers[0].approvers[0]: unknown approver id "carol"`);
  });

  it("a missing required field points at the enclosing mapping", () => {
    // Prepare
    const path = writeConfig({ 12: "    limit: 500" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:11:5: approvers[1].name: missing; expected text`);
  });

  it("a misspelt field suggests the right one", () => {
    // Prepare
    const path = writeConfig({ 9: "    emial: alice@example.com" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    const lines = err.message.split("\n");
    expect(lines).toContain(`${path}:7:5: approvers[0].email: missing; expected text`);
    expect(lines).toContain(
      `${path}:9:5: approvers[0].emial: unknown field "emial" (did you mean "email"?); allowed: id, name, email, limit, weekdays, delegates, principals`,
    );
  });

  it("a wrong type, a bad weekday and a bad time zone, all listed one per line in file order", () => {
    // Prepare
    const path = writeConfig({
      3: "timeZone: Mars/Olympus",
      12: "    name: Bob\n    weekdays: [thurs]",
      18: '      autoApproveUpTo: "1,000"',
    });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message.split("\n")).toEqual([
      `${path}:3:11: timeZone: expected an IANA time zone such as America/Chicago, got "Mars/Olympus"`,
      `${path}:13:16: approvers[1].weekdays[0]: expected one of mon, tue, wed, thu, fri, sat, sun, got "thurs"`,
      `${path}:19:24: approvalPolicy.tiers[0].autoApproveUpTo: expected a number, got "1,000"`,
    ]);
  });

  it("an amount with more decimals than the currency has", () => {
    // Prepare
    const path = writeConfig({ 18: "      autoApproveUpTo: 1000.555" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toMatch(
      new RegExp(
        `^${escapeRegExp(path)}:18:24: approvalPolicy\\.tiers\\[0\\]\\.autoApproveUpTo: expected an exact USD amount, got 1000\\.555`,
      ),
    );
  });

  it("a tier that can never apply and days no tier covers", () => {
    // Prepare: a Thursday-only tier after a catch-all, and a catch-all that is missing
    const unreachable = writeConfig({}, "demo", [
      "    - name: thursday",
      "      description: Never reached",
      "      when: { weekdays: [thu] }",
      "      autoApproveUpTo: 10",
      "      preferredVendorsExempt: false",
      "      approvers: [alice]",
    ]);
    const gap = writeConfig({ 16: "    - name: weekdays\n      when: { weekdays: [mon, tue, wed, thu, fri] }" });
    // Act
    const e1 = configError(() => loadCustomerFile(unreachable));
    const e2 = configError(() => loadCustomerFile(gap));
    // Assess
    expect(e1.message).toMatch(/:21:7: approvalPolicy\.tiers\[1\]: tier "thursday" can never apply/);
    expect(e2.message).toMatch(/approvalPolicy\.tiers: no tier applies on sat, sun/);
  });

  it("duplicate approver ids", () => {
    // Prepare
    const path = writeConfig({ 10: "    delegates: []", 11: "  - id: alice" });
    // Act
    const err = configError(() => loadCustomerFile(path));
    // Assess
    expect(err.message).toBe(`${path}:11:9: approvers[1].id: duplicate approver id "alice"`);
  });

  it("an empty file and a missing file", () => {
    // Prepare
    const dir = join(root, "empty");
    mkdirSync(dir);
    writeFileSync(join(dir, "demo.yaml"), "# nothing yet\n");
    // Act
    const empty = configError(() => loadCustomerFile(join(dir, "demo.yaml")));
    const missing = configError(() => loadCustomerFile(join(dir, "nope.yaml")));
    // Assess
    expect(empty.message).toMatch(/demo\.yaml:1:1: the file is empty/);
    expect(missing.message).toMatch(/nope\.yaml: cannot read customer config: no such file/);
  });
});

describe("finding customers in a directory", () => {
  it("an unknown customer name lists the known ones", () => {
    // Act
    const err = configError(() => loadCustomer("customers", "globex"));
    // Assess
    expect(err.message).toBe('unknown customer "globex" in customers; known customers: acme, customer37');
  });

  it("a missing directory and a directory without configs", () => {
    // Prepare
    const none = join(root, "no-yaml");
    mkdirSync(none);
    writeFileSync(join(none, "README.md"), "not a config");
    // Act
    const missing = configError(() => loadCustomers(join(root, "does-not-exist")));
    const empty = configError(() => loadCustomers(none));
    // Assess
    expect(missing.message).toMatch(/does-not-exist does not exist/);
    expect(empty.message).toMatch(/no customer configs \(\*\.yaml\) in .*no-yaml/);
  });

  it("reports the problems of every bad file in the directory", () => {
    // Prepare
    const a = writeConfig({ 13: "    email: bob" }, "demo");
    const dir = join(a, "..");
    writeFileSync(join(dir, "other.yaml"), BASE.join("\n"));
    // Act
    const err = configError(() => loadCustomers(dir));
    // Assess
    expect(err.message).toContain("demo.yaml:13:12: approvers[1].email");
    expect(err.message).toContain('other.yaml:1:7: name: expected "other"');
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

import { describe, expect, it } from "vitest";
import { approvalIdFor, argsHash, type GuardVerdict, guardCall } from "../../lambdas/shared/agent/guard.js";
import { transformPo } from "../../lambdas/shared/po/transform.js";
import { ESCALATE_TOOL, TOOLS } from "../../lambdas/shared/tools/registry.js";
import { realCustomer, samplePo } from "../support/stack.js";

const acme = realCustomer("acme");
const customer37 = realCustomer("customer37");

function expectKind<K extends GuardVerdict["kind"]>(
  verdict: GuardVerdict,
  kind: K,
): Extract<GuardVerdict, { kind: K }> {
  expect(verdict.kind).toBe(kind);
  return verdict as Extract<GuardVerdict, { kind: K }>;
}

describe("guardCall: what the model may not call", () => {
  it("rejects an unknown tool, naming it and listing the available tools", () => {
    // Act
    const verdict = guardCall(acme, "delete_all_orders", { everything: true });

    // Assess
    const { error } = expectKind(verdict, "rejected");
    expect(error).toContain('"delete_all_orders"');
    for (const tool of TOOLS) expect(error).toContain(tool.name);
  });

  it("rejects schema-invalid arguments, naming the offending field", () => {
    // Prepare
    const po = samplePo("acme", "01-packaging-saved.json");

    // Act
    const verdict = guardCall(acme, "validate", { po: { ...po, totalMinor: "1846.20" } });

    // Assess
    const { error } = expectKind(verdict, "rejected");
    expect(error).toMatch(/^invalid arguments for validate: /);
    expect(error).toContain("po.totalMinor");
  });

  it("rejects a missing required argument and extra arguments", () => {
    // Act
    const missing = guardCall(acme, "save", {});
    const extra = guardCall(acme, "extract", { file: "other.json" });

    // Assess
    expect(expectKind(missing, "rejected").error).toMatch(/invalid arguments for save: po:/);
    expect(expectKind(extra, "rejected").error).toMatch(/invalid arguments for extract: .*file/);
  });
});

describe("guardCall: what runs and what waits for a human", () => {
  const acmeSmall = transformPo(samplePo("acme", "01-packaging-saved.json")); // $1,846.20, within $5,000
  const acmeLarge = transformPo(samplePo("acme", "03-controls-needs-approval.json")); // $8,750, not preferred

  it("runs read tools without asking anyone", () => {
    // Act
    const verdicts = [
      guardCall(acme, "extract", {}),
      guardCall(acme, "validate", { po: acmeLarge }),
      guardCall(acme, "transform", { po: acmeLarge }),
    ];

    // Assess
    expect(verdicts.map((v) => v.kind)).toEqual(["run", "run", "run"]);
  });

  it("runs a save the customer's policy allows, bound to the argument hash", () => {
    // Act
    const verdict = guardCall(acme, "save", { po: acmeSmall });

    // Assess
    expect(expectKind(verdict, "run").argsHash).toBe(argsHash({ po: acmeSmall }));
  });

  it("runs a save over the limit when the vendor is preferred and the tier exempts them", () => {
    // Prepare: customer37, Tuesday, $25,000 from preferred Great Lakes Steel & Wire.
    const po = transformPo(samplePo("customer37", "02-preferred-vendor-tuesday.csv"));

    // Act
    const verdict = guardCall(customer37, "save", { po });

    // Assess
    expect(verdict.kind).toBe("run");
  });

  it("turns a save above the threshold into an approval naming the policy tier and its approvers", () => {
    // Act
    const verdict = guardCall(acme, "save", { po: acmeLarge });

    // Assess
    const { request, argsHash: hash } = expectKind(verdict, "approval");
    expect(request.rule).toBe("default");
    expect(request.approvers).toEqual(["priya", "marcus"]);
    expect(request.reason).toContain("$5,000.00");
    expect(request.summary).toEqual({
      poNumber: acmeLarge.poNumber,
      supplierName: "Brightline Electrical Co.",
      amount: "$8,750.00",
    });
    expect(hash).toBe(argsHash({ po: acmeLarge }));
  });

  it("applies customer37's Thursday tier: a preferred vendor over Bob's limit goes to Dana, not Bob", () => {
    // Prepare: Thursday, $9,300 from preferred Midwest Fasteners (fine on any other day).
    const po = transformPo(samplePo("customer37", "05-thursday-over-bob-limit-preferred.json"));

    // Act
    const verdict = guardCall(customer37, "save", { po });

    // Assess
    const { request } = expectKind(verdict, "approval");
    expect(request.rule).toBe("thursday-bob");
    expect(request.approvers).toEqual(["dana", "erin"]);
  });

  it("turns escalate_to_human into an approval request carrying the model's reason", () => {
    // Prepare
    const po = transformPo(samplePo("customer37", "06-unknown-vendor.json"));

    // Act
    const verdict = guardCall(customer37, ESCALATE_TOOL, { reason: "Riverbend Tooling Co. is not a known vendor", po });

    // Assess
    const { request } = expectKind(verdict, "approval");
    expect(request.rule).toBe("model-escalation");
    expect(request.reason).toBe("Riverbend Tooling Co. is not a known vendor");
    // $3,100 is within the limit, so the tier's own approvers are asked (samples/README.md).
    expect(request.approvers).toEqual(["alice", "dana"]);
    expect(request.summary.poNumber).toBe(po.poNumber);
  });
});

describe("argsHash and approvalIdFor", () => {
  it("hashes arguments independently of key order, but not of values", () => {
    // Prepare
    const a = { po: { poNumber: "PO-1", lines: [{ id: "1", qty: "2" }], supplier: { name: "X", id: "V" } } };
    const reordered = { po: { supplier: { id: "V", name: "X" }, lines: [{ qty: "2", id: "1" }], poNumber: "PO-1" } };
    const changed = { po: { ...a.po, poNumber: "PO-2" } };

    // Act / Assess
    expect(argsHash(reordered)).toBe(argsHash(a));
    expect(argsHash(changed)).not.toBe(argsHash(a));
    expect(argsHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("binds the approval id to run, toolUseId, tool name and argument hash", () => {
    // Prepare
    const base = ["acme-run-1", "toolu_1", "save", argsHash({ po: { poNumber: "PO-1" } })] as const;
    const id = approvalIdFor(...base);

    // Act
    const variants = [
      approvalIdFor("acme-run-2", base[1], base[2], base[3]),
      approvalIdFor(base[0], "toolu_2", base[2], base[3]),
      approvalIdFor(base[0], base[1], ESCALATE_TOOL, base[3]),
      approvalIdFor(base[0], base[1], base[2], argsHash({ po: { poNumber: "PO-2" } })),
    ];

    // Assess
    expect(approvalIdFor(...base)).toBe(id);
    expect(id).toMatch(/^apr_[0-9a-f]{24}$/);
    for (const v of variants) expect(v).not.toBe(id);
    expect(new Set(variants).size).toBe(variants.length);
  });
});

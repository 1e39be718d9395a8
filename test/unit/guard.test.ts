import { describe, expect, it } from "vitest";
import { z } from "zod/v3";
import { type GuardVerdict, guardCall } from "../../lambdas/shared/agent/guard.js";
import { approvalIdFor, argsHash } from "../../lambdas/shared/approval/binding.js";
import { transformPo } from "../../lambdas/shared/po/transform.js";
import { ESCALATE_TOOL, TOOLS } from "../../lambdas/shared/tools/registry.js";
import type { Tool } from "../../lambdas/shared/tools/types.js";
import { artifactOf, refOf, stateWith } from "../support/artifacts.js";
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
    const verdict = guardCall(acme, "validate", { artifactId: "po_0123456789abcdef", version: "1" });
    const withPo = guardCall(acme, "validate", { artifactId: "po_0123456789abcdef", version: 1, po });

    // Assess
    const { error } = expectKind(verdict, "rejected");
    expect(error).toMatch(/^invalid arguments for validate: /);
    expect(error).toContain("version");
    // A PO sent by the model is never accepted in place of the stored version.
    expect(expectKind(withPo, "rejected").error).toMatch(/invalid arguments for validate: .*po/);
  });

  it("rejects a missing required argument and extra arguments", () => {
    // Act
    const missing = guardCall(acme, "save", {});
    const extra = guardCall(acme, "extract", { file: "other.json" });

    // Assess
    expect(expectKind(missing, "rejected").error).toMatch(/invalid arguments for save: artifactId:/);
    expect(expectKind(extra, "rejected").error).toMatch(/invalid arguments for extract: .*file/);
  });
});

describe("guardCall: what runs and what waits for a human", () => {
  const acmeSmall = transformPo(samplePo("acme", "01-packaging-saved.json")); // $1,846.20, within $5,000
  const acmeLarge = transformPo(samplePo("acme", "03-controls-needs-approval.json")); // $8,750, not preferred
  const small = artifactOf("acme-run", acmeSmall);
  const large = artifactOf("acme-run", acmeLarge, { version: 2, origin: "document" });

  it("runs read tools without asking anyone", () => {
    // Act
    const verdicts = [
      guardCall(acme, "extract", {}),
      guardCall(acme, "validate", refOf(large), stateWith(large)),
      guardCall(acme, "transform", refOf(large), stateWith(large)),
    ];

    // Assess
    expect(verdicts.map((v) => v.kind)).toEqual(["run", "run", "run"]);
  });

  it("runs a save the customer's policy allows on the stored version, bound to the argument hash", () => {
    // Act
    const verdict = guardCall(acme, "save", refOf(small), stateWith(small));

    // Assess
    expect(expectKind(verdict, "run").argsHash).toBe(argsHash(refOf(small)));
  });

  it("refuses a save of a version that was not validated, failed validation, or is not in this run", () => {
    // Prepare
    const unvalidated = artifactOf("acme-run", acmeSmall, { validated: false });
    const failed = artifactOf("acme-run", acmeSmall, { validated: 2 });
    const foreign = artifactOf("other-run", acmeSmall);

    // Act
    const verdicts = [
      guardCall(acme, "save", refOf(unvalidated), stateWith(unvalidated)),
      guardCall(acme, "save", refOf(failed), stateWith(failed)),
      guardCall(acme, "save", refOf(foreign), stateWith(small)),
    ];

    // Assess
    expect(verdicts.map((v) => (v.kind === "rejected" ? v.error : v.kind))).toEqual([
      expect.stringMatching(/was not validated/),
      expect.stringMatching(/failed validation with 2 error/),
      expect.stringMatching(/has no version 1 in this run/),
    ]);
  });

  it("refuses a save of a PO number a human rejected in this run", () => {
    // Act
    const verdict = guardCall(acme, "save", refOf(small), {
      artifacts: [small],
      rejectedPoNumbers: new Set([acmeSmall.poNumber]),
    });

    // Assess
    expect(expectKind(verdict, "rejected").error).toMatch(/a human rejected saving PO ACM-PO-22817/);
  });

  it("sends a within-limit save of an amended version to a human with the diff against the document", () => {
    // Prepare: the model changed a price; the policy alone would allow the result.
    const amendedPo = {
      ...acmeSmall,
      lines: acmeSmall.lines.map((l, i) => (i === 0 ? { ...l, unitPriceMinor: l.unitPriceMinor - 1 } : l)),
    };
    const amended = artifactOf("acme-run", amendedPo, { version: 2, needsHuman: ["money"] });

    // Act
    const verdict = guardCall(acme, "save", refOf(amended), stateWith(small, amended));

    // Assess
    const { request } = expectKind(verdict, "approval");
    expect(request.rule).toBe("amendment:money");
    expect(request.reason).toMatch(/amended money/);
    expect(request.diff?.[0]).toMatch(/^\/lines\/0\/unitPriceMinor: /);
    expect(request.artifact).toEqual({ ...refOf(amended), poSha256: amended.poSha256 });
  });

  it("runs a save over the limit when the vendor is preferred and the tier exempts them", () => {
    // Prepare: customer37, Tuesday, $25,000 from preferred Great Lakes Steel & Wire.
    const a = artifactOf("c37-run", transformPo(samplePo("customer37", "02-preferred-vendor-tuesday.csv")));

    // Act
    const verdict = guardCall(customer37, "save", refOf(a), stateWith(a));

    // Assess
    expect(verdict.kind).toBe("run");
  });

  it("turns a save above the threshold into an approval naming the policy tier and its approvers", () => {
    // Act
    const verdict = guardCall(acme, "save", refOf(large), stateWith(large));

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
    expect(hash).toBe(argsHash(refOf(large)));
  });

  it("applies customer37's Thursday tier: a preferred vendor over Bob's limit goes to Dana, not Bob", () => {
    // Prepare: Thursday, $9,300 from preferred Midwest Fasteners (fine on any other day).
    const a = artifactOf("c37-run", transformPo(samplePo("customer37", "05-thursday-over-bob-limit-preferred.json")));

    // Act
    const verdict = guardCall(customer37, "save", refOf(a), stateWith(a));

    // Assess
    const { request } = expectKind(verdict, "approval");
    expect(request.rule).toBe("thursday-bob");
    expect(request.approvers).toEqual(["dana", "erin"]);
  });

  it("turns escalate_to_human into an approval request carrying the model's reason", () => {
    // Prepare
    const po = transformPo(samplePo("customer37", "06-unknown-vendor.json"));
    const a = artifactOf("c37-run", po);

    // Act
    const verdict = guardCall(
      customer37,
      ESCALATE_TOOL,
      { reason: "Riverbend Tooling Co. is not a known vendor", ...refOf(a) },
      stateWith(a),
    );

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

describe("guardCall: a mounted write that names an artifact", () => {
  it("asks a human: the artifact's small total says nothing about the order the tool's own arguments create", () => {
    // Prepare: a mounted ERP write whose schema lets unknown keys through (as a customer's server may),
    // and a compromised model naming the small, allowed PO while sending a $200,000 order.
    const small = artifactOf("acme-run", transformPo(samplePo("acme", "01-packaging-saved.json")));
    const createOrder: Tool = {
      name: "shop.create_order",
      description: "creates an order in the ERP",
      effect: "write",
      input: z.object({}).passthrough(),
      run: async () => ({ content: "created" }),
    };
    const state = { ...stateWith(small), mounted: [createOrder] };

    // Act
    const verdict = guardCall(
      acme,
      "shop.create_order",
      { ...refOf(small), poNumber: "EVIL-OPEN-1", vendorId: "V-1004", totalMinor: 20_000_000 },
      state,
    );

    // Assess: not run on the artifact's word; a human decides, and sees why
    const { request } = expectKind(verdict, "approval");
    expect(request.reason).toMatch(/arguments, not the PO it names, are what it writes/);
  });
});

import { describe, expect, it } from "vitest";
import { applyChanges, classesOf, describeDiff, needsHumanOf } from "../../lambdas/shared/agent/artifacts.js";
import { transformPo } from "../../lambdas/shared/po/transform.js";
import { realCustomer, samplePo } from "../support/stack.js";

const acme = realCustomer("acme");
const po = transformPo(samplePo("acme", "01-packaging-saved.json"));

function amended(changes: Parameters<typeof applyChanges>[1]) {
  const out = applyChanges(po, changes);
  if ("error" in out) throw new Error(out.error);
  return out.po;
}

describe("amendments: what a change of the model touches", () => {
  it.each([
    ["a unit price", [{ path: "/lines/0/unitPriceMinor", value: 1 }], ["money"]],
    ["the total", [{ path: "/totalMinor", value: 100 }], ["money"]],
    ["a quantity", [{ path: "/lines/0/quantity", value: "1" }], ["quantity"]],
    ["the supplier's id", [{ path: "/supplier/id", value: "V-1001" }], ["supplier"]],
    ["the currency", [{ path: "/currency", value: "EUR" }], ["currency"]],
    ["the order date", [{ path: "/orderDate", value: "2026-01-05" }], ["order-date"]],
    ["the PO number", [{ path: "/poNumber", value: "ACM-PO-1" }], ["po-number"]],
    ["a removed line", [{ path: "/lines/1", remove: true as const }], ["money", "quantity"]],
    ["a unit that is no mapping of the old one", [{ path: "/lines/0/unit", value: "DZN" }], ["quantity"]],
    ["a description", [{ path: "/lines/0/description", value: "boxes" }], []],
    ["the notes", [{ path: "/notes", value: "call ahead" }], []],
  ])("%s → %j", (_label, changes, classes) => {
    // Act / Assess
    expect(classesOf(po, amended(changes))).toEqual(classes);
  });

  it("lets a real unit mapping through as free and still catches a quantity smuggled beside it", () => {
    // Prepare: the document said "box"; BX is its Rec 20 code.
    const raw = { ...po, lines: po.lines.map((l, i) => (i === 0 ? { ...l, unit: "box" } : l)) };
    const mapping = applyChanges(raw, [{ path: "/lines/0/unit", value: "BX" }]);
    const smuggled = applyChanges(raw, [
      { path: "/lines/0/unit", value: "BX" },
      { path: "/lines/0/quantity", value: "1" },
    ]);

    // Assess
    expect("po" in mapping && classesOf(raw, mapping.po)).toEqual([]);
    expect("po" in smuggled && classesOf(raw, smuggled.po)).toEqual(["quantity"]);
  });

  it("refuses changes to provenance, prototype paths, and results that are not a PO", () => {
    // Act / Assess
    expect(applyChanges(po, [{ path: "/source/format", value: "json" }])).toEqual({
      error: "the source (provenance) of a PO cannot be amended",
    });
    expect(applyChanges(po, [{ path: "/__proto__/x", value: 1 }])).toMatchObject({ error: /not a PO field/ });
    expect(applyChanges(po, [{ path: "/totalMinor", value: "1.00" }])).toMatchObject({ error: /totalMinor/ });
    expect(applyChanges(po, [{ path: "/lines/99/unit", value: "EA" }])).toMatchObject({ error: /does not exist/ });
  });

  it("needs a human for every class unless the customer config allows it", () => {
    // Prepare
    const lenient = {
      ...acme,
      approvalPolicy: { ...acme.approvalPolicy, amendmentsWithoutHuman: ["order-date" as const] },
    };

    // Act / Assess
    expect(needsHumanOf(acme, [], ["order-date", "money"])).toEqual(["money", "order-date"]);
    expect(needsHumanOf(lenient, [], ["order-date", "money"])).toEqual(["money"]);
    expect(needsHumanOf(lenient, ["supplier"], [])).toEqual(["supplier"]);
  });

  it("describes the diff against the document for the human, money formatted", () => {
    // Act
    const diff = describeDiff(po, amended([{ path: "/totalMinor", value: 100 }]));

    // Assess
    expect(diff).toEqual(["/totalMinor: $1,846.20 → $1.00"]);
  });
});

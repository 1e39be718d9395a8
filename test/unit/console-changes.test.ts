import { describe, expect, it } from "vitest";
import { applyChanges } from "../../lambdas/shared/agent/artifacts.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { changesFor, renderChanges } from "../../local/console/changes.js";
import { artifactOf } from "../support/artifacts.js";
import { samplePo } from "../support/stack.js";
import { approvalRecord } from "./trace-fixtures.js";

const RUN = "acme-changes";
const doc = samplePo("acme", "01-packaging-saved.json");

function amendedVersion(po: NormalizedPo) {
  const applied = applyChanges(po, [{ path: "/supplier/name", value: "<b>Shady</b> Supplies" }]);
  if ("error" in applied) throw new Error(applied.error);
  return { ...artifactOf(RUN, applied.po, { version: 2, needsHuman: ["supplier"] }), parentVersion: 1 };
}

describe("the console's diff for an approver", () => {
  const base = artifactOf(RUN, doc);
  const target = amendedVersion(doc);
  const approval = approvalRecord({
    runId: RUN,
    status: "pending",
    artifact: { artifactId: target.artifactId, version: 2, poSha256: target.poSha256 },
  });

  it("lists the fields the approved call would change against the document, escaped", () => {
    // Act
    const changes = changesFor([target, base], approval);
    const html = renderChanges(approval, changes);
    // Assess
    expect(changes.fields).toEqual([
      { path: "/supplier/name", document: "Hudson Valley Packaging", saved: "<b>Shady</b> Supplies", kind: "supplier" },
    ]);
    expect(changes.chain.map((v) => v.version)).toEqual([1, 2]);
    expect(html).toContain("&lt;b&gt;Shady&lt;/b&gt; Supplies");
    expect(html).not.toContain("<b>Shady</b>");
    expect(html).not.toContain("data-tampered");
  });

  it("flags a version edited in the ledger after the request (content no longer matches its hash)", () => {
    // Prepare: the stored version's PO is rewritten behind the approval's back.
    const edited = { ...target, po: { ...target.po, totalMinor: 1 } };
    // Act
    const changes = changesFor([base, edited], approval);
    // Assess
    expect(changes.tampered).toEqual([2]);
    expect(renderChanges(approval, changes)).toContain("do not approve");
  });

  it("says so when the model drafted the PO (no version read from the document)", () => {
    const draft = { ...artifactOf(RUN, doc, { origin: "model-draft" }), version: 1 };
    const html = renderChanges(approval, changesFor([draft], { ...approval, artifact: undefined }));
    expect(html).toContain("No version was read from the document");
  });
});

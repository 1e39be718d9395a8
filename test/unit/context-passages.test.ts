import { describe, expect, it } from "vitest";
import { Bm25Index, terms } from "../../lambdas/shared/context/bm25.js";
import { splitThread } from "../../lambdas/shared/context/passages.js";
import { citeMessages } from "../../lambdas/shared/context/prepare.js";
import type { ThreadMessage } from "../../lambdas/shared/context/types.js";

const thread: ThreadMessage[] = [
  {
    id: "<a@x>",
    subject: "PO-4471802 new order",
    body: "Hi Marco,\n\nplease find attached PO-4471802.",
    attachments: [{ name: "PO-4471802.pdf", text: "PURCHASE ORDER PO-4471802\nTotal: EUR 100.00" }],
  },
  {
    id: "<b@x>",
    subject: "Re: PO-4471802",
    body: "New total EUR 120.00.\n\n-- \nLaura Chen\nTel. +49 40 123\n\nOn Mon, Laura wrote:\n> Total EUR 100.00\n> thanks",
  },
];

describe("splitThread", () => {
  it("gives passages ids naming message, attachment and lines, and tells body, signature and quote apart", () => {
    // Act
    const passages = splitThread(thread);

    // Assess
    expect(passages.map((p) => [p.id, p.kind])).toEqual([
      ["m1:L1-1", "body"],
      ["m1:L3-3", "body"],
      ["m1/a1:L1-2", "attachment"],
      ["m2:L1-1", "body"],
      ["m2:L3-5", "signature"],
      ["m2:L7-9", "quoted"],
    ]);
    expect(passages[2]?.attachment).toBe("PO-4471802.pdf");
  });

  it("yields the same ids for the same thread (ids are stable)", () => {
    // Act
    const first = splitThread(thread).map((p) => p.id);
    const second = splitThread(structuredClone(thread)).map((p) => p.id);

    // Assess
    expect(second).toEqual(first);
  });

  it("cuts long blocks so no passage is larger than twelve lines", () => {
    // Prepare
    const long: ThreadMessage = { id: "x", body: Array.from({ length: 30 }, (_, i) => `row ${i}`).join("\n") };

    // Act
    const passages = splitThread([long]);

    // Assess
    expect(passages.map((p) => p.id)).toEqual(["m1:L1-12", "m1:L13-24", "m1:L25-30"]);
  });
});

describe("Bm25Index", () => {
  it("ranks the passage that shares rare query terms first", () => {
    // Prepare
    const docs = ["the delivery date moves to April", "team lunch on Friday", "newsletter spring offer delivery"].map(
      terms,
    );
    const index = new Bm25Index(docs);

    // Act
    const scores = index.scores(terms("revised delivery date"));

    // Assess
    expect(scores[0]).toBeGreaterThan(scores[2] ?? 0);
    expect(scores[2]).toBeGreaterThan(0);
    expect(scores[1]).toBe(0);
  });
});

describe("citeMessages", () => {
  it("compresses message aliases to ranges and bridges gaps past the limit, saying so", () => {
    // Act
    const exact = citeMessages(["m3", "m4", "m5", "m9"]);
    const coarse = citeMessages(["m1", "m3", "m5", "m7"], 2);

    // Assess
    expect(exact).toBe("m3–m5, m9");
    expect(coarse).toBe("within m1–m7");
  });
});

import { describe, expect, it } from "vitest";
import { extractFacts, findDates, findMoney, parseItems } from "../../lambdas/shared/context/facts.js";
import { messageInfos, splitThread } from "../../lambdas/shared/context/passages.js";
import type { ThreadMessage } from "../../lambdas/shared/context/types.js";

const PO_DOC = [
  "PURCHASE ORDER PO-4471802",
  "Delivery date: 2026-03-20",
  "",
  "Line | SKU | Description | Qty | Unit | Unit price | Amount",
  "1 | PK-10231 | Corrugated box 40x30x20 | 400 | EA | 2.15 | 860.00",
  "2 | PK-20118 | Stretch film 500mm | 50 | RL | 18.90 | 945.00",
  "",
  "Total: EUR 1,805.00",
].join("\n");

const msg = (id: string, subject: string, body: string, extra: Partial<ThreadMessage> = {}): ThreadMessage => ({
  id,
  subject,
  body,
  ...extra,
});

const thread: ThreadMessage[] = [
  msg("<1>", "PO-4471802 new order", "Please find attached our order.", {
    attachments: [{ name: "PO-4471802.pdf", text: PO_DOC }],
  }),
  msg("<2>", "Re: PO-4471802 quantities", "Please change the quantity of PK-10231 from 400 to 520 EA."),
  msg("<3>", "Re: PO-4471802 confirmation", "Updated order value: EUR 2,063.00 (was EUR 1,805.00)."),
  msg("<4>", "Re: PO-4471955 changes", "The revised total for PO-4471955 is EUR 9,999.00."),
  msg(
    "<5>",
    "Re: PO-4471802 follow-up",
    "Forwarding to Dana for approval.\n\nBy the way, for PO-4471955 the delivery is now 2026-05-02.\n\nOn Mon, Laura wrote:\n> Please change the quantity of PK-10231 from 400 to 999 EA.",
  ),
  msg("<6>", "Re: PO-4471802 delivery date", "New delivery date for PO 4471802: 17 April 2026."),
  msg("<7>", "Re: PO-4471802 approval", "Please hold PO-4471802 until the budget is confirmed; do not release it."),
  msg("<8>", "Re: PO-4471802 approval", "I approve PO-4471802 on condition that prices stay fixed until 30 June 2026."),
  msg("<9>", "Re: PO-4471802 cancellation", "Please cancel line 2 (PK-20118, Stretch film 500mm) from PO-4471802."),
];

function facts(messages: ThreadMessage[]) {
  const passages = splitThread(messages);
  return extractFacts(messages, passages, messageInfos(messages));
}

describe("value parsers", () => {
  it("reads dates in ISO, day-month-year words, month-day-year words and dotted day-first", () => {
    // Act
    const dates = findDates("2026-04-17, 17 April 2026, April 17, 2026 and 17.04.2026").map((d) => d.value);

    // Assess
    expect(dates).toEqual(["2026-04-17", "2026-04-17", "2026-04-17", "2026-04-17"]);
  });

  it("reads money with code or symbol, English or German separators", () => {
    // Act
    const money = findMoney("EUR 52,310.00 or €1,200.50 or 48.250,00 EUR").map((m) => m.value);

    // Assess
    expect(money).toEqual(["EUR 52310.00", "EUR 1200.50", "EUR 48250.00"]);
  });

  it("reads line items from a PO table with a header row", () => {
    // Act
    const items = parseItems(PO_DOC);

    // Assess
    expect(items.map((i) => [i.line, i.sku, i.quantity])).toEqual([
      [1, "PK-10231", 400],
      [2, "PK-20118", 50],
    ]);
  });
});

describe("extractFacts", () => {
  it("finds the thread's PO on its attachment", () => {
    // Act
    const { po } = facts(thread);

    // Assess
    expect(po).toEqual({ key: "4471802", display: "PO-4471802" });
  });

  it("lets later statements win and keeps what they superseded, with passage ids", () => {
    // Act
    const { facts: found } = facts(thread);
    const byKey = new Map(found.map((f) => [f.key, f]));

    // Assess
    expect(byKey.get("total")?.current).toMatchObject({ value: "EUR 2063.00", passageId: "m3:L1-1" });
    expect(byKey.get("total")?.superseded.map((s) => [s.value, s.passageId])).toEqual([["EUR 1805.00", "m1/a1:L8-8"]]);
    expect(byKey.get("quantity:PK-10231")?.current).toMatchObject({ value: "520", passageId: "m2:L1-1" });
    expect(byKey.get("quantity:PK-10231")?.superseded.map((s) => s.value)).toEqual(["400"]);
    expect(byKey.get("deliveryDate")?.current.value).toBe("2026-04-17");
    expect(byKey.get("deliveryDate")?.superseded.map((s) => s.value)).toEqual(["2026-03-20"]);
    expect(byKey.get("cancellation:PK-20118")?.current).toMatchObject({ value: "cancelled", passageId: "m9:L1-1" });
    expect(byKey.get("approval")?.current.value).toMatch(/^I approve PO-4471802 on condition/);
    expect(byKey.get("approval")?.superseded[0]?.value).toMatch(/^Please hold/);
  });

  it("ignores other POs, quoted copies and approval chatter without an instruction", () => {
    // Act
    const { facts: found } = facts(thread);
    const values = found.flatMap((f) => [f.current, ...f.superseded]).map((s) => s.value);

    // Assess
    expect(values).not.toContain("EUR 9999.00");
    expect(values).not.toContain("2026-05-02");
    expect(values).not.toContain("999");
    expect(values).not.toContain("Forwarding to Dana for approval.");
  });

  it("does not read an approval's until-date as a delivery date", () => {
    // Act
    const { facts: found } = facts(thread);

    // Assess
    expect(found.find((f) => f.key === "deliveryDate")?.current.value).not.toBe("2026-06-30");
  });

  it("falls back to the subjects' PO when there is no attachment", () => {
    // Prepare
    const noDoc = [msg("<1>", "PO-4471802 revised", "The revised total for this order is EUR 10.00.")];

    // Act
    const result = facts(noDoc);

    // Assess
    expect(result.po?.key).toBe("4471802");
    expect(result.facts.find((f) => f.key === "total")?.current.value).toBe("EUR 10.00");
  });
});

/**
 * Seeded generator of purchase-order email threads for the context benchmark. One PO (sent as an
 * attachment in the first message) is revised along the thread: quantities change, the total is
 * restated, the approver first holds then releases it with conditions, the delivery date moves
 * twice and a line is cancelled late. Around it: other POs with the same supplier, SKUs and
 * phrasing; quoted replies that repeat superseded values; signatures and disclaimers;
 * newsletters; shipping notices; invoices; unrelated internal mail.
 *
 * `facts` is the answer key (the latest value of every planted fact and the sentence that states
 * it). Only the benchmark reads it; the context preparation never sees it.
 */

import { renderMessage } from "../../lambdas/shared/context/passages.js";
import type { ThreadMessage } from "../../lambdas/shared/context/types.js";
import { estimateTokens } from "../../lambdas/shared/model/tokens.js";
import { mulberry32 } from "../support/prng.js";

export interface PlantedFact {
  /** Same key scheme as the context module's facts: `poNumber`, `total`, `quantity:SKU`… */
  key: string;
  /** Canonical latest value (the scheme the context module normalizes to). */
  value: string;
  /** The verbatim sentence stating the latest value. */
  needle: string;
  /** Earlier values of the same fact, oldest first. */
  superseded: string[];
}

export interface GeneratedThread {
  messages: ThreadMessage[];
  poNumber: string;
  facts: PlantedFact[];
  /** Estimated tokens of the rendered thread (offline tokenizer). */
  tokens: number;
}

const rng = mulberry32;

interface Item {
  sku: string;
  desc: string;
  unit: string;
  price: number;
}

const CATALOG: Item[] = [
  { sku: "PK-10231", desc: "Corrugated box 40x30x20", unit: "EA", price: 2.15 },
  { sku: "PK-10475", desc: "Corrugated box 60x40x40", unit: "EA", price: 3.4 },
  { sku: "PK-20118", desc: "Stretch film 500mm", unit: "RL", price: 18.9 },
  { sku: "PK-20340", desc: "Pallet wrap black 23my", unit: "RL", price: 21.5 },
  { sku: "PK-31007", desc: "Kraft paper void fill", unit: "RL", price: 34.0 },
  { sku: "PK-31220", desc: "Bubble wrap 1200mm", unit: "RL", price: 42.75 },
  { sku: "PK-40015", desc: "Packing tape brown 48mm", unit: "EA", price: 1.35 },
  { sku: "PK-40288", desc: "Printed tape with logo", unit: "EA", price: 2.9 },
  { sku: "PK-52201", desc: "Euro pallet 1200x800", unit: "EA", price: 14.0 },
  { sku: "PK-52290", desc: "Pallet collar 1200x800", unit: "EA", price: 9.6 },
  { sku: "PK-60412", desc: "Mailer bag 350x450", unit: "EA", price: 0.38 },
  { sku: "PK-60950", desc: "Label roll 100x150", unit: "RL", price: 6.2 },
  { sku: "PK-71133", desc: "Edge protector 50x50", unit: "EA", price: 0.52 },
  { sku: "PK-71800", desc: "Strapping band PP 12mm", unit: "RL", price: 27.3 },
];

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

const BUYER = { name: "Laura Chen", email: "l.chen@northwind-foods.example", title: "Purchasing Manager" };
const SUPPLIER = { name: "Marco Bauer", email: "m.bauer@acme-pack.example", title: "Key Account Manager" };
const APPROVER = { name: "Dana Whitfield", email: "d.whitfield@northwind-foods.example", title: "Head of Finance" };
const WAREHOUSE = { name: "Tom Price", email: "t.price@northwind-foods.example", title: "Warehouse Lead" };
const COLLEAGUES = [
  { name: "Priya Nair", email: "p.nair@northwind-foods.example", title: "Category Buyer" },
  { name: "Jonas Berg", email: "j.berg@northwind-foods.example", title: "Logistics Coordinator" },
  { name: "Sofia Ruiz", email: "s.ruiz@acme-pack.example", title: "Customer Service" },
];
type Person = typeof BUYER;

export function generateThread(options: { seed: number; targetTokens: number }): GeneratedThread {
  const rand = rng(options.seed);
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(rand() * xs.length)];
    if (x === undefined) throw new Error("pick from an empty list");
    return x;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const shuffled = <T>(xs: readonly T[]): T[] =>
    xs
      .map((x) => ({ x, k: rand() }))
      .sort((a, b) => a.k - b.k)
      .map((e) => e.x);

  const money = (n: number) =>
    n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2, useGrouping: true });
  const moneyText = (n: number) => (rand() < 0.75 ? `EUR ${money(n)}` : `€${money(n)}`);
  const canonicalMoney = (n: number) => `EUR ${n.toFixed(2)}`;
  const iso = (d: Date) => d.toISOString().slice(0, 10);
  const dateText = (d: Date) => {
    const day = d.getUTCDate();
    const month = MONTHS[d.getUTCMonth()] ?? "";
    const year = d.getUTCFullYear();
    return pick([
      iso(d),
      `${day} ${month} ${year}`,
      `${month} ${day}, ${year}`,
      `${String(day).padStart(2, "0")}.${String(d.getUTCMonth() + 1).padStart(2, "0")}.${year}`,
    ]);
  };
  const addDays = (d: Date, n: number) => new Date(d.getTime() + n * 86_400_000);

  const poNum = () => `PO-${int(4_400_000, 4_499_999)}`;
  const ours = poNum();
  const others = Array.from({ length: int(4, 7) }, poNum).filter((p) => p !== ours);
  const poVariant = (po: string) => {
    const digits = po.slice(3);
    return pick([po, po, po, `PO ${digits}`, `PO#${digits}`, `purchase order ${digits}`]);
  };

  // Our PO: four lines from the catalog.
  const lines = shuffled(CATALOG)
    .slice(0, 4)
    .map((item, i) => ({ ...item, line: i + 1, qty: int(4, 60) * 10 }));
  const [lineA, lineB, lineC] = [lines[0], lines[1], lines[2]];
  if (!lineA || !lineB || !lineC) throw new Error("catalog too small");
  const total = () => lines.reduce((s, l) => s + l.qty * l.price, 0);

  let clock = new Date(Date.UTC(2026, 1, int(2, 9), 8, 0));
  const messages: ThreadMessage[] = [];
  let tokens = 0;
  const lastBody = new Map<string, { body: string; from: Person; date: string }>();
  let seq = 0;

  const signature = (p: Person) => {
    const company = p.email.includes("acme") ? "Acme Packaging GmbH" : "Northwind Foods Ltd";
    const phone = `+49 40 ${int(100, 999)} ${int(1000, 9999)}`;
    const parts = [`${pick(["Best regards", "Kind regards", "Thanks", "Regards"])},`, p.name, "", "-- ", p.name];
    parts.push(`${p.title} | ${company}`, `Tel. ${phone} | ${p.email}`);
    if (rand() < 0.4) {
      parts.push(
        "This e-mail and any attachments are confidential and intended solely for the addressee. If you received it in error, please notify the sender and delete it. Any unauthorised use or disclosure is prohibited.",
      );
    }
    return parts.join("\n");
  };

  const push = (m: {
    from: Person | { name: string; email: string };
    subject: string;
    body: string;
    conv?: string;
    quote?: boolean;
    sign?: boolean;
    attachments?: { name: string; text: string }[];
  }) => {
    clock = new Date(clock.getTime() + int(20, 360) * 60_000);
    let body = m.body;
    const person = "title" in m.from ? m.from : undefined;
    if (m.sign !== false && person) body += `\n\n${signature(person)}`;
    const prev = m.conv ? lastBody.get(m.conv) : undefined;
    if (prev && m.quote !== false) {
      body += `\n\nOn ${prev.date}, ${prev.from.name} <${prev.from.email}> wrote:\n${prev.body
        .split("\n")
        .map((l) => `> ${l}`)
        .join("\n")}`;
    }
    const msg: ThreadMessage = {
      id: `<${(seq++).toString(36)}.${options.seed}.${int(100000, 999999)}@mail.example>`,
      from: `${m.from.name} <${m.from.email}>`,
      date: clock.toUTCString(),
      subject: m.subject,
      body,
      ...(m.attachments ? { attachments: m.attachments } : {}),
    };
    if (m.conv && person) lastBody.set(m.conv, { body: m.body, from: person, date: clock.toUTCString() });
    messages.push(msg);
    tokens += estimateTokens(renderMessage(msg, messages.length));
  };

  // --- the PO itself -------------------------------------------------------------------------
  const orderDate = new Date(clock);
  let delivery = addDays(orderDate, int(25, 40));
  const docLines = [
    `PURCHASE ORDER ${ours}`,
    `Order date: ${iso(orderDate)}`,
    "Buyer: Northwind Foods Ltd, Dock 4, 20457 Hamburg",
    "Supplier: Acme Packaging GmbH (vendor no. 100482)",
    `Delivery date: ${iso(delivery)}`,
    "Payment terms: 30 days net",
    "",
    "Line | SKU | Description | Qty | Unit | Unit price | Amount",
    ...lines.map(
      (l) =>
        `${l.line} | ${l.sku} | ${l.desc} | ${l.qty} | ${l.unit} | ${l.price.toFixed(2)} | ${money(l.qty * l.price)}`,
    ),
    "",
    `Total: EUR ${money(total())}`,
  ];
  const subject = (topic: string) => `${pick(["Re: ", "Re: ", "RE: ", "AW: "])}${ours} ${topic}`;
  const planted: { total: string[]; qtyA: string[]; qtyB: string[]; delivery: string[]; approval: string[] } = {
    total: [canonicalMoney(total())],
    qtyA: [String(lineA.qty)],
    qtyB: [String(lineB.qty)],
    delivery: [iso(delivery)],
    approval: [],
  };
  const needles: Record<string, string> = {};

  const events: { at: number; emit: () => void }[] = [
    {
      at: 0,
      emit: () =>
        push({
          from: BUYER,
          subject: `${ours} – new order packaging materials`,
          conv: ours,
          body: `Hi Marco,\n\nplease find attached our purchase order ${ours}. Kindly confirm receipt and the delivery date.`,
          attachments: [{ name: `${ours}.pdf`, text: docLines.join("\n") }],
        }),
    },
    {
      at: 0.15,
      emit: () => {
        const old = lineA.qty;
        lineA.qty = old + int(5, 20) * 10;
        const s = pick([
          `Please change the quantity of ${lineA.sku} (${lineA.desc}) from ${old} to ${lineA.qty} ${lineA.unit}.`,
          `We need ${lineA.qty} ${lineA.unit} of ${lineA.sku} instead of ${old}.`,
          `Could you increase line ${lineA.line} (${lineA.desc}) to ${lineA.qty} units?`,
        ]);
        needles.qtyA = s;
        planted.qtyA.push(String(lineA.qty));
        push({
          from: BUYER,
          subject: subject("quantities"),
          conv: ours,
          body: `Hi Marco,\n\n${s} Demand is higher than planned.`,
        });
      },
    },
    { at: 0.28, emit: () => restateTotal(SUPPLIER, "after the quantity change") },
    {
      at: 0.35,
      emit: () => {
        const s = pick([
          `Please hold ${poVariant(ours)} until the Q2 budget is confirmed; do not release it before I sign off.`,
          `Do not release ${ours} yet: approval is on hold until the Q2 budget review.`,
        ]);
        planted.approval.push(s);
        push({ from: APPROVER, subject: subject("approval"), conv: ours, body: `Laura,\n\n${s}` });
      },
    },
    { at: 0.45, emit: () => moveDelivery(SUPPLIER, "Our production slot moved.") },
    {
      at: 0.52,
      emit: () => {
        const old = lineB.qty;
        lineB.qty = Math.max(10, old - int(1, 3) * 10);
        const s = `Please reduce ${lineB.sku} (${lineB.desc}) from ${old} to ${lineB.qty} ${lineB.unit}.`;
        planted.qtyB.push(String(lineB.qty));
        needles.qtyB = s;
        push({ from: BUYER, subject: subject("quantities"), conv: ours, body: `Marco,\n\n${s}` });
      },
    },
    {
      at: 0.62,
      emit: () => {
        const old = lineB.qty;
        lineB.qty = old + int(4, 12) * 10;
        const s = pick([
          `Sorry for the back and forth: for ${lineB.sku} we need ${lineB.qty} ${lineB.unit} after all, not ${old}.`,
          `Update on line ${lineB.line} (${lineB.desc}): new qty ${lineB.qty} ${lineB.unit}.`,
        ]);
        planted.qtyB.push(String(lineB.qty));
        needles.qtyB = s;
        push({ from: BUYER, subject: subject("quantities"), conv: ours, body: `Hi Marco,\n\n${s}` });
      },
    },
    { at: 0.68, emit: () => restateTotal(SUPPLIER, "with the latest quantities") },
    {
      at: 0.78,
      emit: () => {
        const day = int(10, 28);
        const s = pick([
          `Budget confirmed: ${ours} is approved for release, provided the unit prices stay fixed until ${day} June 2026 and there are no partial deliveries.`,
          `I approve ${poVariant(ours)} on condition that Acme confirms the price freeze in writing; invoices must not be paid before goods receipt.`,
        ]);
        planted.approval.push(s);
        needles.approval = s;
        push({ from: APPROVER, subject: subject("approval"), conv: ours, body: `Hi Laura,\n\n${s}` });
      },
    },
    { at: 0.86, emit: () => moveDelivery(WAREHOUSE, "The dock is fully booked that week.") },
    {
      at: 0.93,
      emit: () => {
        const s = pick([
          `Please cancel line ${lineC.line} (${lineC.sku}, ${lineC.desc}) from ${ours}; the promotion it was for has been dropped.`,
          `We are cancelling ${lineC.sku} (${lineC.desc}) on ${ours} – it is no longer needed.`,
        ]);
        needles.cancel = s;
        push({ from: BUYER, subject: subject("cancellation"), conv: ours, body: `Hi Marco,\n\n${s}` });
      },
    },
    {
      at: 0.96,
      emit: () => {
        lineC.qty = 0;
        restateTotal(SUPPLIER, `without line ${lineC.line}`);
      },
    },
  ];

  function restateTotal(from: Person, why: string) {
    const before = planted.total.at(-1) ?? "";
    const beforeText = `EUR ${money(Number(before.slice(4)))}`;
    const t = total();
    const amount = moneyText(t);
    const s = pick([
      `The revised total for ${ours} is ${amount} ${why}.`,
      `Updated order value: ${amount} (was ${beforeText}), ${why}.`,
      `${why[0]?.toUpperCase() ?? ""}${why.slice(1)}, the PO total comes to ${amount}.`,
    ]);
    planted.total.push(canonicalMoney(t));
    needles.total = s;
    push({
      from,
      subject: subject("order confirmation"),
      conv: ours,
      body: `Hello Laura,\n\n${s} Order confirmation follows.`,
    });
  }

  function moveDelivery(from: Person, why: string) {
    delivery = addDays(delivery, int(3, 12));
    const d = dateText(delivery);
    const s = pick([
      `New delivery date for ${poVariant(ours)}: ${d}.`,
      `${why} Please move the delivery of ${ours} to ${d}.`,
      `Revised delivery: ${d} for ${ours}.`,
    ]);
    planted.delivery.push(iso(delivery));
    needles.delivery = s;
    push({ from, subject: subject("delivery date"), conv: ours, body: `Hi,\n\n${s}` });
  }

  // --- distractors -----------------------------------------------------------------------------
  const otherState = new Map(
    others.map((po) => [po, { items: shuffled(CATALOG).slice(0, 3), total: int(2_000, 60_000) + int(0, 99) / 100 }]),
  );
  const otherPo = () => pick(others);
  const distractors: (() => void)[] = [
    // Another PO's revision, in the same words as ours.
    () => {
      const po = otherPo();
      const st = otherState.get(po);
      if (!st) return;
      const item = pick(st.items);
      const from = pick([BUYER, SUPPLIER, COLLEAGUES[0] ?? BUYER]);
      const mention = rand() < 0.6 ? poVariant(po) : "this order";
      st.total += int(-900, 900);
      const s = pick([
        `Please change the quantity of ${item.sku} (${item.desc}) from ${int(5, 40) * 10} to ${int(5, 40) * 10} ${item.unit} on ${mention}.`,
        `The revised total for ${mention} is ${moneyText(st.total)}.`,
        `New delivery date for ${mention}: ${dateText(addDays(clock, int(10, 50)))}.`,
        `Please cancel ${item.sku} (${item.desc}) from ${mention}.`,
        `Budget confirmed: ${mention} is approved for release, provided there are no partial deliveries.`,
        `We need ${int(5, 40) * 10} ${item.unit} of ${item.sku} instead of ${int(5, 40) * 10} on ${mention}.`,
      ]);
      push({
        from,
        subject: `${pick(["Re: ", "RE: ", ""])}${po} ${pick(["update", "changes", "follow-up"])}`,
        conv: po,
        body: `Hi,\n\n${s}`,
      });
    },
    // Chit-chat on our PO, quoting (and so repeating) whatever was said last.
    () => {
      const s = pick([
        "Thanks, noted.",
        "I'll check with the warehouse and come back to you tomorrow.",
        `Forwarding to ${APPROVER.name} for approval.`,
        "Could you send the updated order confirmation as PDF?",
        "Received, thank you. We will update our system.",
        "Let me know if anything else changes on your side.",
        `Quick question: is ${pick(lines).desc} still on the 2026 price list?`,
      ]);
      const tail =
        rand() < 0.25
          ? `\n\nBy the way, for ${otherPo()} the delivery is now ${dateText(addDays(clock, int(5, 30)))} and the total is ${moneyText(int(3_000, 40_000))}.`
          : "";
      push({
        from: pick([BUYER, SUPPLIER, WAREHOUSE]),
        subject: subject("follow-up"),
        conv: ours,
        body: `Hi,\n\n${s}${tail}`,
      });
    },
    // Newsletter.
    () => {
      const promo = pick(CATALOG);
      push({
        from: { name: "Acme Packaging News", email: "news@acme-pack.example" },
        subject: `Acme Packaging Newsletter – ${pick(MONTHS)} edition`,
        sign: false,
        body: [
          "View this email in your browser",
          "",
          `SPRING OFFER: ${promo.desc} (${promo.sku}) now ${moneyText(promo.price * 0.85)} per ${promo.unit} for orders of ${int(5, 50) * 100} units or more.`,
          `Free delivery on all orders over ${moneyText(int(1, 5) * 1000)} placed until ${dateText(addDays(clock, int(20, 60)))}.`,
          "Sustainability corner: our corrugated range is now made from 92% recycled fibre and carries the FSC Mix label. Read how our Hamburg plant cut energy use by a fifth with heat recovery from the corrugator line.",
          "Trade fair: meet us at FachPack in Nuremberg, hall 7, stand 312. Book a slot with your account manager and get a free packaging audit of your line.",
          "Customer story: how a regional dairy reduced breakage in transit by 30% with edge protectors and a new pallet pattern.",
          "",
          "You receive this newsletter because you are a registered customer. Unsubscribe | Privacy policy | Imprint: Acme Packaging GmbH, Hafenstrasse 12, 20457 Hamburg, HRB 123456.",
        ].join("\n"),
      });
    },
    // Shipping notice for another PO.
    () => {
      const po = otherPo();
      push({
        from: COLLEAGUES[2] ?? SUPPLIER,
        subject: `Shipping notice ${po}`,
        body: `Dear customer,\n\n${po} has been shipped on ${dateText(clock)}: ${int(2, 24)} pallets, carrier DHL Freight, tracking ${int(10_000_000, 99_999_999)}. Expected arrival ${dateText(addDays(clock, int(1, 4)))}.`,
      });
    },
    // Invoice for another PO.
    () => {
      const po = otherPo();
      push({
        from: { name: "Acme Accounts Receivable", email: "ar@acme-pack.example" },
        subject: `Invoice INV-${int(200_000, 299_999)} for ${po}`,
        sign: false,
        body: `Please find attached invoice INV-${int(200_000, 299_999)} for ${po}, total amount ${moneyText(int(1_000, 50_000) + 0.5)}, due on ${dateText(addDays(clock, 30))}. Payment by bank transfer to IBAN DE89 3704 0044 0532 0130 00.`,
      });
    },
    // Unrelated internal mail.
    () =>
      push({
        from: pick(COLLEAGUES),
        subject: pick(["Team lunch Friday", "IT maintenance window", "Inventory count next week", "Holiday rota"]),
        body: pick([
          "Hi all,\n\nwe are meeting at 12:30 at the canteen on Friday. Please reply by Thursday if you join.",
          "Hi team,\n\nthe ERP system will be unavailable on Saturday from 06:00 to 14:00 for maintenance. Please post goods receipts before Friday evening.",
          "Hello,\n\nthe yearly inventory count starts Monday at 07:00 in hall B. Counting teams are listed in the shared sheet; bring safety shoes.",
          "Hi,\n\nplease enter your summer holidays in the rota by the end of the month so we can plan cover for the purchasing desk.",
        ]),
      }),
  ];
  const weights = [0.34, 0.22, 0.1, 0.14, 0.1, 0.1];

  // Place each planted event at its fraction of the target size; fill the gaps with distractors.
  for (const event of events) {
    while (tokens < event.at * options.targetTokens) {
      let r = rand();
      let i = 0;
      while (i < weights.length - 1 && r > (weights[i] ?? 0)) r -= weights[i++] ?? 0;
      distractors[i]?.();
    }
    event.emit();
  }
  while (tokens < options.targetTokens) distractors[Math.floor(rand() * distractors.length)]?.();

  const latest = (xs: string[]) => xs.at(-1) ?? "";
  const facts: PlantedFact[] = [
    { key: "poNumber", value: ours, needle: ours, superseded: [] },
    { key: "total", value: latest(planted.total), needle: needles.total ?? "", superseded: planted.total.slice(0, -1) },
    {
      key: `quantity:${lineA.sku}`,
      value: latest(planted.qtyA),
      needle: needles.qtyA ?? "",
      superseded: planted.qtyA.slice(0, -1),
    },
    {
      key: `quantity:${lineB.sku}`,
      value: latest(planted.qtyB),
      needle: needles.qtyB ?? "",
      superseded: planted.qtyB.slice(0, -1),
    },
    {
      key: "deliveryDate",
      value: latest(planted.delivery),
      needle: needles.delivery ?? "",
      superseded: planted.delivery.slice(0, -1),
    },
    {
      key: "approval",
      value: latest(planted.approval),
      needle: needles.approval ?? "",
      superseded: planted.approval.slice(0, -1),
    },
    { key: `cancellation:${lineC.sku}`, value: "cancelled", needle: needles.cancel ?? "", superseded: [] },
  ];
  return { messages, poNumber: ours, facts, tokens };
}

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCustomer } from "../../lambdas/shared/config/load.js";
import { DEFAULTS } from "../../lambdas/shared/constants.js";
import { DocumentError } from "../../lambdas/shared/errors.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { formatMinor, multiplyQuantity, toMinor } from "../../lambdas/shared/po/money.js";
import { parseDocument } from "../../lambdas/shared/po/parse-text.js";
import { normalizeUnit, toIsoDate, transformPo } from "../../lambdas/shared/po/transform.js";
import { validatePo } from "../../lambdas/shared/po/validate.js";

const c37 = loadCustomer("customers", "customer37");
const enc = (s: string) => new TextEncoder().encode(s);

function documentError(bytes: Uint8Array | string, name = "po.bin"): string {
  try {
    parseDocument(typeof bytes === "string" ? enc(bytes) : bytes, name);
  } catch (err) {
    if (err instanceof DocumentError) return err.message;
    throw err;
  }
  throw new Error("expected a DocumentError");
}

function jsonPo(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    poNumber: "PO-1",
    orderDate: "2026-11-23",
    buyer: { name: "Buyer" },
    supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
    currency: "USD",
    lines: [{ id: "1", description: "Widget", quantity: 3, unit: "ea", unitPrice: "19.99", amount: "59.97" }],
    total: "59.97",
    requestedDelivery: "2026-12-01",
    ...overrides,
  });
}

function firstLine(po: NormalizedPo): NormalizedPo["lines"][number] {
  const line = po.lines[0];
  if (!line) throw new Error("the PO has no lines");
  return line;
}

const CSV_HEADER =
  "po_number,order_date,buyer,supplier,supplier_id,currency,line_id,description,quantity,unit,unit_price,line_amount,total,requested_delivery,notes";

describe("money", () => {
  it("converts decimal text to minor units exactly", () => {
    // Act / Assess
    expect(toMinor("1234.5", "USD")).toBe(123450);
    expect(toMinor("0.1", "USD") + toMinor("0.2", "USD")).toBe(toMinor("0.3", "USD"));
    expect(toMinor(19.99, "USD")).toBe(1999);
    expect(toMinor("-12.34", "USD")).toBe(-1234);
    expect(toMinor("12.500", "USD")).toBe(1250);
    expect(toMinor("1500", "JPY")).toBe(1500);
    expect(toMinor("1.005", "BHD")).toBe(1005);
  });

  it("refuses more decimals than the currency has, floats included", () => {
    // Act / Assess
    expect(() => toMinor("1.005", "USD")).toThrow("1.005 has 3 decimal places; USD allows 2");
    expect(() => toMinor(0.1 + 0.2, "USD")).toThrow(/0\.30000000000000004 has 17 decimal places/);
    expect(() => toMinor("1500.5", "JPY")).toThrow("JPY allows none");
    expect(() => toMinor("1,234.50", "USD")).toThrow(/not a decimal amount/);
    expect(() => toMinor(1e21, "USD")).toThrow(/without an exponent/);
  });

  it("multiplies quantity by price exactly, rounding half up", () => {
    // Act / Assess
    expect(multiplyQuantity("3", 1999)).toBe(5997);
    expect(multiplyQuantity("2.5", 1999)).toBe(4998); // 4997.5
    expect(multiplyQuantity("0.333", 100)).toBe(33); // 33.3
    expect(multiplyQuantity("0.5", 1)).toBe(1); // 0.5
    expect(multiplyQuantity("0.5", -1)).toBe(-1); // half away from zero for credits
    expect(multiplyQuantity("12.5", 2560)).toBe(32000);
    expect(() => multiplyQuantity("99999999999", 99999999)).toThrow(/too large/);
  });

  it("formats minor units for people", () => {
    // Act / Assess
    expect(formatMinor(123450, "USD")).toBe("$1,234.50");
    expect(formatMinor(-5, "USD")).toBe("-$0.05");
    expect(formatMinor(1500, "JPY")).toBe("¥1,500");
    expect(formatMinor(900719925474099, "USD")).toBe("$9,007,199,254,740.99");
  });
});

describe("parsing the samples", () => {
  it.each([
    ["acme/01-packaging-saved.json", "json", 184620, 3],
    ["acme/02-fasteners-saved.csv", "csv", 327540, 5],
    ["acme/03-controls-needs-approval.json", "json", 875000, 3],
    ["acme/04-total-mismatch-rejected.csv", "csv", 238175, 3],
    ["customer37/01-auto-approve-monday.json", "json", 420000, 3],
    ["customer37/02-preferred-vendor-tuesday.csv", "csv", 2500000, 3],
    ["customer37/03-over-limit-wednesday.json", "json", 1540000, 3],
    ["customer37/04-thursday-bob-within-limit.csv", "csv", 680000, 4],
    ["customer37/05-thursday-over-bob-limit-preferred.json", "json", 930000, 3],
    ["customer37/06-unknown-vendor.json", "json", 310000, 3],
  ] as const)("%s → %s, total %i, %i lines", (file, format, totalMinor, lineCount) => {
    // Prepare
    const bytes = readFileSync(`samples/${file}`);
    // Act
    const parsed = parseDocument(bytes, file);
    // Assess
    expect(parsed.format).toBe(format);
    expect(parsed.po.totalMinor).toBe(totalMinor);
    expect(parsed.po.lines).toHaveLength(lineCount);
    expect(parsed.po.source).toMatchObject({ format, document: file });
  });

  it.each([
    [
      "customer37/07-malformed-truncated.json",
      /^invalid JSON: the document ends at line 8, column \d+ before the JSON is complete \(truncated\?\)/,
    ],
    ["customer37/08-malformed-missing-quantity.csv", /^the CSV is missing the header "quantity"/],
  ])("%s fails with a specific reason", (file, reason) => {
    // Act / Assess
    expect(documentError(readFileSync(`samples/${file}`), file)).toMatch(reason);
  });

  it("reads the quoted fields of the `;` sample exactly", () => {
    // Act
    const { po } = parseDocument(readFileSync("samples/customer37/04-thursday-bob-within-limit.csv"), "x.csv");
    // Assess
    expect(po.lines[3]).toMatchObject({
      description: 'EMT connectors; compression, 3/4" (box of 25)',
      unitPriceMinor: 2450,
      amountMinor: 29400,
    });
  });

  it("reads a multi-line note and a fractional quantity in the acme CSV", () => {
    // Act
    const { po } = parseDocument(readFileSync("samples/acme/02-fasteners-saved.csv"), "x.csv");
    // Assess
    expect(po.notes).toBe("Deliver to receiving dock 3.\nCall Jim at ext. 214 one hour ahead.");
    expect(po.supplier).toEqual({ name: "Keystone Fasteners, Inc.", id: "V-1002" });
    expect(po.lines[4]).toMatchObject({ quantity: "12.5", unit: "kg", amountMinor: 32000 });
  });

  it("every valid sample's lines add up exactly", () => {
    // Prepare
    const files = [
      "acme/01-packaging-saved.json",
      "acme/02-fasteners-saved.csv",
      "acme/03-controls-needs-approval.json",
      "customer37/01-auto-approve-monday.json",
      "customer37/02-preferred-vendor-tuesday.csv",
      "customer37/03-over-limit-wednesday.json",
      "customer37/04-thursday-bob-within-limit.csv",
      "customer37/05-thursday-over-bob-limit-preferred.json",
      "customer37/06-unknown-vendor.json",
    ];
    for (const file of files) {
      const { po } = parseDocument(readFileSync(`samples/${file}`), file);
      const customer = loadCustomer("customers", file.split("/")[0] ?? "");
      // Act
      const errors = validatePo(po, customer).filter((f) => f.severity === "error");
      // Assess
      expect(errors, file).toEqual([]);
    }
  });
});

describe("parsing JSON", () => {
  it("reads numbers and decimal strings alike and keeps the document name", () => {
    // Act
    const { format, po } = parseDocument(enc(jsonPo()), "in.csv");
    // Assess: detected by content, not by the .csv name
    expect(format).toBe("json");
    expect(po).toEqual({
      poNumber: "PO-1",
      orderDate: "2026-11-23",
      buyer: { name: "Buyer" },
      supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
      currency: "USD",
      lines: [{ id: "1", description: "Widget", quantity: "3", unit: "ea", unitPriceMinor: 1999, amountMinor: 5997 }],
      totalMinor: 5997,
      requestedDelivery: "2026-12-01",
      source: { format: "json", document: "in.csv" },
    });
  });

  it("computes a missing line amount and numbers missing line ids", () => {
    // Act
    const { po } = parseDocument(
      enc(jsonPo({ lines: [{ description: "Oil", quantity: "2.5", unit: "L", unitPrice: 19.99 }], total: 49.98 })),
      "x.json",
    );
    // Assess
    expect(po.lines[0]).toMatchObject({ id: "1", amountMinor: 4998 });
  });

  it("does not check arithmetic: a wrong line amount is kept for the validator", () => {
    // Act
    const { po } = parseDocument(
      enc(jsonPo({ lines: [{ description: "W", quantity: 3, unit: "ea", unitPrice: "19.99", amount: "59.79" }] })),
      "x.json",
    );
    // Assess
    expect(po.lines[0]?.amountMinor).toBe(5979);
  });

  it.each([
    [{ supplier: { id: "X" } }, 'missing field "supplier.name"'],
    [{ lines: [] }, 'field "lines" is empty; a PO needs at least one line'],
    [{ lines: [{ description: "W", unit: "ea", unitPrice: 1 }] }, 'missing field "lines[0].quantity"'],
    [
      { lines: [{ description: "W", quantity: "two", unit: "ea", unitPrice: 1 }] },
      'field "lines[0].quantity": expected a plain decimal number such as 1234.50, got "two"',
    ],
    [{ total: "59.975" }, 'field "total": 59.975 has 3 decimal places; USD allows 2'],
    [{ currency: "US$" }, 'field "currency": expected an ISO 4217 code such as USD, got "US$"'],
    [
      { orderDate: "03/04/2026" },
      'field "orderDate": expected a date such as 2026-11-26, got "03/04/2026" (the order of day and month is ambiguous; write 2026-11-26)',
    ],
    [{ poNumber: undefined }, 'missing field "poNumber"'],
  ])("%j → %s", (override, reason) => {
    // Act / Assess
    expect(documentError(jsonPo(override))).toBe(reason);
  });

  it("points at the line and column of a JSON syntax error", () => {
    // Act
    const reason = documentError('{\n  "poNumber": "PO-1",\n  "orderDate" "2026-11-23"\n}');
    // Assess
    expect(reason).toMatch(/^invalid JSON at line 3, column 15 \(position 38\): \S/);
  });

  it("refuses a JSON array", () => {
    // Act / Assess
    expect(documentError(`[${jsonPo()}]`)).toMatch(/is an array; expected one purchase order object/);
  });

  it("turns a timestamp into the customer's date when given a time zone", () => {
    // Prepare: Friday 03:30 UTC is Thursday evening in Chicago
    const doc = enc(jsonPo({ orderDate: "2026-11-27T03:30:00Z" }));
    // Act
    const chicago = parseDocument(doc, "x.json", { timeZone: "America/Chicago" }).po.orderDate;
    const asWritten = parseDocument(doc, "x.json").po.orderDate;
    // Assess
    expect([chicago, asWritten]).toEqual(["2026-11-26", "2026-11-27"]);
  });
});

describe("parsing CSV", () => {
  const row = (cells: Partial<Record<string, string>>) => {
    const base: Record<string, string> = {
      po_number: "PO-9",
      order_date: "2026-11-23",
      buyer: "Buyer",
      supplier: "Lakeshore Office Supply",
      supplier_id: "PSV-0205",
      currency: "USD",
      line_id: "1",
      description: "Widget",
      quantity: "3",
      unit: "ea",
      unit_price: "19.99",
      line_amount: "59.97",
      total: "119.94",
      requested_delivery: "",
      notes: "",
    };
    return CSV_HEADER.split(",")
      .map((h) => cells[h] ?? base[h] ?? "")
      .join(",");
  };

  it("reads quoted fields with delimiters, doubled quotes and newlines", () => {
    // Prepare
    const csv = [
      CSV_HEADER,
      row({ description: '"Bolt, 3/8"" x 2"""' }),
      row({ line_id: "2", description: '"Two\nlines"' }),
    ].join("\n");
    // Act
    const { format, po } = parseDocument(enc(csv), "x.txt");
    // Assess
    expect(format).toBe("csv");
    expect(po.lines.map((l) => l.description)).toEqual(['Bolt, 3/8" x 2"', "Two\nlines"]);
    expect(po.totalMinor).toBe(11994);
  });

  it("detects `;` and reads decimal commas", () => {
    // Prepare
    const csv =
      "PO Number;Order Date;Buyer;Supplier;Currency;Description;Quantity;Unit;Unit Price;Total\nPO-7;2026-11-26;B;S;usd;Oil, hydraulic;2,5;L;19,99;49,98\n";
    // Act
    const { po } = parseDocument(enc(csv), "x.csv");
    // Assess
    expect(po.currency).toBe("USD");
    expect(po.lines[0]).toMatchObject({
      description: "Oil, hydraulic",
      quantity: "2.5",
      unitPriceMinor: 1999,
      amountMinor: 4998,
    });
    expect(po.totalMinor).toBe(4998);
  });

  it("handles a byte order mark and CRLF line ends", () => {
    // Prepare
    const csv = `\uFEFF${[CSV_HEADER, row({}), row({ line_id: "2" })].join("\r\n")}\r\n`;
    // Act
    const { po } = parseDocument(enc(csv), "x.csv");
    // Assess
    expect(po.poNumber).toBe("PO-9");
    expect(po.lines).toHaveLength(2);
  });

  it.each([
    [[row({}), row({ currency: "EUR" })], 'inconsistent currency: line 2 says "USD", line 3 says "EUR"'],
    [
      [row({}), row({ po_number: "PO-10" })],
      "the CSV document holds 2 purchase orders (PO-9, PO-10); a run reads one PO per document: send them one per file (po-agent extract shows each)",
    ],
    [[row({}), row({ total: "120.00" })], 'inconsistent total: line 2 says "119.94", line 3 says "120.00"'],
    [[row({ quantity: "" })], 'missing value for "quantity" on line 2'],
    [
      [row({ unit_price: "abc" })],
      'column "unit_price" on line 2: expected a plain decimal number such as 1234.50, got "abc"',
    ],
    [[row({ quantity: "-1" })], 'column "quantity" on line 2: a quantity cannot be negative, got -1'],
    [[], "the CSV has a header row but no order lines"],
  ])("rows %j → %s", (rows, reason) => {
    // Act / Assess
    expect(documentError([CSV_HEADER, ...rows].join("\n"))).toBe(reason);
  });

  it("names every missing header", () => {
    // Act
    const reason = documentError(
      "po_number,order_date,buyer,supplier,currency,description,unit\nPO-1,2026-11-23,B,S,USD,W,ea\n",
    );
    // Assess
    expect(reason).toMatch(/^the CSV is missing the headers "quantity", "unit_price" \(required columns: /);
  });

  it("reports an unclosed quote", () => {
    // Act / Assess
    expect(documentError(`${CSV_HEADER}\n${row({ description: '"unterminated' })}\n`)).toMatch(
      /^invalid CSV: Quote Not Closed/,
    );
  });
});

describe("documents that are not readable text", () => {
  it.each([
    [new Uint8Array(), "the document is empty (0 bytes)"],
    [enc(" \n\t\n"), "the document is empty (only whitespace)"],
    [new Uint8Array([0x7b, 0x00, 0x7d]), "the document is binary, not text (a zero byte at offset 1)"],
    [
      new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      "the document is not UTF-8 text (invalid byte sequence near offset 2); save it as UTF-8",
    ],
    [enc("%PDF-1.7\n..."), "the document is a PDF; it is read with readDocument()"],
    [new Uint8Array([0xff, 0xfe, 0x7b, 0x00]), "the document is UTF-16 text; save it as UTF-8"],
    [
      enc("Dear supplier, please send 10 widgets"),
      /^not a purchase order format we read: expected a JSON object or a CSV file with a header row/,
    ],
  ])("%#: %s", (bytes, reason) => {
    // Act / Assess
    expect(documentError(bytes)).toMatch(reason);
  });

  it("refuses a document over the size limit before reading it", () => {
    // Prepare
    const big = new Uint8Array(DEFAULTS.maxDocumentBytes + 1).fill(0x20);
    // Act / Assess
    expect(documentError(big)).toBe(
      `the document is ${DEFAULTS.maxDocumentBytes + 1} bytes, larger than the 10 MiB (10485760 bytes) limit`,
    );
  });

  it("accepts a document of exactly the limit", () => {
    // Prepare: a valid PO padded with trailing spaces to the limit
    const text = jsonPo();
    const bytes = new Uint8Array(DEFAULTS.maxDocumentBytes).fill(0x20);
    bytes.set(enc(text));
    // Act / Assess
    expect(parseDocument(bytes, "x.json").po.poNumber).toBe("PO-1");
  });
});

describe("validating", () => {
  const base = (): NormalizedPo => parseDocument(enc(jsonPo()), "x.json").po;
  const codes = (po: NormalizedPo, opts = {}) => validatePo(po, c37, opts).map((f) => f.code);

  it("a clean PO has no findings", () => {
    // Act / Assess
    expect(validatePo(base(), c37)).toEqual([]);
  });

  it("LINE_AMOUNT_MISMATCH names the arithmetic", () => {
    // Prepare
    const po = base();
    po.lines = [{ ...firstLine(po), amountMinor: 5979 }];
    po.totalMinor = 5979;
    // Act
    const findings = validatePo(po, c37);
    // Assess
    expect(findings).toEqual([
      {
        code: "LINE_AMOUNT_MISMATCH",
        severity: "error",
        message: "Line 1 (Widget): 3 × $19.99 = $59.97, but the line amount is $59.79 (off by -$0.18).",
        path: "lines[0].amountMinor",
      },
    ]);
  });

  it("TOTAL_MISMATCH", () => {
    // Prepare
    const po = { ...base(), totalMinor: 6997 };
    // Act
    const [finding] = validatePo(po, c37);
    // Assess
    expect(finding).toMatchObject({ code: "TOTAL_MISMATCH", severity: "error" });
    expect(finding?.message).toBe("The 1 line amounts add up to $59.97, but the PO total is $69.97 (off by $10.00).");
  });

  it("CURRENCY_MISMATCH is a warning", () => {
    // Act
    const [finding] = validatePo({ ...base(), currency: "EUR" }, c37);
    // Assess
    expect(finding).toMatchObject({ code: "CURRENCY_MISMATCH", severity: "warning" });
    expect(finding?.message).toContain("The PO is in EUR but Prairie State Components buys in USD");
  });

  it("UNKNOWN_SUPPLIER, including a known name with another id", () => {
    // Act
    const unknown = validatePo({ ...base(), supplier: { name: "Riverbend Tooling Co." } }, c37);
    const lookAlike = validatePo({ ...base(), supplier: { name: "Midwest Fasteners Inc", id: "X-1" } }, c37);
    // Assess
    expect(unknown).toEqual([
      {
        code: "UNKNOWN_SUPPLIER",
        severity: "warning",
        message: "Supplier Riverbend Tooling Co. is not on the vendor list of Prairie State Components.",
        path: "supplier",
      },
    ]);
    expect(lookAlike[0]?.message).toContain(
      "It has the name of vendor Midwest Fasteners, Inc. but not its id (PSV-0102).",
    );
  });

  it("DUPLICATE_PO_NUMBER names the earlier run", () => {
    // Act
    const [finding] = validatePo(base(), c37, { existingRunForPoNumber: "run-42" });
    // Assess
    expect(finding).toMatchObject({ code: "DUPLICATE_PO_NUMBER", severity: "error" });
    expect(finding?.message).toContain("already saved by run run-42");
  });

  it("MISSING_DELIVERY_DATE is info; DELIVERY_BEFORE_ORDER and UNREADABLE_DELIVERY_DATE warn", () => {
    // Prepare
    const { requestedDelivery: _, ...noDelivery } = base();
    // Act / Assess
    expect(validatePo(noDelivery, c37)).toMatchObject([{ code: "MISSING_DELIVERY_DATE", severity: "info" }]);
    expect(validatePo({ ...base(), requestedDelivery: "2026-11-01" }, c37)).toMatchObject([
      {
        code: "DELIVERY_BEFORE_ORDER",
        severity: "warning",
        message: "Delivery is requested for 2026-11-01, before the order date 2026-11-23.",
      },
    ]);
    expect(codes({ ...base(), requestedDelivery: "ASAP" })).toEqual(["UNREADABLE_DELIVERY_DATE"]);
  });

  it("DUPLICATE_LINE_ID, ZERO_QUANTITY, NON_POSITIVE_TOTAL, INVALID_ORDER_DATE", () => {
    // Prepare
    const po = base();
    const line = firstLine(po);
    const zero = { ...line, id: "1", quantity: "0", amountMinor: 0 };
    // Act / Assess
    expect(codes({ ...po, lines: [line, { ...line }], totalMinor: 11994 })).toEqual(["DUPLICATE_LINE_ID"]);
    expect(codes({ ...po, lines: [zero], totalMinor: 0 })).toEqual(["ZERO_QUANTITY", "NON_POSITIVE_TOTAL"]);
    expect(codes({ ...po, orderDate: "2026-02-30" })).toEqual(["INVALID_ORDER_DATE"]);
  });
});

describe("transforming", () => {
  it.each([
    ["each", "EA"],
    ["ea", "EA"],
    ["pcs", "H87"],
    ["Piece", "H87"],
    ["box", "BX"],
    ["kg", "KGM"],
    ["litre", "LTR"],
    ["metres", "MTR"],
    ["hour", "HUR"],
    ["pack", "PK"],
    ["roll", "RO"],
    [" KGM ", "KGM"],
    ["h87", "H87"],
    ["pallet", "pallet"],
  ])("unit %j → %s", (unit, code) => {
    // Act / Assess
    expect(normalizeUnit(unit)).toBe(code);
  });

  it.each([
    ["2026-11-26", "2026-11-26"],
    ["2026/11/26", "2026-11-26"],
    ["20261126", "2026-11-26"],
    ["26 Nov 2026", "2026-11-26"],
    ["Nov 26, 2026", "2026-11-26"],
    ["November 26 2026", "2026-11-26"],
    ["2026-11-26T10:00:00", "2026-11-26"],
    ["2026-02-30", undefined],
    ["11/26/2026", undefined],
  ])("date %j → %s", (text, iso) => {
    // Act / Assess
    expect(toIsoDate(text)).toBe(iso);
  });

  it("trims, uppercases the currency, normalizes units and dates, and leaves amounts alone", () => {
    // Prepare
    const po: NormalizedPo = {
      poNumber: " PO-1 ",
      orderDate: "2026-11-23",
      buyer: { name: "  Acme   Mfg " },
      supplier: { name: "Lakeshore  Office Supply ", id: " PSV-0205 " },
      currency: "usd",
      lines: [
        {
          id: " 1 ",
          description: " Copy  paper ",
          quantity: "2.5",
          unit: "pcs",
          unitPriceMinor: 1999,
          amountMinor: 4998,
        },
      ],
      totalMinor: 4998,
      requestedDelivery: "Dec 2, 2026",
      notes: "   ",
      source: { format: "json", document: "x.json" },
    };
    // Act
    const out = transformPo(po);
    // Assess
    expect(out).toEqual({
      poNumber: "PO-1",
      orderDate: "2026-11-23",
      buyer: { name: "Acme Mfg" },
      supplier: { name: "Lakeshore Office Supply", id: "PSV-0205" },
      currency: "USD",
      lines: [
        { id: "1", description: "Copy paper", quantity: "2.5", unit: "H87", unitPriceMinor: 1999, amountMinor: 4998 },
      ],
      totalMinor: 4998,
      requestedDelivery: "2026-12-02",
      source: { format: "json", document: "x.json" },
    });
    expect(transformPo(out)).toEqual(out);
  });
});

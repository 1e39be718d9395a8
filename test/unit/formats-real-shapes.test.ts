/**
 * Documents shaped like the public samples of standards bodies and parser projects (OASIS UBL,
 * OpenPEPPOL, cXML, X12 and EDIFACT test data, ERP CSV exports). The fixtures in
 * test/fixtures/formats are our own, written in their image.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCustomer } from "../../lambdas/shared/config/load.js";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import {
  type ParseOptions,
  PoDocumentError,
  parseOptionsFor,
  readDocument,
  readDocumentAll,
  readDocumentAt,
} from "../../lambdas/shared/po/parse.js";
import { parseDocument, parseDocumentAll } from "../../lambdas/shared/po/parse-text.js";
import { validatePo } from "../../lambdas/shared/po/validate.js";
import { extractCommand } from "../../local/extract-command.js";

const c37 = loadCustomer("customers", "customer37");
const fixture = (f: string) => new Uint8Array(readFileSync(`test/fixtures/formats/${f}`));
const enc = (s: string) => new TextEncoder().encode(s);
const codes = (po: Parameters<typeof validatePo>[0], customer = c37) => validatePo(po, customer).map((f) => f.code);

function refusal(bytes: Uint8Array, opts: ParseOptions = {}): PoDocumentError {
  try {
    parseDocumentAll(bytes, "doc", opts);
  } catch (err) {
    if (err instanceof PoDocumentError) return err;
    throw err;
  }
  throw new Error("expected a PoDocumentError");
}

async function extractJson(file: string, customer = "customer37") {
  const out: string[] = [];
  const code = await extractCommand(
    [file, "--json", "--customer", customer],
    { out: (l) => out.push(l), err: () => {} },
    "customers",
  );
  return { code, json: JSON.parse(out[0] ?? "null") as Record<string, unknown> };
}

describe("X12 850 as real trading partners send it", () => {
  it("a transaction set cut from its interchange (no ISA) is named as X12, not refused as a CSV", () => {
    // Prepare
    const bare = new TextDecoder()
      .decode(fixture("x12-850-shipto-only.edi"))
      .replace(/^ISA[^~]*~\s*/, "")
      .replace(/GS\*[^~]*~\s*/, "");
    // Act + Assess
    expect(() => parseDocumentAll(enc(bare), "bare.edi", {})).toThrow(/X12 850 without its ISA interchange header/);
  });

  it("ship-to loop only: the receiving customer is the buyer, the interchange receiver the supplier, both to confirm", () => {
    // Act
    const { po, lowConfidence } = parseDocument(fixture("x12-850-shipto-only.edi"), "a.edi", parseOptionsFor(c37));
    // Assess
    expect(po.buyer).toEqual({ name: "Prairie State Components", id: "PRAIRIESTATE" });
    expect(po.supplier).toEqual({ name: "CORNBELTHYD", ids: [{ scheme: "X12 ISA08 ZZ", value: "CORNBELTHYD" }] });
    expect(lowConfidence).toEqual(["buyer.name", "supplier.name"]);
    expect(po.source.fields).toContainEqual({
      field: "buyer.name",
      from: "the receiving customer (the 850 has no N1*BY name; sender PRAIRIESTATE)",
    });
    expect(po.totalMinor).toBe(130200);
    // The policy sees the implied parties: a human confirms them.
    expect(codes(po)).toEqual(expect.arrayContaining(["LOW_CONFIDENCE_FIELDS", "UNKNOWN_SUPPLIER"]));
  });

  it("without a receiving customer the ship-to name stands in for the buyer", () => {
    // Act
    const { po } = parseDocument(fixture("x12-850-shipto-only.edi"), "a.edi");
    // Assess
    expect(po.buyer.name).toBe("Prairie State Components Plant 2");
    expect(po.source.lowConfidence).toContain("buyer.name");
  });

  it("a vendor given only by id is named from the customer's vendor list", () => {
    // Act
    const { po, lowConfidence } = parseDocument(fixture("x12-850-ids-only.edi"), "b.edi", parseOptionsFor(c37));
    // Assess
    expect(po.supplier).toEqual({ name: "Lakeshore Office Supply", id: "PSV-0205" });
    expect(po.buyer).toEqual({ name: "Prairie State Components", id: "PSC" });
    // No CUR segment either: USD is X12's default, flagged too.
    expect(lowConfidence).toEqual(["currency", "buyer.name", "supplier.name"]);
    expect(po.currency).toBe("USD");
    // Known vendor: no UNKNOWN_SUPPLIER, but the low-confidence reading still goes to a human.
    expect(codes(po)).not.toContain("UNKNOWN_SUPPLIER");
    expect(codes(po)).toContain("LOW_CONFIDENCE_FIELDS");
  });

  it("AMT*1 (line and line-item total) and AMT*TT are stated totals: a contradiction is flagged, not corrected", () => {
    // Act
    const { po } = parseDocument(fixture("x12-850-stated-totals.edi"), "c.edi", parseOptionsFor(c37));
    // Assess
    expect(po.totals?.lineTotalMinor).toBe(216000);
    expect(po.totalMinor).toBe(206000);
    expect(po.lines.map((l) => l.amountMinor)).toEqual([164800, 41200]);
    const findings = validatePo(po, c37);
    expect(findings).toContainEqual(
      expect.objectContaining({ code: "LINE_TOTAL_MISMATCH", severity: "error", path: "totals.lineTotalMinor" }),
    );
    expect(findings.map((f) => f.code)).not.toContain("TOTAL_MISMATCH");
  });

  it("an AMT*1 line amount that disagrees with quantity × price is flagged", () => {
    // Prepare
    const text = new TextDecoder().decode(fixture("x12-850-stated-totals.edi")).replace("AMT*1*412.00", "AMT*1*421.00");
    // Act
    const { po } = parseDocument(enc(text), "c.edi");
    // Assess
    expect(po.lines[1]?.amountMinor).toBe(42100);
    expect(codes(po)).toContain("LINE_AMOUNT_MISMATCH");
  });

  it("an interchange with three 850s is three POs, each with its position", () => {
    // Act
    const all = parseDocumentAll(fixture("x12-850-batch-three.edi"), "batch.edi", parseOptionsFor(c37));
    // Assess
    expect(all.map((p) => [p.position, p.po.poNumber, p.po.totalMinor])).toEqual([
      [1, "PSC-4502130", 1350000],
      [2, "PSC-4502131", 122000],
      [3, "PSC-4502132", 106800],
    ]);
    expect(all[1]?.po.source.position).toEqual({ index: 2, of: 3, label: "850 #0002 (PO PSC-4502131)" });
    // The ship-from loop names the seller of the second, flagged.
    expect(all[1]?.po.supplier.name).toBe("Midwest Fasteners, Inc.");
    expect(all[1]?.lowConfidence).toEqual(["currency", "supplier.name"]);
    expect(all[0]?.lowConfidence).toEqual(["currency"]);
    // Each is consistent on its own.
    for (const p of all) expect(validatePo(p.po, c37).filter((f) => f.severity === "error")).toEqual([]);
  });

  it("the single-PO reading refuses a batch, naming its POs, so none is dropped", () => {
    // Act / Assess
    expect(() => parseDocument(fixture("x12-850-batch-three.edi"), "batch.edi")).toThrow(
      "the X12 document holds 3 purchase orders (PSC-4502130, PSC-4502131, PSC-4502132); a run reads one PO per document: send them one per file (po-agent extract shows each)",
    );
  });

  it("a wrong SE segment count in one 850 of a batch refuses the file, naming the set", () => {
    // Act
    const err = refusal(fixture("x12-850-batch-bad-se-count.edi"));
    // Assess
    expect(err.message).toBe(
      "the X12 850 #0002's SE01 says 11 segments but ST…SE holds 10 (segments lost or added in transit?)",
    );
    expect(err.format).toBe("x12");
  });

  it("a wrong GE01 set count is refused", () => {
    // Prepare
    const text = new TextDecoder().decode(fixture("x12-850-batch-three.edi")).replace("GE*3*", "GE*2*");
    // Act / Assess
    expect(refusal(enc(text)).message).toMatch(
      /^the X12 GE01 \(segment \d+\) says 2 transaction sets but its group holds 3/,
    );
  });

  it("a file with no PO is refused clearly", () => {
    // Act / Assess
    expect(refusal(fixture("x12-997-no-po.edi")).message).toBe(
      "the X12 interchange holds transaction set 997, not an 850 purchase order",
    );
  });
});

describe("po-agent extract --json on real shapes", () => {
  it("reports the detected format and every missing field on failure", async () => {
    // Prepare: an 850 with neither PO number nor date in BEG
    const text = new TextDecoder()
      .decode(fixture("x12-850-ids-only.edi"))
      .replace("BEG*00*SA*PSC-4502120**20261124", "BEG*00*SA***");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "po-i13-")), "x.edi");
    writeFileSync(file, text);
    // Act
    const { code, json } = await extractJson(file);
    // Assess
    expect(code).toBe(2);
    expect(json).toMatchObject({
      format: "x12",
      po: null,
      missing: ["missing PO number (BEG03 (segment 4))", "missing PO date (BEG05 (segment 4))"],
    });
  });

  it("prints every PO of a batch with its own findings", async () => {
    // Act
    const { code, json } = await extractJson("test/fixtures/formats/x12-850-batch-three.edi");
    // Assess
    expect(code).toBe(0);
    const pos = json.pos as { position: number; po: { poNumber: string }; findings: { code: string }[] }[];
    expect(pos.map((p) => p.po.poNumber)).toEqual(["PSC-4502130", "PSC-4502131", "PSC-4502132"]);
    expect(pos[1]?.findings.map((f) => f.code)).toContain("LOW_CONFIDENCE_FIELDS");
  });
});

const acme = loadCustomer("customers", "acme");
const textOf = (f: string) => new TextDecoder().decode(fixture(f));

describe("UBL / Peppol BIS 3 orders", () => {
  it("applies line allowances and charges, honours PrepaidAmount and PayableRoundingAmount: consistent, not rejected", () => {
    // Act
    const { po } = parseDocument(fixture("ubl-peppol-order-line-allowances.xml"), "peppol.xml", parseOptionsFor(acme));
    // Assess
    expect(po.lines.map((l) => l.amountMinor)).toEqual([570000, 20000, 20000]);
    expect(po.lines[0]?.allowances).toEqual([{ reason: "Volume discount 5%", code: "95", amountMinor: 30000 }]);
    expect(po.lines[1]?.charges).toEqual([{ reason: "Packaging", code: "ABL", amountMinor: 2000 }]);
    // The price-level discount only explains the net price: not applied again.
    expect(po.lines[0]?.unitPriceMinor).toBe(5000);
    expect(po.totals).toMatchObject({ taxInclusiveMinor: 768750, prepaidMinor: 100000, roundingMinor: 50 });
    expect(po.totalMinor).toBe(668800);
    expect(validatePo(po, acme).filter((f) => f.severity === "error")).toEqual([]);
  });

  it("a line without LineExtensionAmount gets quantity × price ± its allowances and charges", () => {
    // Prepare
    const xml = textOf("ubl-peppol-order-line-allowances.xml").replace(
      '<cbc:LineExtensionAmount currencyID="EUR">5700.00</cbc:LineExtensionAmount>',
      "",
    );
    // Act
    const { po } = parseDocument(enc(xml), "peppol.xml");
    // Assess
    expect(po.lines[0]?.amountMinor).toBe(570000);
    expect(codes(po, acme)).not.toContain("LINE_AMOUNT_MISMATCH");
  });

  it("a payable amount that ignores the prepayment is still flagged", () => {
    // Prepare
    const xml = textOf("ubl-peppol-order-line-allowances.xml").replace(
      '<cbc:PayableAmount currencyID="EUR">6688.00</cbc:PayableAmount>',
      '<cbc:PayableAmount currencyID="EUR">7688.00</cbc:PayableAmount>',
    );
    // Act
    const findings = validatePo(parseDocument(enc(xml), "peppol.xml").po, acme);
    // Assess
    expect(findings).toContainEqual(expect.objectContaining({ code: "TOTAL_MISMATCH", severity: "error" }));
    expect(findings.find((f) => f.code === "TOTAL_MISMATCH")?.message).toContain("€1,000.00 is prepaid");
  });

  it("a stated line amount that contradicts its allowance is flagged, not corrected", () => {
    // Prepare
    const xml = textOf("ubl-peppol-order-line-allowances.xml").replace(
      '<cbc:Amount currencyID="EUR">300.00</cbc:Amount>',
      '<cbc:Amount currencyID="EUR">310.00</cbc:Amount>',
    );
    // Act
    const { po } = parseDocument(enc(xml), "peppol.xml");
    // Assess
    expect(po.lines[0]?.amountMinor).toBe(570000);
    expect(codes(po, acme)).toContain("LINE_AMOUNT_MISMATCH");
  });
});

describe("cXML OrderRequest", () => {
  it("reads the header requestedDeliveryDate and keeps the calendar date of midnight stamps", () => {
    // Act: customer37 is in America/Chicago, where 2026-12-10T00:00:00Z is still 9 December
    const { po } = parseDocument(fixture("cxml-header-delivery-midnight.xml"), "o.xml", parseOptionsFor(c37));
    // Assess
    expect(po.requestedDelivery).toBe("2026-12-10");
    expect(po.orderDate).toBe("2026-11-24");
    expect(po.source.fields).toContainEqual({
      field: "requestedDelivery",
      from: "OrderRequestHeader/@requestedDeliveryDate",
    });
    expect(codes(po)).not.toContain("MISSING_DELIVERY_DATE");
  });

  it("a timestamp with a time of day is still the date in the customer's zone", () => {
    // Prepare: 03:30 UTC on the 24th is the evening of the 23rd in Chicago
    const xml = textOf("cxml-header-delivery-midnight.xml").replace(
      'orderDate="2026-11-24T00:00:00+01:00"',
      'orderDate="2026-11-24T03:30:00Z"',
    );
    // Act / Assess
    expect(parseDocument(enc(xml), "o.xml", parseOptionsFor(c37)).po.orderDate).toBe("2026-11-23");
  });
});

describe("CSV as ERP systems export it", () => {
  it("semicolons, decimal commas with thousands dots, synonym headers, no buyer and no total", () => {
    // Act
    const { po, lowConfidence } = parseDocument(
      fixture("csv-erp-export-semicolon-decimal-comma.csv"),
      "export.csv",
      parseOptionsFor(c37),
    );
    // Assess
    expect(po.poNumber).toBe("PSC-4502150");
    expect(po.supplier).toEqual({ name: "Cornbelt Hydraulics LLC", id: "PSV-0311" });
    expect(po.lines.map((l) => [l.quantity, l.unitPriceMinor, l.amountMinor])).toEqual([
      ["250", 485, 121250],
      ["120", 310, 37200],
      ["2", 41200, 82400],
    ]);
    expect(po.requestedDelivery).toBe("2026-12-14");
    // Computed total and the receiving customer as buyer, each said so.
    expect(po.totalMinor).toBe(240850);
    expect(po.source.fields).toContainEqual({
      field: "totalMinor",
      from: "computed: the sum of the line amounts = 2408.50 (no total column)",
    });
    expect(po.buyer.name).toBe("Prairie State Components");
    expect(lowConfidence).toEqual(["buyer.name"]);
    expect(po.source.fields).toContainEqual({ field: "lines[].quantity", from: 'column "Qty" (read as quantity)' });
    expect(validatePo(po, c37).filter((f) => f.severity === "error")).toEqual([]);
  });

  it("without a receiving customer a CSV with no buyer column names the missing buyer", () => {
    // Act / Assess
    expect(refusal(fixture("csv-erp-export-semicolon-decimal-comma.csv")).missing).toEqual([
      'missing buyer: the CSV has no "buyer" column (or customer, bill_to)',
    ]);
  });

  it("a CSV with several PO numbers is several POs, rows grouped by PO number", () => {
    // Act
    const all = parseDocumentAll(fixture("csv-erp-export-two-pos.csv"), "two.csv", parseOptionsFor(c37));
    // Assess
    expect(all.map((p) => [p.position, p.po.poNumber, p.po.lines.length, p.po.totalMinor])).toEqual([
      [1, "PSC-4502160", 2, 525000],
      [2, "PSC-4502161", 2, 50100],
    ]);
    expect(all[0]?.po.lines[0]?.amountMinor).toBe(450000);
    expect(all[1]?.po.source.position).toEqual({ index: 2, of: 2, label: "PO PSC-4502161" });
    for (const p of all) expect(validatePo(p.po, c37).filter((f) => f.severity === "error")).toEqual([]);
  });

  it("headers no synonym covers: the error names them and the config setting that maps them", () => {
    // Act
    const err = refusal(fixture("csv-custom-headers.csv"), parseOptionsFor(c37));
    // Assess
    expect(err.message).toMatch(
      /^the CSV is missing the headers "po_number", "order_date", "supplier", "currency", "description", "quantity", "unit_price" /,
    );
    expect(err.message).toContain('headers not recognised: "Bestellnummer", "Bestelldatum", "Lieferant", "Währung"');
    expect(err.message).toContain('formats.csv.columns: { po_number: "<header>" }');
    expect(err.format).toBe("csv");
    expect(err.missing).toHaveLength(7);
  });

  it("the customer's column mapping reads them", () => {
    // Prepare
    const mapped = CustomerConfig.parse({
      ...c37,
      formats: {
        csv: {
          columns: {
            po_number: "Bestellnummer",
            order_date: "Bestelldatum",
            supplier: "Lieferant",
            currency: "Währung",
            description: "Artikelbezeichnung",
            quantity: "Menge",
            unit: "Einheit",
            unit_price: "Einzelpreis",
          },
        },
      },
    });
    // Act
    const { po } = parseDocument(fixture("csv-custom-headers.csv"), "de.csv", parseOptionsFor(mapped));
    // Assess
    expect(po.supplier.name).toBe("Tri-County Electrical Wholesale");
    expect(po.lines.map((l) => [l.quantity, l.unit, l.unitPriceMinor])).toEqual([
      ["30", "BX", 790],
      ["25", "EA", 420],
    ]);
    expect(po.totalMinor).toBe(34200);
  });

  it("the config refuses a mapping for a column that does not exist", () => {
    // Act
    const res = CustomerConfig.safeParse({ ...c37, formats: { csv: { columns: { qty: "Menge" } } } });
    // Assess
    expect(res.success).toBe(false);
  });

  it("two headers that both read as one column are refused with the way out", () => {
    // Prepare
    const csv =
      "po_number,order_date,supplier,currency,description,qty,quantity,unit_price\nP-1,2026-11-26,S,USD,W,1,2,3.00\n";
    // Act / Assess
    expect(refusal(enc(csv)).message).toBe(
      'the CSV headers "qty" and "quantity" both read as "quantity"; say which one is meant in the customer config: formats.csv.columns: { quantity: "<header>" }',
    );
  });

  it("prose with a few commas is still not a CSV", () => {
    // Act / Assess
    expect(
      refusal(enc("Standard terms: net 30, goods remain ours until paid.\nThank you, see you.\n")).message,
    ).toMatch(/^not a purchase order format we read/);
  });
});

/** A PO laid out like many ERP print forms: headings on their own line, values below, `No.` under the title. */
async function headingPdf(): Promise<Uint8Array> {
  const { PDFDocument, StandardFonts } = await import("pdf-lib");
  const doc = await PDFDocument.create();
  const page = doc.addPage([612, 792]);
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  const t = (s: string, x: number, y: number, f = font, size = 10) => page.drawText(s, { x, y, size, font: f });
  t("HUDSON VALLEY PACKAGING", 50, 740, bold, 14);
  t("PURCHASE ORDER", 400, 740, bold, 14);
  t("No. P00342", 400, 722);
  t("DATE", 400, 700, bold);
  t("2026-11-27", 400, 686);
  t("VENDOR", 50, 650, bold);
  t("BUYER", 300, 650, bold);
  t("Hudson Valley Packaging", 50, 636);
  t("Acme Manufacturing", 300, 636);
  t("77 River Road, Kingston NY", 50, 622);
  t("400 Foundry Road, Allentown PA", 300, 622);
  t("CURRENCY", 50, 596, bold);
  t("USD", 50, 582);
  const cols = [50, 80, 330, 380, 420, 500];
  ["Line", "Description", "Qty", "Unit", "Unit Price", "Amount"].forEach((h, i) => {
    t(h, cols[i] ?? 0, 550, bold);
  });
  [
    ["1", "Corrugated box 18x12x10, 200#", "500", "EA", "1.85", "925.00"],
    ["2", "Stretch film 18 in, 80 ga", "24", "RO", "21.50", "516.00"],
  ].forEach((r, i) => {
    r.forEach((c, j) => {
      t(c, cols[j] ?? 0, 530 - i * 16);
    });
  });
  t("Total", 420, 480, bold);
  t("1,441.00", 500, 480);
  return doc.save({ useObjectStreams: false });
}

describe("PDF print forms", () => {
  it("reads headings on their own line and a No. P00342 number under the title", async () => {
    // Act
    const { po, lowConfidence } = await readDocument(await headingPdf(), "p00342.pdf", parseOptionsFor(acme));
    // Assess
    expect(po.poNumber).toBe("P00342");
    expect(po.orderDate).toBe("2026-11-27");
    expect(po.supplier.name).toBe("Hudson Valley Packaging");
    expect(po.buyer.name).toBe("Acme Manufacturing");
    expect(po.currency).toBe("USD");
    expect(po.lines.map((l) => l.amountMinor)).toEqual([92500, 51600]);
    expect(po.totalMinor).toBe(144100);
    expect(po.source.fields).toContainEqual({
      field: "supplier.name",
      from: 'heading "VENDOR" (value on the line below)',
    });
    expect(lowConfidence).toBeUndefined();
    expect(validatePo(po, acme).filter((f) => f.severity !== "info")).toEqual([]);
  });
});

describe("EDIFACT ORDERS", () => {
  it("D96A with UNA: recognised by content and read, release characters honoured", () => {
    // Act
    const { format, po, lowConfidence } = parseDocument(
      fixture("edifact-orders-d96a.edi"),
      "upload.txt",
      parseOptionsFor(c37),
    );
    // Assess
    expect(format).toBe("edifact");
    expect(po).toMatchObject({
      poNumber: "PSC-4502180",
      orderDate: "2026-11-30",
      requestedDelivery: "2026-12-11",
      currency: "USD",
      buyer: { name: "Prairie State Components", id: "5412345000013" },
      supplier: { name: "Cornbelt Hydraulics LLC", id: "PSV-0311" },
      totalMinor: 206000,
      notes: "Call ahead: gate 2, Jim's extension 214",
    });
    expect(po.lines.map((l) => [l.id, l.description, l.quantity, l.unit, l.unitPriceMinor, l.amountMinor])).toEqual([
      ["1", "Gear pump 11 cc/rev", "4", "PCE", 41200, 164800],
      ["2", "Pump seal kit", "4", "PCE", 10300, 41200],
    ]);
    expect(lowConfidence).toBeUndefined();
    expect(validatePo(po, c37).filter((f) => f.severity !== "info")).toEqual([]);
  });

  it("D01B with a decimal comma, two ORDERS in one interchange, a line allowance, a supplier by id only", () => {
    // Act
    const all = parseDocumentAll(
      fixture("edifact-orders-d01b-two-messages-decimal-comma.edi"),
      "orders.edi",
      parseOptionsFor(c37),
    );
    // Assess
    expect(all.map((p) => [p.position, p.po.poNumber, p.po.totalMinor])).toEqual([
      [1, "PSC-4502190", 1296250],
      [2, "PSC-4502191", 38500],
    ]);
    const [first, second] = all;
    expect(first?.po.lines[0]).toMatchObject({
      quantity: "2.5",
      unitPriceMinor: 230000,
      amountMinor: 546250,
      allowances: [{ reason: "Mill volume discount", code: "DI", amountMinor: 28750 }],
    });
    expect(first?.po.requestedDelivery).toBe("2026-12-14");
    expect(
      validatePo(first?.po as Parameters<typeof validatePo>[0], c37).filter((f) => f.severity === "error"),
    ).toEqual([]);
    expect(second?.po.supplier).toEqual({ name: "Lakeshore Office Supply", id: "PSV-0205" });
    expect(second?.lowConfidence).toEqual(["buyer.name", "supplier.name"]);
    expect(second?.po.source.position?.label).toBe("ORDERS 2 (PO PSC-4502191)");
  });

  it("honours other service characters declared in UNA", () => {
    // Prepare: component |, element *, decimal comma, release !, terminator ~
    const edi = [
      "UNA|*,! ~",
      "UNB*UNOC|3*SENDER*RECEIVER*261201|0900*R1~",
      "UNH*1*ORDERS|D|96A|UN~",
      "BGM*220*PO!*77*9~",
      "DTM*137|20261201|102~",
      "NAD*BY*BUY1||92**Buyer!|Co~",
      "NAD*SU*V-1||92**Seller!~Sons~",
      "CUX*2|EUR|9~",
      "LIN*1~",
      "IMD*F**|||Widget~",
      "QTY*21|3~",
      "PRI*AAA|2,50~",
      "UNS*S~",
      "MOA*86|7,50~",
      "UNT*13*1~",
      "UNZ*1*R1~",
    ].join("\n");
    // Act
    const { po } = parseDocument(enc(edi), "x.edi");
    // Assess
    expect(po).toMatchObject({
      poNumber: "PO*77",
      buyer: { name: "Buyer|Co" },
      supplier: { name: "Seller~Sons" },
      currency: "EUR",
      totalMinor: 750,
    });
    expect(po.lines[0]).toMatchObject({
      description: "Widget",
      quantity: "3",
      unit: "C62",
      unitPriceMinor: 250,
      amountMinor: 750,
    });
  });

  it("a wrong UNT segment count is refused clearly", () => {
    // Act
    const err = refusal(fixture("edifact-orders-bad-unt.edi"));
    // Assess
    expect(err.message).toBe(
      "the EDIFACT message 1's UNT says 26 segments but UNH…UNT holds 25 (segments lost or added in transit?)",
    );
    expect(err.format).toBe("edifact");
  });

  it.each([
    [
      "an interchange with no ORDERS",
      "UNB+UNOC:3+A+B+261201:0900+R1'UNH+1+INVOIC:D:96A:UN'BGM+380+INV1'UNT+3+1'UNZ+1+R1'",
      "the EDIFACT interchange holds INVOIC, not an ORDERS purchase order",
    ],
    [
      "a truncated interchange",
      "UNB+UNOC:3+A+B+261201:0900+R1'UNH+1+ORDERS:D:96A:UN'BGM+220+P1+9'",
      "the EDIFACT interchange is truncated: no UNZ segment (the file ends at segment 3, BGM)",
    ],
    [
      "a wrong UNZ count",
      "UNB+UNOC:3+A+B+261201:0900+R1'UNH+1+ORDERS:D:96A:UN'BGM+220+P1+9'DTM+137:20261201:102'CUX+2:USD:9'LIN+1'QTY+21:1'PRI+AAA:1'UNS+S'UNT+9+1'UNZ+2+R1'",
      "the EDIFACT UNZ says 2 messages but the interchange holds 1 (messages lost or added in transit?)",
    ],
  ])("%s is refused", (_what, edi, reason) => {
    // Act / Assess
    expect(refusal(enc(edi)).message).toBe(reason);
  });
});

describe("one document, many POs", () => {
  it("an email with two PO attachments is two POs, each naming its attachment", async () => {
    // Act
    const all = await readDocumentAll(fixture("email-two-po-attachments.eml"), "two.eml", parseOptionsFor(acme));
    // Assess
    expect(all.map((p) => [p.position, p.format, p.po.poNumber, p.po.source.container?.part])).toEqual([
      [1, "email", "ACM-PO-22901", "ACM-PO-22901.csv"],
      [2, "email", "ACM-PO-22902", "ACM-PO-22902.csv"],
    ]);
    expect(all[1]?.po.source.position).toEqual({ index: 2, of: 2, label: "ACM-PO-22902.csv: PO ACM-PO-22902" });
    expect(all[0]?.thread?.messages).toHaveLength(1);
  });

  it("the single-PO reading refuses it, naming both, so the run fails with a reason rather than dropping one", async () => {
    // Act / Assess
    await expect(readDocument(fixture("email-two-po-attachments.eml"), "two.eml")).rejects.toThrow(
      "the EMAIL document holds 2 purchase orders (ACM-PO-22901, ACM-PO-22902); a run reads one PO per document: send them one per file (po-agent extract shows each)",
    );
  });

  it("readDocumentAt reads one PO of a batch by position, and refuses a position that is not there", async () => {
    // Act
    const second = await readDocumentAt(fixture("x12-850-batch-three.edi"), "batch.edi", 2, parseOptionsFor(c37));
    // Assess
    expect(second.po.poNumber).toBe("PSC-4502131");
    await expect(readDocumentAt(fixture("x12-850-batch-three.edi"), "batch.edi", 4)).rejects.toThrow(
      "the document holds 3 purchase orders; there is none at position 4",
    );
  });
});

describe("X12 SAC in a PO1 loop", () => {
  it("is the line's own allowance, part of its net amount, and the totals still add up", () => {
    // Prepare: a 2% promotional allowance on line 1 of the first 850 (SE01 adjusted)
    const text = textOf("x12-850-batch-three.edi")
      .replace(
        "PID*F****Cold rolled steel sheet, 16 ga~",
        "PID*F****Cold rolled steel sheet, 16 ga~\nSAC*A*C310***27000**********Promotion~",
      )
      .replace("AMT*TT*13500.00~\nSE*9*0001", "AMT*TT*13230.00~\nSE*10*0001");
    // Act
    const [first] = parseDocumentAll(enc(text), "batch.edi");
    // Assess
    expect(first?.po.lines[0]).toMatchObject({
      amountMinor: 1323000,
      allowances: [{ reason: "Promotion", code: "C310", amountMinor: 27000 }],
    });
    expect(first?.po.allowances).toBeUndefined();
    expect(codes(first?.po as Parameters<typeof validatePo>[0]).filter((c) => /MISMATCH/.test(c))).toEqual([]);
  });
});

describe("CSV dates in a decimal-comma export", () => {
  it("reads 26.11.2026 as day.month.year there, and says so", () => {
    // Prepare
    const csv = textOf("csv-erp-export-semicolon-decimal-comma.csv")
      .replaceAll(";2026-11-26;", ";26.11.2026;")
      .replaceAll(";2026-12-14", ";14.12.2026");
    // Act
    const { po } = parseDocument(enc(csv), "export.csv", parseOptionsFor(c37));
    // Assess
    expect([po.orderDate, po.requestedDelivery]).toEqual(["2026-11-26", "2026-12-14"]);
    expect(po.source.fields).toContainEqual({
      field: "orderDate",
      from: 'column "Date" (read as order_date) as day.month.year (a decimal-comma export)',
    });
  });

  it("a slashed numeric date stays refused as ambiguous", () => {
    // Prepare
    const csv = textOf("csv-erp-export-semicolon-decimal-comma.csv").replaceAll(";2026-11-26;", ";03/04/2026;");
    // Act / Assess
    expect(refusal(enc(csv), parseOptionsFor(c37)).message).toMatch(/the order of day and month is ambiguous/);
  });
});

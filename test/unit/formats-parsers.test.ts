import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCustomer } from "../../lambdas/shared/config/load.js";
import { DEFAULTS } from "../../lambdas/shared/constants.js";
import { DocumentError } from "../../lambdas/shared/errors.js";
import { buildExtractionContent, readExtractionAnswer } from "../../lambdas/shared/po/claude-extract.js";
import { detect } from "../../lambdas/shared/po/detect.js";
import type { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { readDocument, readDocumentAll } from "../../lambdas/shared/po/parse.js";
import { parseDocumentAll } from "../../lambdas/shared/po/parse-text.js";
import { transformPo } from "../../lambdas/shared/po/transform.js";
import { validatePo } from "../../lambdas/shared/po/validate.js";
import { extractCommand } from "../../local/extract-command.js";
import { textPdf } from "../fixtures/formats/make-samples.js";

const acme = loadCustomer("customers", "acme");
const c37 = loadCustomer("customers", "customer37");
const enc = (s: string) => new TextEncoder().encode(s);
const sample = (f: string) => new Uint8Array(readFileSync(`samples/${f}`));
const text = (f: string) => readFileSync(`samples/${f}`, "utf8");

async function reason(bytes: Uint8Array | string, name = "doc.bin"): Promise<string> {
  try {
    await readDocument(typeof bytes === "string" ? enc(bytes) : bytes, name);
  } catch (err) {
    if (err instanceof DocumentError) return err.message;
    throw err;
  }
  throw new Error("expected a DocumentError");
}

describe("every new sample is detected by content and read", () => {
  it.each([
    ["acme/05-ubl-order-saved.xml", "ubl", "ubl", 291044, 3, acme],
    ["acme/06-cxml-order-needs-approval.xml", "cxml", "cxml", 648000, 3, acme],
    ["acme/07-x12-850-saved.edi", "x12", "x12", 214014, 3, acme],
    ["acme/08-pdf-text-layer-saved.pdf", "pdf", "pdf", 374710, 4, acme],
    ["acme/09-email-thread-csv-attachment-saved.eml", "email", "csv", 129400, 2, acme],
    ["customer37/09-x12-850-pipe-separated-monday.x12", "x12", "x12", 217000, 3, c37],
  ] as const)("%s → %s", async (file, format, sourceFormat, totalMinor, lineCount, customer) => {
    // Act: a misleading name proves detection looks at the content
    const parsed = await readDocument(sample(file), "upload.txt");
    // Assess
    expect(parsed.format).toBe(format);
    expect(parsed.po.source.format).toBe(sourceFormat);
    expect(parsed.po.totalMinor).toBe(totalMinor);
    expect(parsed.po.lines).toHaveLength(lineCount);
    expect(validatePo(parsed.po, customer).filter((f) => f.severity !== "info")).toEqual([]);
  });

  it("the text formats read the same synchronously (every parser imported) as when each parser loads on first use", async () => {
    // Arrange: every text sample and fixture, the refused ones included
    const dirs = ["samples/acme", "samples/customer37", "test/fixtures/formats"];
    const files = dirs.flatMap((d) => readdirSync(d).map((f) => join(d, f)));
    const outcome = async (read: () => unknown) => {
      try {
        return { read: await read() };
      } catch (err) {
        if (err instanceof DocumentError) return { refused: err.message };
        throw err;
      }
    };
    let compared = 0;
    for (const file of files) {
      const bytes = new Uint8Array(readFileSync(file));
      let kind: string;
      try {
        kind = detect(bytes).kind;
      } catch {
        continue;
      }
      if (kind !== "text") continue;
      // Act
      const sync = await outcome(() => parseDocumentAll(bytes, file, { timeZone: acme.timeZone }));
      const lazy = await outcome(() => readDocumentAll(bytes, file, { timeZone: acme.timeZone }));
      // Assess
      expect(lazy, file).toEqual(sync);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(20);
  });
});

describe("UBL 2.1 Order", () => {
  it("maps parties, charges, allowances, tax and the stated totals", async () => {
    // Act
    const { po } = await readDocument(sample("acme/05-ubl-order-saved.xml"), "o.xml");
    // Assess
    expect(po.supplier).toEqual({
      name: "Keystone Fasteners, Inc.",
      id: "V-1002",
      ids: [{ scheme: "DUNS", value: "079468821" }],
    });
    expect(po.charges).toEqual([{ reason: "Freight", code: "FC", amountMinor: 8500 }]);
    expect(po.allowances).toEqual([{ reason: "Volume discount 2%", code: "95", amountMinor: 5430 }]);
    expect(po.tax).toEqual({ amountMinor: 16474, rate: "6.0" });
    expect(po.totals).toEqual({
      lineTotalMinor: 271500,
      chargeTotalMinor: 8500,
      allowanceTotalMinor: 5430,
      taxExclusiveMinor: 274570,
      taxMinor: 16474,
      taxInclusiveMinor: 291044,
    });
    expect(po.source.fields).toContainEqual({ field: "totalMinor", from: "AnticipatedMonetaryTotal/PayableAmount" });
  });

  it("refuses truncated XML with the line, a DTD with entities, and a foreign root", async () => {
    // Prepare
    const ubl = text("acme/05-ubl-order-saved.xml");
    // Act / Assess
    expect(await reason(ubl.slice(0, 1500))).toMatch(
      /^invalid XML at line 30, column \d+: .* \(the document ends there: truncated\?\)$/,
    );
    expect(await reason(ubl.slice(0, ubl.indexOf("</Order>")))).toMatch(
      /^invalid XML at line \d+.*Order.*truncated\?\)$/,
    );
    expect(await reason('<?xml version="1.0"?><!DOCTYPE Order [<!ENTITY a "aaaa">]><Order/>')).toMatch(
      /internal DTD subset .* entity expansion/,
    );
    expect(await reason("<Invoice xmlns='urn:x'><ID>1</ID></Invoice>")).toBe(
      "the XML document's root element is <Invoice>; expected a cXML OrderRequest (<cXML>) or a UBL 2 <Order>",
    );
    expect(await reason("<Order><ID>1</ID></Order>")).toMatch(/not in the UBL 2 Order namespace/);
  });

  it("names a line that is missing its price", async () => {
    // Prepare
    const ubl = text("acme/05-ubl-order-saved.xml").replace(
      '<cac:Price><cbc:PriceAmount currencyID="USD">18.50</cbc:PriceAmount></cac:Price>',
      "",
    );
    // Act / Assess
    expect(await reason(ubl)).toBe("missing unitPrice (OrderLine[2]/LineItem/Price/PriceAmount)");
  });
});

describe("cXML OrderRequest", () => {
  it("computes the payable total from Total + Shipping + Tax and says so", async () => {
    // Act
    const { po } = await readDocument(sample("acme/06-cxml-order-needs-approval.xml"), "o.xml");
    // Assess
    expect(po.totals?.lineTotalMinor).toBe(600000);
    expect(po.charges).toEqual([{ reason: "Ground freight", amountMinor: 12000 }]);
    expect(po.tax?.amountMinor).toBe(36000);
    expect(po.supplier.id).toBe("V-1004");
    expect(po.orderDate).toBe("2026-11-20");
    expect(po.source.fields?.find((f) => f.field === "totalMinor")?.from).toMatch(/^computed: Total \+ Shipping/);
  });

  it("flags a supplier known only by its network id, and refuses other requests", async () => {
    // Prepare
    const cxml = text("acme/06-cxml-order-needs-approval.xml");
    const noName = cxml.replace(/<Contact role="supplierCorporate">.*<\/Contact>/, "");
    const invoice = '<?xml version="1.0"?><cXML><Header/><Request><InvoiceDetailRequest/></Request></cXML>';
    // Act
    const { po, lowConfidence } = await readDocument(enc(noName), "o.xml");
    // Assess
    expect(po.supplier.name).toBe("114532907");
    expect(lowConfidence).toEqual(["supplier.name"]);
    expect(validatePo(po, acme).map((f) => f.code)).toContain("LOW_CONFIDENCE_FIELDS");
    expect(await reason(invoice)).toBe(
      "the cXML document is a InvoiceDetailRequest, not an OrderRequest (a purchase order)",
    );
  });
});

describe("X12 850", () => {
  const edi = () => text("acme/07-x12-850-saved.edi");

  it("reads the separators the ISA declares", async () => {
    // Act
    const star = await readDocument(sample("acme/07-x12-850-saved.edi"), "a");
    const pipe = await readDocument(sample("customer37/09-x12-850-pipe-separated-monday.x12"), "b");
    // Assess
    expect(star.po.lines[0]).toMatchObject({ description: "Corrugated box 18 x 12 x 12 in, 200# test", unit: "BX" });
    expect(star.po.charges).toEqual([{ reason: "Freight", code: "D240", amountMinor: 7500 }]);
    expect(star.po.tax).toEqual({ amountMinor: 12114, rate: "6", description: "state sales tax" });
    expect(pipe.po.supplier).toEqual({ name: "Lakeshore Office Supply", id: "PSV-0205" });
    expect(pipe.po.allowances).toEqual([{ reason: "Contract discount", code: "C310", amountMinor: 9000 }]);
  });

  it.each([
    [(s: string) => s.slice(0, s.indexOf("CTT")), /^the X12 interchange is truncated: no IEA segment/],
    [(s: string) => s.slice(0, 60), /^the X12 ISA segment is truncated/],
    [
      (s: string) => s.replace("ST*850", "ST*810"),
      "the X12 interchange holds transaction set 810, not an 850 purchase order",
    ],
    [(s: string) => s.replace("SE*20*", "SE*19*"), /^the X12 850's SE01 says 19 segments but ST…SE holds 20/],
    [(s: string) => s.replace("CTT*3", "CTT*4"), "CTT01 says 4 line items but the 850 has 3 PO1 segments"],
    [
      (s: string) => s.replace("PO1*2*36*RL*27.80", "PO1*2*3x6*RL*27.80"),
      /^PO102 \(segment \d+\): expected a plain decimal/,
    ],
  ])("%#: a damaged 850 → %s", async (damage, why) => {
    // Act / Assess
    expect(await reason(damage(edi()))).toMatch(why);
  });

  it("defaults a missing CUR to USD and flags it", async () => {
    // Prepare: drop CUR and fix SE01
    const noCur = edi().replace("CUR*BY*USD~\n", "").replace("SE*20*", "SE*19*");
    // Act
    const { po, lowConfidence } = await readDocument(enc(noCur), "x");
    // Assess
    expect(po.currency).toBe("USD");
    expect(lowConfidence).toEqual(["currency"]);
  });
});

describe("PDF", () => {
  it("reads the text layer by labels and table rows", async () => {
    // Act
    const { po, lowConfidence } = await readDocument(await textPdf(), "po.pdf");
    // Assess
    expect(po).toMatchObject({
      poNumber: "ACM-PO-22879",
      orderDate: "2026-11-25",
      supplier: { name: "Northeast Industrial Supply", id: "V-1001" },
      charges: [{ reason: "Freight", amountMinor: 9500 }],
      tax: { amountMinor: 21210, rate: "6" },
      totalMinor: 374710,
      source: { format: "pdf", method: "text-layer" },
    });
    expect(po.lines[2]).toMatchObject({ description: "Shop towels, 50 lb bale", quantity: "4", amountMinor: 125000 });
    expect(lowConfidence).toBeUndefined();
  });

  it.each([
    ["customer37/10-scanned-pdf-no-text-layer.pdf", /^the PDF has no text layer \(a scanned image\?\)/],
    ["customer37/12-zip-named-as-pdf.pdf", /^the document is a ZIP archive .* whatever its name says/],
  ])("%s fails with a specific reason", async (file, why) => {
    // Act / Assess
    expect(await reason(sample(file), "po.pdf")).toMatch(why);
  });

  it("a damaged PDF is a DocumentError, not a crash", async () => {
    // Act / Assess
    expect(await reason("%PDF-1.7\n1 0 obj <<>> garbage")).toMatch(
      /^the PDF (cannot be opened|is damaged|has no text layer)/,
    );
  });

  it("flags fields read from weak cues and refuses when mandatory ones are missing", async () => {
    // Prepare: an email body in labelled text, without a currency code and a total line
    const body = [
      "Purchase Order PSC-50001",
      "Date: 2026-11-30",
      "Buyer: Prairie State Components",
      "Vendor: Lakeshore Office Supply",
      "1  Stapler, heavy duty  4  ea  $25.00  $100.00",
    ].join("\r\n");
    const email = `From: a@x.example\r\nTo: b@x.example\r\nSubject: PO\r\nDate: Mon, 30 Nov 2026 09:00:00 -0600\r\nMessage-ID: <b1@x.example>\r\n\r\n${body}\r\n`;
    // Act
    const { po, lowConfidence } = await readDocument(enc(email), "po.eml");
    // Assess
    expect(po).toMatchObject({ poNumber: "PSC-50001", currency: "USD", totalMinor: 10000 });
    expect(lowConfidence).toEqual(expect.arrayContaining(["poNumber", "orderDate", "currency", "totalMinor"]));
    expect(await reason(email.replace("Vendor: Lakeshore Office Supply", ""), "po.eml")).toMatch(
      /the body text: the text has no supplier/,
    );
  });
});

describe("email", () => {
  it("keeps the thread in order with its message ids and finds the PO in the attachment", async () => {
    // Act
    const { po, thread } = await readDocument(sample("acme/09-email-thread-csv-attachment-saved.eml"), "m.eml");
    // Assess
    expect(thread?.messages.map((m) => m.messageId)).toEqual([
      "<quote-req-7781@acme-mfg.example>",
      "<po-22890@acme-mfg.example>",
    ]);
    expect(thread?.messages[1]?.inReplyTo).toBe("<quote-req-7781@acme-mfg.example>");
    expect(po.source.container).toEqual({
      format: "email",
      document: "m.eml",
      part: "ACM-PO-22890.csv",
      messageId: "<po-22890@acme-mfg.example>",
    });
  });

  it("says why no attachment is usable", async () => {
    // Act
    const why = await reason(sample("customer37/11-email-no-usable-attachment.eml"));
    // Assess
    expect(why).toMatch(
      /^the email has 2 attachments and no purchase order could be read from it: logo\.png \(image\/png\)/,
    );
    expect(why).toContain("terms.txt (text/plain): not a purchase order format");
  });
});

describe("bad input, bounded", () => {
  it("refuses a 50 MB document from its size before any parsing", async () => {
    // Prepare
    const big = new Uint8Array(50 * 1024 * 1024);
    big.set(enc("%PDF-1.7"));
    // Act / Assess
    expect(await reason(big)).toBe(
      `the document is ${50 * 1024 * 1024} bytes, larger than the 10 MiB (${DEFAULTS.maxDocumentBytes} bytes) limit`,
    );
  });

  it.each([
    [new Uint8Array(), "the document is empty (0 bytes)"],
    [new Uint8Array([0x1f, 0x8b, 8, 0]), "the document is gzip-compressed; send it uncompressed"],
    [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]), /^the document is an image \(image\/png\)/],
    [enc("ISA*00*"), /^the X12 ISA segment is truncated/],
  ])("%#: %s", async (bytes, why) => {
    // Act / Assess
    expect(await reason(bytes)).toMatch(why);
  });
});

describe("validating charges, allowances and tax", () => {
  const base = async (): Promise<NormalizedPo> =>
    (await readDocument(sample("acme/05-ubl-order-saved.xml"), "o.xml")).po;

  it("TOTAL_MISMATCH spells out lines, charges, allowances and tax", async () => {
    // Prepare
    const po = { ...(await base()), totalMinor: 291144 };
    // Act
    const findings = validatePo(po, acme);
    // Assess
    expect(findings).toEqual([
      {
        code: "TOTAL_MISMATCH",
        severity: "error",
        message:
          "The 3 line amounts add up to $2,715.00, charges add $85.00, allowances take off $54.30, tax adds $164.74: $2,910.44 payable, but the PO total is $2,911.44 (off by $1.00).",
        path: "totalMinor",
      },
    ]);
  });

  it("stated subtotals, tax rate and negative charges are checked", async () => {
    // Prepare
    const po = await base();
    const wrong: NormalizedPo = {
      ...po,
      totals: { ...po.totals, lineTotalMinor: 271000, chargeTotalMinor: 9000 },
      tax: { amountMinor: 16474, rate: "7" },
      charges: [{ reason: "Freight", amountMinor: -8500 }],
    };
    // Act
    const codes = validatePo(wrong, acme).map((f) => f.code);
    // Assess
    expect(codes).toEqual(
      expect.arrayContaining([
        "NEGATIVE_ADJUSTMENT",
        "LINE_TOTAL_MISMATCH",
        "CHARGE_TOTAL_MISMATCH",
        "TAX_EXCLUSIVE_MISMATCH",
        "TAX_RATE_MISMATCH",
        "TOTAL_MISMATCH",
      ]),
    );
  });

  it("transform keeps charges and ids and maps X12 units to Rec 20", async () => {
    // Prepare
    const { po } = await readDocument(sample("customer37/09-x12-850-pipe-separated-monday.x12"), "x");
    // Act
    const out = transformPo(po);
    // Assess
    expect(out.lines.map((l) => l.unit)).toEqual(["CS", "EA", "BX"]);
    expect(out.allowances).toEqual(po.allowances);
    expect(out.source).toEqual(po.source);
    expect(transformPo(out)).toEqual(out);
  });
});

describe("the Claude document-block path", () => {
  it("sends a PDF as a base64 document block and an image as an image block", async () => {
    // Prepare
    const pdf = sample("acme/08-pdf-text-layer-saved.pdf");
    // Act
    const [doc, instructions] = buildExtractionContent(pdf, "po.pdf");
    const [img] = buildExtractionContent(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]), "scan.png");
    // Assess
    expect(doc.type).toBe("document");
    expect(doc.source).toMatchObject({ type: "base64", media_type: "application/pdf" });
    expect(doc.source.type === "base64" && Buffer.from(doc.source.data, "base64").equals(Buffer.from(pdf))).toBe(true);
    expect(instructions.text).toContain('"lowConfidence"');
    expect(img.source).toMatchObject({ type: "base64", media_type: "image/png" });
    expect(() => buildExtractionContent(enc('{"a":1}'), "x.json")).toThrow(/is json and is parsed instead/);
  });

  it("checks the answer against the same schema and keeps the model's doubts", () => {
    // Prepare
    const answer = [
      "```json",
      JSON.stringify({
        poNumber: "ACM-PO-1",
        orderDate: "2026-11-25",
        buyer: { name: "Acme Manufacturing" },
        supplier: { name: "Northeast Industrial Supply", id: "V-1001" },
        currency: "USD",
        lines: [{ id: "1", description: "Gloves", quantity: "2", unit: "BX", unitPrice: "14.25", amount: "28.50" }],
        tax: { amount: "1.71", rate: "6" },
        total: "30.21",
        lowConfidence: ["lines[0].quantity"],
      }),
      "```",
    ].join("\n");
    // Act
    const po = readExtractionAnswer(answer, "scan.pdf", "pdf");
    // Assess
    expect(po).toMatchObject({ totalMinor: 3021, tax: { amountMinor: 171, rate: "6" } });
    expect(po.source).toEqual({
      format: "pdf",
      document: "scan.pdf",
      method: "model",
      lowConfidence: ["lines[0].quantity"],
    });
    expect(validatePo(po, acme).map((f) => f.code)).toContain("LOW_CONFIDENCE_FIELDS");
    expect(() => readExtractionAnswer('{"poNumber":"X"}', "s.pdf", "pdf")).toThrow(
      /^the model's answer does not fit the PO schema: /,
    );
    expect(() => readExtractionAnswer('{"error":"no PO number"}', "s.pdf", "pdf")).toThrow(
      "the model could not read a purchase order: no PO number",
    );
    expect(() => readExtractionAnswer("Sure! Here it is", "s.pdf", "pdf")).toThrow(/not a JSON object/);
  });
});

describe("po-agent extract", () => {
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await extractCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, "customers");
    return { code, out, err };
  };

  it("--json prints one object with format, po and findings", async () => {
    // Act
    const { code, out } = await run(["samples/acme/06-cxml-order-needs-approval.xml", "--json", "--customer", "acme"]);
    // Assess
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const parsed = JSON.parse(out[0] ?? "") as {
      format: string;
      po: NormalizedPo;
      findings: unknown[];
      customer: string;
    };
    expect(parsed).toMatchObject({ format: "cxml", findings: [], customer: "acme" });
    expect(parsed.po.poNumber).toBe("ACM-PO-22851");
  });

  it("says which customer it validated against and shows findings", async () => {
    // Act
    const { code, out } = await run(["samples/customer37/06-unknown-vendor.json"]);
    // Assess
    expect(code).toBe(0);
    expect(out).toContain("customer:  acme (the first customer; choose with --customer <name>)");
    expect(out.some((l) => l.includes("UNKNOWN_SUPPLIER"))).toBe(true);
  });

  it("refuses a 50 MB file from its size, without reading it", async () => {
    // Prepare: a sparse file takes no disk and would take 50 MB of memory if read
    const file = join(mkdtempSync(join(tmpdir(), "po-extract-")), "huge.pdf");
    writeFileSync(file, "%PDF-1.7\n");
    truncateSync(file, 50 * 1024 * 1024);
    // Act
    const { code, out } = await run([file, "--json"]);
    // Assess
    expect(code).toBe(2);
    expect(JSON.parse(out[0] ?? "")).toMatchObject({
      format: null,
      po: null,
      findings: [
        { code: "UNREADABLE_DOCUMENT", severity: "error", message: expect.stringMatching(/larger than the 10 MiB/) },
      ],
    });
  });

  it("usage mistakes exit 1 with a reason", async () => {
    // Act / Assess
    expect((await run([])).err[0]).toMatch(/^usage: po-agent extract <file>/);
    expect(await run(["nope.json"])).toMatchObject({ code: 1, err: ["file not found: nope.json"] });
    expect(await run(["samples/acme/01-packaging-saved.json", "--customer", "zzz"])).toMatchObject({
      code: 1,
      err: ['unknown customer "zzz"; known: acme, customer37'],
    });
  });
});

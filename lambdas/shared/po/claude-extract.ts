/**
 * The Claude path for documents with no structure to parse (PDFs, scans, photos): the document
 * goes to the model as a `document` (PDF) or `image` block, the model answers in the same JSON
 * shape the JSON parser reads (parse.ts), and that answer is read by the same code and checked
 * against the same zod schema. Money therefore goes through the same exact decimal → minor-unit
 * conversion as every other format; the model never does cents arithmetic.
 *
 * Pure functions: the orchestrator (or the extract tool) sends the request and passes the
 * answer's text back to `readExtractionAnswer`.
 */
import type Anthropic from "@anthropic-ai/sdk";
import { DocumentError } from "../errors.js";
import { detect, type ImageMediaType } from "./detect.js";
import { nonEmpty, type ParseOptions } from "./fields.js";
import type { NormalizedPo } from "./model.js";
import { parseJsonPo } from "./parse.js";

export const EXTRACTION_INSTRUCTIONS = `Read the purchase order in this document and answer with one JSON object and nothing else:
{ "poNumber": string, "orderDate": "YYYY-MM-DD",
  "buyer": { "name": string }, "supplier": { "name": string, "id"?: string },
  "currency": ISO 4217 code such as "USD",
  "lines": [ { "id": string, "description": string, "quantity": decimal string, "unit": string,
               "unitPrice": decimal string, "amount": decimal string } ],
  "charges"?: [ { "reason": string, "amount": decimal string } ],
  "allowances"?: [ { "reason": string, "amount": decimal string } ],
  "tax"?: { "amount": decimal string, "rate"?: percent as decimal string },
  "total": decimal string (the payable total as printed),
  "requestedDelivery"?: "YYYY-MM-DD", "notes"?: string,
  "lowConfidence": [ field paths you could not read clearly, e.g. "lines[2].quantity" ] }
Amounts are plain decimals in major units as printed ("1234.50": no currency signs, no thousands separators).
Copy values; never compute or guess one. A field the document does not show is left out and named in "lowConfidence".
A mandatory field (poNumber, orderDate, buyer, supplier, currency, lines, total) that is not in the document: answer {"error": "<what is missing>"} instead.`;

export type ExtractionBlock = Anthropic.Messages.DocumentBlockParam | Anthropic.Messages.ImageBlockParam;

/**
 * The user-message content for an extraction request: the document block, then the instructions.
 * Only PDFs and images go this way; structured formats are parsed, not read by a model.
 */
export function buildExtractionContent(
  bytes: Uint8Array,
  fileName: string,
): [ExtractionBlock, Anthropic.Messages.TextBlockParam] {
  const d = detect(bytes);
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let block: ExtractionBlock;
  if (d.kind === "pdf") {
    block = {
      type: "document",
      source: { type: "base64", media_type: "application/pdf", data },
      title: fileName,
      cache_control: { type: "ephemeral" },
    };
  } else if (d.kind === "image") {
    block = { type: "image", source: { type: "base64", media_type: d.mediaType satisfies ImageMediaType, data } };
  } else {
    throw new DocumentError(
      `only a PDF or an image is sent to the model as a document; this one is ${d.kind === "text" ? d.format : d.kind} and is parsed instead`,
    );
  }
  return [block, { type: "text", text: EXTRACTION_INSTRUCTIONS }];
}

/**
 * The model's answer → a `NormalizedPo`, or a DocumentError saying what is wrong with it. The
 * answer may be wrapped in a ```json fence; anything else around the object is refused.
 */
export function readExtractionAnswer(
  answer: string,
  fileName: string,
  format: "pdf" | "email",
  opts: ParseOptions = {},
): NormalizedPo {
  const body = answer
    .trim()
    .replace(/^```(?:json)?\s*/i, "")
    .replace(/\s*```$/, "")
    .trim();
  if (!body.startsWith("{")) {
    throw new DocumentError(`the model's answer is not a JSON object: ${JSON.stringify(body.slice(0, 80))}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new DocumentError(`the model's answer is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") {
    throw new DocumentError(`the model could not read a purchase order: ${parsed.error}`);
  }
  let po: NormalizedPo;
  try {
    po = parseJsonPo(body, fileName, opts);
  } catch (err) {
    if (err instanceof DocumentError) {
      throw new DocumentError(`the model's answer does not fit the PO schema: ${err.message}`, { cause: err });
    }
    throw err;
  }
  return {
    ...po,
    source: {
      format,
      document: fileName,
      method: "model",
      ...nonEmpty("lowConfidence", po.source.lowConfidence ?? []),
    },
  };
}

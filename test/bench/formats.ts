/**
 * Parser throughput per format (the shipped samples and the real-world shapes in
 * test/fixtures/formats, read with readDocumentAll) and the cost of refusing a 50 MB document. Prints figures; asserts
 * nothing. `npx tsx test/bench/formats.ts [--seconds 1] [--json]`
 *
 * The 50 MB case runs first, in a fresh process state, so the peak RSS it reports is its own:
 * `po-agent extract` checks the size from the file system before reading (a sparse 50 MB file on
 * disk, never loaded); `readDocument` on an in-memory 50 MB buffer refuses it before parsing.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadCustomer } from "../../lambdas/shared/config/load.js";
import { DocumentError } from "../../lambdas/shared/errors.js";
import { parseOptionsFor, readDocument, readDocumentAll } from "../../lambdas/shared/po/parse.js";
import { extractCommand } from "../../local/extract-command.js";

const { values } = parseArgs({ options: { seconds: { type: "string" }, json: { type: "boolean" } } });
const seconds = Number(values.seconds ?? 1);
const mb = (b: number) => Math.round((b / (1024 * 1024)) * 10) / 10;
const peakRss = () => process.resourceUsage().maxRSS * 1024;

// ---- 50 MB, first
const dir = mkdtempSync(join(tmpdir(), "po-bench-formats-"));
const huge = join(dir, "huge.pdf");
writeFileSync(huge, "%PDF-1.7\n");
truncateSync(huge, 50 * 1024 * 1024);
const rssBefore = peakRss();
let t = performance.now();
let reason = "";
await extractCommand([huge, "--json"], { out: (l) => (reason = l), err: () => undefined }, "customers");
const cliMs = performance.now() - t;
const cliPeak = peakRss();
const buffer = new Uint8Array(50 * 1024 * 1024);
buffer.set(new TextEncoder().encode("%PDF-1.7"));
t = performance.now();
try {
  await readDocument(buffer, "huge.pdf");
} catch (err) {
  if (!(err instanceof DocumentError)) throw err;
}
const bufferMs = performance.now() - t;
const bufferPeak = peakRss();
rmSync(dir, { recursive: true, force: true });

// ---- throughput per format: the shipped samples, then the real-world shapes (test/fixtures/formats)
const F = "test/fixtures/formats";
const samples: Record<string, string> = {
  json: "samples/acme/01-packaging-saved.json",
  csv: "samples/acme/02-fasteners-saved.csv",
  "csv-erp": `${F}/csv-erp-export-semicolon-decimal-comma.csv`,
  "csv-2po": `${F}/csv-erp-export-two-pos.csv`,
  cxml: "samples/acme/06-cxml-order-needs-approval.xml",
  "cxml-hdr": `${F}/cxml-header-delivery-midnight.xml`,
  ubl: "samples/acme/05-ubl-order-saved.xml",
  peppol: `${F}/ubl-peppol-order-line-allowances.xml`,
  x12: "samples/acme/07-x12-850-saved.edi",
  "x12-3po": `${F}/x12-850-batch-three.edi`,
  edifact: `${F}/edifact-orders-d96a.edi`,
  "edi-2po": `${F}/edifact-orders-d01b-two-messages-decimal-comma.edi`,
  pdf: "samples/acme/08-pdf-text-layer-saved.pdf",
  email: "samples/acme/09-email-thread-csv-attachment-saved.eml",
};
// The receiving customer supplies what the documents leave out (a CSV buyer, an X12 seller), as in a run.
const opts = parseOptionsFor(loadCustomer("customers", "customer37"));
const rates: { format: string; bytes: number; pos: number; docsPerSecond: number }[] = [];
for (const [format, file] of Object.entries(samples)) {
  const bytes = new Uint8Array(readFileSync(file));
  let pos = 0;
  for (let i = 0; i < 5; i++) pos = (await readDocumentAll(bytes, file, opts)).length; // warm up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await readDocumentAll(bytes, file, opts);
    n++;
  }
  rates.push({ format, bytes: bytes.length, pos, docsPerSecond: Math.round(n / ((performance.now() - start) / 1000)) });
}

const result = {
  docsPerSecond: Object.fromEntries(rates.map((r) => [r.format, r.docsPerSecond])),
  fiftyMb: {
    cli: {
      ms: Math.round(cliMs * 10) / 10,
      peakRssGrowthMb: mb(cliPeak - rssBefore),
      reason: JSON.parse(reason).findings[0].message,
    },
    inMemoryBuffer: {
      ms: Math.round(bufferMs * 10) / 10,
      peakRssGrowthMb: mb(bufferPeak - cliPeak),
      note: "includes the caller's own 50 MB buffer",
    },
  },
  peakRssMb: mb(peakRss()),
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`Parser throughput (${seconds}s per format, one sample each, Node ${process.version}):`);
  for (const r of rates)
    console.log(
      `  ${r.format.padEnd(9)} ${String(r.docsPerSecond).padStart(7)} docs/s  (${r.bytes} bytes, ${r.pos} PO${r.pos > 1 ? "s" : ""})`,
    );
  console.log("50 MB document:");
  console.log(
    `  po-agent extract (size checked on disk): refused in ${result.fiftyMb.cli.ms} ms, peak RSS +${result.fiftyMb.cli.peakRssGrowthMb} MB`,
  );
  console.log(
    `  readDocument(50 MB buffer): refused in ${result.fiftyMb.inMemoryBuffer.ms} ms, peak RSS +${result.fiftyMb.inMemoryBuffer.peakRssGrowthMb} MB (the buffer itself)`,
  );
  console.log(`  reason: ${result.fiftyMb.cli.reason}`);
  console.log(`Process peak RSS: ${result.peakRssMb} MB`);
}

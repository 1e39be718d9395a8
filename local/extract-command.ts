import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { loadCustomers } from "../lambdas/shared/config/load.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import { DEFAULTS } from "../lambdas/shared/constants.js";
import { ConfigError, DocumentError } from "../lambdas/shared/errors.js";
import { checkSize } from "../lambdas/shared/po/detect.js";
import type { Finding, NormalizedPo } from "../lambdas/shared/po/model.js";
import { formatMinor } from "../lambdas/shared/po/money.js";
import {
  type ParsedDocument,
  PoDocumentError,
  type PositionedPo,
  parseOptionsFor,
  readDocumentAll,
} from "../lambdas/shared/po/parse.js";
import { validatePo } from "../lambdas/shared/po/validate.js";

const USAGE = "usage: po-agent extract <file> [--customer <name>] [--json]";

/**
 * `po-agent extract <file> [--customer <name>] [--json]`: detect, parse and validate one document
 * without starting a run (no stack, no model). Exit 0 when the document was read (findings or
 * not), 2 when it cannot be read as a PO, 1 for a usage or config mistake. The size is checked
 * before the file is read, so a 50 MB file costs no memory.
 */
export async function extractCommand(
  args: string[],
  io: { out(l: string): void; err(l: string): void },
  customersDir: string,
): Promise<number> {
  let values: { customer?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { customer: { type: "string" }, json: { type: "boolean" } },
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) {
    io.err(file ? `one file at a time (got ${positionals.length})\n${USAGE}` : USAGE);
    return 1;
  }
  if (!existsSync(file) || !statSync(file).isFile()) {
    io.err(`file not found: ${file}`);
    return 1;
  }
  let customer: CustomerConfig;
  let chosen: string;
  try {
    const customers = loadCustomers(customersDir);
    const found = values.customer ? customers.find((c) => c.name === values.customer) : customers[0];
    if (!found) {
      io.err(
        values.customer
          ? `unknown customer "${values.customer}"; known: ${customers.map((c) => c.name).join(", ")}`
          : `no customer configs in ${customersDir}`,
      );
      return 1;
    }
    customer = found;
    chosen = values.customer ? "--customer" : "the first customer; choose with --customer <name>";
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      return 1;
    }
    throw err;
  }

  let all: PositionedPo[];
  try {
    const bytes = readBounded(file);
    all = await readDocumentAll(bytes, basename(file), parseOptionsFor(customer));
  } catch (err) {
    if (!(err instanceof DocumentError)) throw err;
    const finding: Finding = { code: "UNREADABLE_DOCUMENT", severity: "error", message: err.message };
    // A recognised document that cannot be read still says what it is and everything it lacks.
    const format = err instanceof PoDocumentError ? (err.format ?? null) : null;
    const missing = err instanceof PoDocumentError ? err.missing : [];
    if (values.json) {
      io.out(
        JSON.stringify({
          format,
          po: null,
          findings: [finding],
          ...(missing.length ? { missing } : {}),
          customer: customer.name,
        }),
      );
    } else {
      io.out(`file:     ${file}`);
      if (format) io.out(`format:   ${format}`);
      io.out(`customer: ${customer.name} (${chosen})`);
      io.out(`cannot read the document: ${err.message}`);
    }
    return 2;
  }

  const checked = all.map((parsed) => ({ parsed, findings: validatePo(parsed.po, customer) }));
  const [one] = checked;
  if (values.json) {
    if (one && checked.length === 1) {
      io.out(
        JSON.stringify({
          format: one.parsed.format,
          po: one.parsed.po,
          findings: one.findings,
          customer: customer.name,
          ...(one.parsed.thread ? { thread: one.parsed.thread } : {}),
        }),
      );
    } else {
      // Several POs in one document: each with its position and its own findings.
      io.out(
        JSON.stringify({
          format: one?.parsed.format ?? null,
          pos: checked.map((c) => ({ position: c.parsed.position, po: c.parsed.po, findings: c.findings })),
          customer: customer.name,
        }),
      );
    }
    return 0;
  }
  checked.forEach(({ parsed, findings }, i) => {
    if (checked.length > 1) io.out(`${i > 0 ? "\n" : ""}── PO ${parsed.position} of ${checked.length} ──`);
    for (const line of describe(file, parsed, customer, chosen, findings)) io.out(line);
  });
  return 0;
}

/** Reads a file after checking its size, so an oversized file is refused without being loaded. */
function readBounded(file: string, limit: number = DEFAULTS.maxDocumentBytes): Uint8Array {
  checkSize(statSync(file).size, limit);
  const fd = openSync(file, "r");
  try {
    const buf = new Uint8Array(Math.min(statSync(file).size, limit + 1));
    const n = readSync(fd, buf, 0, buf.length, 0);
    checkSize(n, limit);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function describe(
  file: string,
  parsed: ParsedDocument,
  customer: CustomerConfig,
  chosen: string,
  findings: Finding[],
): string[] {
  const { po } = parsed;
  const m = (minor: number) => formatMinor(minor, po.currency);
  const via = po.source.container ? ` (${po.source.format} ${po.source.container.part})` : "";
  const out = [
    `file:      ${file}`,
    `format:    ${parsed.format}${via}${po.source.method ? `, read from the ${po.source.method === "text-layer" ? "text layer" : po.source.method}` : ""}`,
    `customer:  ${customer.name} (${chosen})`,
    `PO:        ${po.poNumber}, issued ${po.orderDate}${po.requestedDelivery ? `, delivery ${po.requestedDelivery}` : ""}`,
    `buyer:     ${po.buyer.name}${po.buyer.id ? ` (${po.buyer.id})` : ""}`,
    `supplier:  ${po.supplier.name}${po.supplier.id ? ` (vendor id ${po.supplier.id})` : ""}${(po.supplier.ids ?? []).map((i) => `, ${i.scheme} ${i.value}`).join("")}`,
    `lines:`,
    ...po.lines.map(
      (l) =>
        `  ${l.id.padEnd(4)} ${l.description.slice(0, 44).padEnd(44)} ${l.quantity} ${l.unit} × ${m(l.unitPriceMinor)} = ${m(l.amountMinor)}`,
    ),
    ...adjustments(po, m),
    `total:     ${m(po.totalMinor)} ${po.currency}`,
  ];
  if (po.notes) out.push(`notes:     ${po.notes.replace(/\n/g, " / ")}`);
  if (parsed.lowConfidence?.length) out.push(`check:     ${parsed.lowConfidence.join(", ")} (low confidence)`);
  if (parsed.thread) {
    out.push(`thread:    ${parsed.thread.messages.length} message(s)`);
    for (const msg of parsed.thread.messages) {
      out.push(`  ${msg.date ?? "(no date)"}  ${msg.messageId ?? "(no id)"}  ${msg.subject ?? ""}`);
    }
  }
  out.push(findings.length ? "findings:" : "findings:  none");
  for (const f of findings) out.push(`  ${f.severity.padEnd(7)} ${f.code}: ${f.message}`);
  out.push("(duplicate PO numbers are checked against the ledger during a run, not here)");
  return out;
}

function adjustments(po: NormalizedPo, m: (minor: number) => string): string[] {
  return [
    ...(po.charges ?? []).map((c) => `charge:    ${c.reason || c.code || "charge"} ${m(c.amountMinor)}`),
    ...(po.allowances ?? []).map((a) => `allowance: ${a.reason || a.code || "allowance"} −${m(a.amountMinor)}`),
    ...(po.tax ? [`tax:       ${m(po.tax.amountMinor)}${po.tax.rate ? ` (${po.tax.rate}%)` : ""}`] : []),
  ];
}

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../lambdas/shared/config/load.js";
import { DocumentError } from "../../lambdas/shared/errors.js";
import { ParsePool } from "../../local/parse-pool.js";
import { LocalStack } from "../../local/stack.js";
import { CUSTOMERS_DIR, SAMPLES_DIR, tempDir } from "../support/stack.js";

/** A PDF whose content stream is a long run of tiny text operators: slow to read, not malicious in form. */
function slowPdf(ops: number): Uint8Array {
  const stream = `BT /F1 1 Tf ${"(x) Tj ".repeat(ops)} ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let body = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(body);
}

describe("parsing off the event loop", () => {
  const pools: ParsePool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.close();
  });

  it("reads a sample in a worker with the same result as in-process", async () => {
    const pool = new ParsePool();
    pools.push(pool);
    const bytes = readFileSync(join(SAMPLES_DIR, "acme", "08-pdf-text-layer-saved.pdf"));
    const parsed = await pool.read(bytes, "08.pdf", { timeZone: "America/New_York" });
    expect(parsed.format).toBe("pdf");
    expect(parsed.po.poNumber).toBe("ACM-PO-22879");
  });

  it("stops a document over its time budget while the event loop keeps answering", async () => {
    // Prepare
    const pool = new ParsePool({ timeBudgetMs: 300 });
    pools.push(pool);
    await pool.read(readFileSync(join(SAMPLES_DIR, "acme", "01-packaging-saved.json")), "warm-up.json");
    // Act
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const started = Date.now();
    const result = await pool.read(slowPdf(400_000), "slow.pdf").then(
      () => "read",
      (err: unknown) => err,
    );
    clearInterval(ticker);
    const took = Date.now() - started;
    // Assess: either it was fast enough to finish, or it was stopped at the budget; the loop ran meanwhile.
    if (result === "read") {
      expect(took).toBeLessThan(300 + 200);
    } else {
      expect(result).toBeInstanceOf(DocumentError);
      expect((result as Error).message).toMatch(/longer than 0\.3 s/);
      expect(took).toBeLessThan(3_000);
    }
    expect(ticks).toBeGreaterThan(took / 10 / 4);
    // The pool still works after a worker was stopped.
    const next = await pool.read(readFileSync(join(SAMPLES_DIR, "acme", "01-packaging-saved.json")), "01.json");
    expect(next.po.poNumber).toBe("ACM-PO-22817");
  });

  it("a parse error comes back as a DocumentError", async () => {
    const pool = new ParsePool();
    pools.push(pool);
    await expect(pool.read(new TextEncoder().encode("%PDF-1.4 garbage"), "bad.pdf")).rejects.toBeInstanceOf(
      DocumentError,
    );
  });
});

describe("a local stack reading in workers", () => {
  it("runs a PDF to saved with parsing off the event loop", async () => {
    const dataDir = tempDir("parse-stack");
    const stack = await LocalStack.start({ dataDir, customers: loadCustomers(CUSTOMERS_DIR), parseInWorker: true });
    try {
      const runId = await stack.submit(
        "acme",
        "08.pdf",
        readFileSync(join(SAMPLES_DIR, "acme", "08-pdf-text-layer-saved.pdf")),
      );
      const run = await stack.waitSettled(runId);
      expect(run?.status, run?.reason).toBe("saved");
      expect(stack.documentsReadInWorkers).toBeGreaterThan(0);
    } finally {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * A PO with many lines (a CSV in the samples' layout): the size a real catalogue re-order reaches.
 * 60,000 lines stay under the 10 MiB document limit and far over DynamoDB's 400 KB item limit.
 */
export function largeCsvPo(lines: number, poNumber = "ACM-PO-60000"): Buffer {
  const header =
    "PO Number,Order Date,Buyer,Supplier,Supplier ID,Currency,Line ID,Description,Quantity,Unit,Unit Price,Line Amount,Total,Requested Delivery,Notes";
  // 1 pcs at 0.01 each: the total is lines × 0.01, exact in minor units.
  const total = (lines / 100).toFixed(2);
  const rows = [header];
  for (let i = 1; i <= lines; i++) {
    rows.push(
      `${poNumber},2026-11-19,Acme Manufacturing,"Keystone Fasteners, Inc.",V-1002,USD,${i},Washer M${i % 40},1,pcs,0.01,0.01,${total},2026-11-30,`,
    );
  }
  return Buffer.from(`${rows.join("\n")}\n`);
}

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import initSqlJs, { type Database, type SqlValue } from "sql.js";

const require = createRequire(import.meta.url);
const SEED_SQL = fileURLToPath(new URL("./seed.sql", import.meta.url));

export interface Vendor {
  id: string;
  name: string;
  status: "active" | "on_hold" | "blocked";
  paymentTerms: string;
  preferred: boolean;
}

export interface CostCenter {
  id: string;
  name: string;
  currency: string;
  budgetMinor: number;
}

export interface Order {
  poNumber: string;
  vendorId: string;
  costCenterId: string;
  currency: string;
  totalMinor: number;
  status: "open" | "cancelled";
  cancelReason?: string;
  createdAt: string;
}

/**
 * The sample ERP's store: SQLite compiled to wasm (sql.js), so it installs with no native build
 * and no download. The whole database is one file, rewritten atomically after each change.
 */
export class ErpDb {
  private constructor(
    private readonly db: Database,
    readonly file: string,
  ) {}

  /** Opens `<dataDir>/erp.sqlite`, creating it from seed.sql the first time. */
  static async open(dataDir: string): Promise<ErpDb> {
    // The wasm binary is read from node_modules beside sql.js itself: no network, ever.
    const SQL = await initSqlJs({ locateFile: (f: string) => join(dirname(require.resolve("sql.js")), f) });
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, "erp.sqlite");
    if (existsSync(file)) return new ErpDb(new SQL.Database(readFileSync(file)), file);
    const db = new SQL.Database();
    db.exec("PRAGMA foreign_keys = ON;");
    db.exec(readFileSync(SEED_SQL, "utf8"));
    const erp = new ErpDb(db, file);
    erp.persist();
    return erp;
  }

  private rows(sql: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
    const stmt = this.db.prepare(sql);
    try {
      stmt.bind(params);
      const out: Record<string, SqlValue>[] = [];
      while (stmt.step()) out.push(stmt.getAsObject());
      return out;
    } finally {
      stmt.free();
    }
  }

  private persist(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, this.db.export());
    renameSync(tmp, this.file);
  }

  /** Vendors whose id equals `query` or whose name contains it (case-insensitive). */
  findVendors(query: string): Vendor[] {
    const q = query.trim();
    return this.rows(
      "SELECT * FROM vendors WHERE id = ? COLLATE NOCASE OR instr(lower(name), lower(?)) > 0 OR instr(lower(?), lower(name)) > 0 ORDER BY id",
      [q, q, q],
    ).map(vendorOf);
  }

  /** A cost center by id, or the one whose name appears in `text` (a buyer's department). */
  findCostCenter(text: string): CostCenter | undefined {
    const t = text.trim();
    const row =
      this.rows("SELECT * FROM cost_centers WHERE id = ? COLLATE NOCASE", [t])[0] ??
      this.rows("SELECT * FROM cost_centers WHERE instr(lower(?), lower(name)) > 0 ORDER BY id", [t])[0];
    return row ? costCenterOf(row) : undefined;
  }

  /** Sum of open orders charged to a cost center. */
  committedMinor(costCenterId: string): number {
    const row = this.rows(
      "SELECT COALESCE(SUM(total_minor), 0) AS total FROM orders WHERE cost_center_id = ? AND status = 'open'",
      [costCenterId],
    )[0];
    return Number(row?.total ?? 0);
  }

  openOrders(filter: { vendorId?: string; costCenterId?: string }): Order[] {
    return this.rows(
      "SELECT * FROM orders WHERE status = 'open' AND (? IS NULL OR vendor_id = ?) AND (? IS NULL OR cost_center_id = ?) ORDER BY po_number",
      [filter.vendorId ?? null, filter.vendorId ?? null, filter.costCenterId ?? null, filter.costCenterId ?? null],
    ).map(orderOf);
  }

  getOrder(poNumber: string): (Order & { idempotencyKey?: string }) | undefined {
    const row = this.rows("SELECT * FROM orders WHERE po_number = ?", [poNumber])[0];
    if (!row) return undefined;
    return {
      ...orderOf(row),
      ...(typeof row.idempotency_key === "string" ? { idempotencyKey: row.idempotency_key } : {}),
    };
  }

  insertOrder(order: Omit<Order, "status" | "cancelReason">, idempotencyKey: string | undefined): void {
    this.db.run(
      "INSERT INTO orders (po_number, vendor_id, cost_center_id, currency, total_minor, status, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
      [
        order.poNumber,
        order.vendorId,
        order.costCenterId,
        order.currency,
        order.totalMinor,
        idempotencyKey ?? null,
        order.createdAt,
      ],
    );
    this.persist();
  }

  cancelOrder(poNumber: string, reason: string): void {
    this.db.run("UPDATE orders SET status = 'cancelled', cancel_reason = ? WHERE po_number = ?", [reason, poNumber]);
    this.persist();
  }

  close(): void {
    this.db.close();
  }
}

const str = (v: SqlValue | undefined) => (typeof v === "string" ? v : String(v ?? ""));

function vendorOf(r: Record<string, SqlValue>): Vendor {
  return {
    id: str(r.id),
    name: str(r.name),
    status: str(r.status) as Vendor["status"],
    paymentTerms: str(r.payment_terms),
    preferred: Number(r.preferred) === 1,
  };
}

function costCenterOf(r: Record<string, SqlValue>): CostCenter {
  return { id: str(r.id), name: str(r.name), currency: str(r.currency), budgetMinor: Number(r.budget_minor) };
}

function orderOf(r: Record<string, SqlValue>): Order {
  return {
    poNumber: str(r.po_number),
    vendorId: str(r.vendor_id),
    costCenterId: str(r.cost_center_id),
    currency: str(r.currency),
    totalMinor: Number(r.total_minor),
    status: str(r.status) as Order["status"],
    ...(typeof r.cancel_reason === "string" ? { cancelReason: r.cancel_reason } : {}),
    createdAt: str(r.created_at),
  };
}

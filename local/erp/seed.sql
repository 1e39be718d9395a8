-- The sample ERP's starting data: Acme's vendors, cost centers with budgets, and a few open orders.
-- Money is integer minor units (cents), as everywhere in po-agent.
CREATE TABLE vendors (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'on_hold', 'blocked')),
  payment_terms TEXT NOT NULL,
  preferred INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE cost_centers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  currency TEXT NOT NULL,
  budget_minor INTEGER NOT NULL
);
CREATE TABLE orders (
  po_number TEXT PRIMARY KEY,
  vendor_id TEXT NOT NULL REFERENCES vendors(id),
  cost_center_id TEXT NOT NULL REFERENCES cost_centers(id),
  currency TEXT NOT NULL,
  total_minor INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'cancelled')),
  idempotency_key TEXT UNIQUE,
  cancel_reason TEXT,
  created_at TEXT NOT NULL
);

INSERT INTO vendors VALUES
  ('V-1001', 'Northeast Industrial Supply', 'active', 'NET30', 1),
  ('V-1002', 'Keystone Fasteners, Inc.', 'active', 'NET30', 1),
  ('V-1003', 'Hudson Valley Packaging', 'active', 'NET45', 0),
  ('V-1004', 'Brightline Electrical Co.', 'active', 'NET30', 0),
  ('V-1099', 'Pinnacle Surplus Traders', 'blocked', 'PREPAID', 0);

INSERT INTO cost_centers VALUES
  ('CC-100', 'Shipping', 'USD', 2000000),
  ('CC-200', 'Maintenance', 'USD', 5000000),
  ('CC-300', 'Production', 'USD', 25000000),
  ('CC-900', 'General', 'USD', 1000000);

INSERT INTO orders VALUES
  ('ACM-PO-21950', 'V-1003', 'CC-100', 'USD', 412500, 'open', NULL, NULL, '2026-10-02T14:00:00Z'),
  ('ACM-PO-22010', 'V-1004', 'CC-200', 'USD', 1875000, 'open', NULL, NULL, '2026-10-21T09:30:00Z'),
  ('ACM-PO-22044', 'V-1002', 'CC-300', 'USD', 96000, 'cancelled', NULL, 'duplicate', '2026-10-25T11:10:00Z');

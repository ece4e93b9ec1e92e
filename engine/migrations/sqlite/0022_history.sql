-- The history at scale (issue 19): what statistics read without parsing
-- every order's states, and the transactional outbox that feeds the
-- MongoDB history store.

-- The row's version: 1 when inserted, raised by every update. The MongoDB
-- copy of an order is only ever replaced by a document of a larger version.
ALTER TABLE auftrag_orders ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Derived from an order's states when it is written (see
-- `crate::history::Derived`): when it reached its final state, how long it
-- took from INSERTED to there, how long it waited for a person, and whether
-- it ever did. NULL until the row is written (or backfilled at start-up).
ALTER TABLE auftrag_orders ADD COLUMN closed_at TEXT;
ALTER TABLE auftrag_orders ADD COLUMN duration_ms INTEGER;
ALTER TABLE auftrag_orders ADD COLUMN waiting_ms INTEGER;
ALTER TABLE auftrag_orders ADD COLUMN waited INTEGER CHECK (waited IN (0, 1));
CREATE INDEX auftrag_orders_created ON auftrag_orders (created_at, id);
CREATE INDEX auftrag_orders_type ON auftrag_orders (order_type, id);

-- The outbox: one row per write of an order while the history export is
-- on (setting `history_export` = `on`, set by `auftrag serve --history`).
-- Triggers write it in the order's own transaction, whatever code path
-- changed the row; the exporter copies the row's document as it is then
-- (with its version) and removes the entries it has done.
CREATE TABLE auftrag_history_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id   INTEGER NOT NULL,
    -- milliseconds since the Unix epoch (for the lag `/healthz` reports)
    created_ms INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

CREATE TRIGGER auftrag_history_outbox_insert AFTER INSERT ON auftrag_orders
WHEN (SELECT value FROM auftrag_settings WHERE name = 'history_export') = 'on'
BEGIN
    INSERT INTO auftrag_history_outbox (order_id) VALUES (NEW.id);
END;

CREATE TRIGGER auftrag_history_outbox_update AFTER UPDATE ON auftrag_orders
WHEN (SELECT value FROM auftrag_settings WHERE name = 'history_export') = 'on'
BEGIN
    INSERT INTO auftrag_history_outbox (order_id) VALUES (NEW.id);
END;

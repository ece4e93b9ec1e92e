-- The history at scale (issue 19): what statistics read without parsing
-- every order's states, the indexes searches need, and the transactional
-- outbox that feeds the MongoDB history store. Same meaning as the SQLite
-- migration.

-- The row's version: 1 when inserted, raised by every update. The MongoDB
-- copy of an order is only ever replaced by a document of a larger version.
ALTER TABLE auftrag_orders ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE auftrag_orders ADD COLUMN closed_at TEXT;
ALTER TABLE auftrag_orders ADD COLUMN duration_ms BIGINT;
ALTER TABLE auftrag_orders ADD COLUMN waiting_ms BIGINT;
ALTER TABLE auftrag_orders ADD COLUMN waited BIGINT CHECK (waited IN (0, 1));
CREATE INDEX auftrag_orders_created ON auftrag_orders (created_at, id);
CREATE INDEX auftrag_orders_type ON auftrag_orders (order_type, id);

CREATE TABLE auftrag_history_outbox (
    seq        BIGSERIAL PRIMARY KEY,
    order_id   BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
        DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
);

CREATE FUNCTION auftrag_history_outbox_note() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM auftrag_settings
               WHERE name = 'history_export' AND value = 'on') THEN
        INSERT INTO auftrag_history_outbox (order_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER auftrag_history_outbox_write AFTER INSERT OR UPDATE ON auftrag_orders
FOR EACH ROW EXECUTE FUNCTION auftrag_history_outbox_note();

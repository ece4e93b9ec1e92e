-- Rollbacks (issue 19): which order was placed to roll back which. Same
-- meaning as the SQLite migration: written in the transaction that stores
-- the rollback order; `order_id` is the rollback, `rollback_of` the order
-- it undoes (several rollbacks of one order may exist over time).
CREATE TABLE auftrag_rollbacks (
    order_id    BIGINT PRIMARY KEY,
    rollback_of BIGINT NOT NULL,
    created_at  TEXT   NOT NULL
);
CREATE INDEX auftrag_rollbacks_of ON auftrag_rollbacks (rollback_of, order_id);

-- Rollbacks (issue 19): which order was placed to roll back which. The
-- row is written in the transaction that stores the rollback order, so the
-- link exists exactly when that order does. Both history documents show
-- it (`links`: `rollback_of` on the rollback, `rolled_back_by` on the
-- order rolled back). An order may have several rollbacks over time (one
-- that failed its checks, then another), a rollback order one original.
CREATE TABLE auftrag_rollbacks (
    order_id    INTEGER PRIMARY KEY,
    rollback_of INTEGER NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX auftrag_rollbacks_of ON auftrag_rollbacks (rollback_of, order_id);

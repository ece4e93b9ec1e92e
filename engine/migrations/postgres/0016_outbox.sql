-- The mail outbox (engine/src/notify): one row per (order, history entry,
-- recipient), written in the transaction that records the state change;
-- senders claim due rows with a lease (lease_token, lease_until_ms) and
-- record the outcome. status: PENDING (to send or being sent), SENT, FAILED
-- (a permanent refusal, with the server's answer in last_error).
CREATE TABLE auftrag_outbox (
    id             BIGSERIAL PRIMARY KEY,
    order_id       BIGINT  NOT NULL,
    seq            BIGINT  NOT NULL,
    transition     TEXT    NOT NULL,
    template       TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    vars           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    attempts       BIGINT  NOT NULL DEFAULT 0,
    next_ms        BIGINT  NOT NULL,
    lease_until_ms BIGINT  NOT NULL DEFAULT 0,
    lease_token    TEXT,
    address        TEXT,
    message_id     TEXT,
    sent_at        TEXT,
    last_error     TEXT,
    created_ms     BIGINT  NOT NULL
);
CREATE INDEX auftrag_outbox_order ON auftrag_outbox (order_id, id);
CREATE INDEX auftrag_outbox_due ON auftrag_outbox (next_ms) WHERE status = 'PENDING';
CREATE INDEX auftrag_outbox_failed ON auftrag_outbox (id) WHERE status = 'FAILED';

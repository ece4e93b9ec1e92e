-- Every authorization decision on an order, with its explanation (the
-- deciding policy and rule and the attribute values they read). Append-only;
-- part of the order's history document.
CREATE TABLE auftrag_decisions (
    id       BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES auftrag_orders (id),
    at       TEXT   NOT NULL,
    decision TEXT   NOT NULL CHECK (jsonb_typeof(decision::jsonb) = 'object')
);
CREATE INDEX auftrag_decisions_order ON auftrag_decisions (order_id, id);

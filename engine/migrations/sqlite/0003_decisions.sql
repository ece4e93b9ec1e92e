-- Every authorization decision on an order, with its explanation (the
-- deciding policy and rule and the attribute values they read). Append-only;
-- part of the order's history document.
CREATE TABLE auftrag_decisions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES auftrag_orders (id),
    at       TEXT    NOT NULL,
    decision TEXT    NOT NULL CHECK (json_valid(decision) AND json_type(decision) = 'object')
);
CREATE INDEX auftrag_decisions_order ON auftrag_decisions (order_id, id);

-- Searching the history (issue 19, `GET /api/v1/history`): what the
-- searches on an order's JSON columns need at a million orders.
--
-- `field`/`old`/`new` are SQL/JSON path queries on `changes::jsonb`
-- (`@?`, e.g. `$."hwa" ? (@[1] == "00:1a:…")`), which a GIN index with the
-- default jsonb_ops serves (key and value lookups, `.*` wildcards).
CREATE INDEX auftrag_orders_changes ON auftrag_orders USING GIN ((changes::jsonb));

-- `check`: containment (`@> '[{"check": "…"}]'`) on all of an order's
-- findings — errors, warnings, accepted warnings — in one index.
CREATE INDEX auftrag_orders_findings ON auftrag_orders
    USING GIN ((errors::jsonb || warnings::jsonb || accepted::jsonb) jsonb_path_ops);

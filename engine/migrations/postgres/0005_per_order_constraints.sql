-- Constraints that only the engine's own writes meet, dropped for what they
-- cost every order (PostgreSQL does work for each on every order; SQLite's
-- equivalents are cheap and stay):
-- * the foreign key from a decision to its order. A decision is written in
--   the same statement as its order's row, and orders are never deleted.
--   The check was one more query per order, run from a plan the server
--   caches per connection: made while the table was small, that plan went on
--   scanning the whole table as it grew (seen: 200 µs per order at 4,000
--   orders, more than all of the order's device rows took to write).
-- * the JSON shape checks. The engine serializes these columns itself; each
--   check parsed its column into jsonb again on every write of the row.
ALTER TABLE auftrag_decisions
    DROP CONSTRAINT IF EXISTS auftrag_decisions_order_id_fkey,
    DROP CONSTRAINT IF EXISTS auftrag_decisions_decision_check;
ALTER TABLE auftrag_orders
    DROP CONSTRAINT IF EXISTS auftrag_orders_fields_check,
    DROP CONSTRAINT IF EXISTS auftrag_orders_changes_check,
    DROP CONSTRAINT IF EXISTS auftrag_orders_states_check,
    DROP CONSTRAINT IF EXISTS auftrag_orders_errors_check,
    DROP CONSTRAINT IF EXISTS auftrag_orders_warnings_check,
    DROP CONSTRAINT IF EXISTS auftrag_orders_accepted_check;

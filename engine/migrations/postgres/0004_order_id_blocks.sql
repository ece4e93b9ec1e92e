-- Order ids are handed out by the engine in blocks of 64 (one `nextval`
-- for 64 orders, see `Store::next_order_id`), so that placing an order does
-- not cost a round trip for its id. Ids stay unique across engines sharing
-- the database; they are not dense (a block an engine did not use up is
-- skipped), as a sequence's never are.
ALTER SEQUENCE auftrag_orders_id_seq INCREMENT BY 64;

-- What an order was about when it was decided: the values of the policy
-- attributes marked record="yes" at its latest authorization decision
-- (JSON object, attribute name → value), e.g. the device it changed with
-- that device's admin and org unit then. Who may read the order is decided
-- on these, not on what the order's host name means today. NULL for orders
-- not decided yet (and those stored before this column).
ALTER TABLE auftrag_orders ADD COLUMN facts TEXT;

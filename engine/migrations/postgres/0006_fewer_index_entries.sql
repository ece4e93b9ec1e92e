-- Fewer index entries per order; each costs the order its insertion and
-- its WAL:
-- * a decision is only ever read with its order's: its primary key is
--   (order_id, id), which serves that read, instead of id alone and a
--   second index on (order_id, id).
-- * jobs are looked up by lease expiry only while leased (BUSY) and by
--   purge time only once finished: partial indexes, which a new job
--   (PENDING, no purge time) does not enter. The sweep's and the purge's
--   conditions (`state = 'BUSY' AND lease_expires_ms < $1`,
--   `purge_ms < $1`) imply the indexes' predicates.
ALTER TABLE auftrag_decisions
    DROP CONSTRAINT auftrag_decisions_pkey,
    ADD PRIMARY KEY (order_id, id);
DROP INDEX auftrag_decisions_order;
DROP INDEX auftrag_jobs_lease;
CREATE INDEX auftrag_jobs_lease ON auftrag_jobs (lease_expires_ms) WHERE state = 'BUSY';
DROP INDEX auftrag_jobs_purge;
CREATE INDEX auftrag_jobs_purge ON auftrag_jobs (purge_ms) WHERE purge_ms IS NOT NULL;

-- Fewer index entries per job (the PostgreSQL migration of the same number
-- also folds a decision's two indexes into one; here a decision's id is its
-- rowid, which costs no index): jobs are looked up by lease expiry only
-- while leased (BUSY) and by purge time only once finished, so partial
-- indexes, which a new job (PENDING, no purge time) does not enter. The
-- sweep's and the purge's conditions imply the indexes' predicates.
DROP INDEX auftrag_jobs_lease;
CREATE INDEX auftrag_jobs_lease ON auftrag_jobs (lease_expires_ms) WHERE state = 'BUSY';
DROP INDEX auftrag_jobs_purge;
CREATE INDEX auftrag_jobs_purge ON auftrag_jobs (purge_ms) WHERE purge_ms IS NOT NULL;

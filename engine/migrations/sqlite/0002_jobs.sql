-- Jobs for the agency (DESIGN.md §8): label printing and computations that
-- wait in a queue of `queues.xml` until an agency inside the network leases
-- them. Times are milliseconds since the Unix epoch, so expiry is a plain
-- integer comparison on every backend.
CREATE TABLE auftrag_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT    NOT NULL,
    job_type         TEXT    NOT NULL,
    owner            TEXT    NOT NULL,
    order_id         INTEGER,
    state            TEXT    NOT NULL CHECK (state IN ('PENDING', 'BUSY', 'COMPLETED', 'FAILED')),
    input            BLOB    NOT NULL,
    output           BLOB,
    exit_code        INTEGER,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    lease_secs       INTEGER NOT NULL,
    retention_secs   INTEGER NOT NULL,
    -- Random per lease: a heartbeat or result must name the lease it holds.
    lease_token      TEXT,
    leased_by        TEXT,
    lease_expires_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    finished_ms      INTEGER,
    -- Finished jobs are deleted after this instant (the queue's retention).
    purge_ms         INTEGER
);
CREATE INDEX auftrag_jobs_pending ON auftrag_jobs (state, queue, id);
CREATE INDEX auftrag_jobs_lease ON auftrag_jobs (state, lease_expires_ms);
CREATE INDEX auftrag_jobs_purge ON auftrag_jobs (purge_ms);
CREATE INDEX auftrag_jobs_owner ON auftrag_jobs (owner, id);

-- Nonces of agency tokens seen within the ±100 s window: a token is accepted
-- once, on whichever instance it arrives.
CREATE TABLE auftrag_agency_nonces (
    nonce      TEXT    PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX auftrag_agency_nonces_expiry ON auftrag_agency_nonces (expires_ms);

-- Jobs for the agency (DESIGN.md §8); same tables as the SQLite migration.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE auftrag_jobs (
    id               BIGSERIAL PRIMARY KEY,
    queue            TEXT   NOT NULL,
    job_type         TEXT   NOT NULL,
    owner            TEXT   NOT NULL,
    order_id         BIGINT,
    state            TEXT   NOT NULL CHECK (state IN ('PENDING', 'BUSY', 'COMPLETED', 'FAILED')),
    input            BYTEA  NOT NULL,
    output           BYTEA,
    exit_code        BIGINT,
    error            TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    lease_secs       BIGINT NOT NULL,
    retention_secs   BIGINT NOT NULL,
    lease_token      TEXT,
    leased_by        TEXT,
    lease_expires_ms BIGINT,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    finished_ms      BIGINT,
    purge_ms         BIGINT
);
CREATE INDEX auftrag_jobs_pending ON auftrag_jobs (state, queue, id);
CREATE INDEX auftrag_jobs_lease ON auftrag_jobs (state, lease_expires_ms);
CREATE INDEX auftrag_jobs_purge ON auftrag_jobs (purge_ms);
CREATE INDEX auftrag_jobs_owner ON auftrag_jobs (owner, id);

CREATE TABLE auftrag_agency_nonces (
    nonce      TEXT   PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX auftrag_agency_nonces_expiry ON auftrag_agency_nonces (expires_ms);

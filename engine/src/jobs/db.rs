//! The SQL of jobs. Every change of a job's state is one conditional UPDATE,
//! so the database decides who holds a lease, whatever the number of engine
//! instances: on PostgreSQL leasing skips rows another transaction holds
//! (`FOR UPDATE SKIP LOCKED`); on SQLite the write transaction
//! (`BEGIN IMMEDIATE`) holds the database lock, so two leases cannot overlap.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{JobError, JobState, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, now_ms, queue_def};
use crate::store::{Backend, Store};
use crate::workflow::defs::Definitions;

const COLUMNS: &str = "id, queue, job_type, owner, order_id, state, input, output, exit_code, \
     error, attempts, max_attempts, lease_secs, lease_token, leased_by, lease_expires_ms, \
     created_ms, updated_ms, finished_ms";

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub job_type: String,
    pub owner: String,
    pub order_id: Option<i64>,
    pub state: JobState,
    pub input: Vec<u8>,
    pub output: Option<Vec<u8>>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_secs: i64,
    pub lease_token: Option<String>,
    pub leased_by: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub finished_ms: Option<i64>,
}

/// A job handed to an agency, with the token its heartbeats and result name.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job: Job,
    pub token: String,
}

fn job_from_row(row: &AnyRow) -> Result<Job, JobError> {
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        job_type: row.try_get("job_type")?,
        owner: row.try_get("owner")?,
        order_id: row.try_get("order_id")?,
        state: JobState::parse(&state).ok_or_else(|| {
            JobError::Engine(crate::EngineError::Internal(format!(
                "stored job has unknown state `{state}`"
            )))
        })?,
        input: row.try_get("input")?,
        output: row.try_get("output")?,
        exit_code: row.try_get("exit_code")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        lease_secs: row.try_get("lease_secs")?,
        lease_token: row.try_get("lease_token")?,
        leased_by: row.try_get("leased_by")?,
        lease_expires_ms: row.try_get("lease_expires_ms")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

/// Creates a PENDING job in `queue` on `conn` (which may be an order's
/// transaction); returns its id.
pub async fn enqueue(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    queue: &str,
    data: &[u8],
    owner: &str,
    order_id: Option<i64>,
) -> Result<i64, JobError> {
    let q = queue_def(defs, queue)?;
    if data.len() > MAX_INPUT_BYTES {
        return Err(JobError::BadRequest(format!(
            "the job data has {} bytes; at most {MAX_INPUT_BYTES} are accepted",
            data.len()
        )));
    }
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO auftrag_jobs (queue, job_type, owner, order_id, state, input, attempts, \
         max_attempts, lease_secs, retention_secs, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, 'PENDING', $5, 0, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(q.name)
    .bind(q.job_type.name())
    .bind(owner)
    .bind(order_id)
    .bind(data.to_vec())
    .bind(i64::from(q.max_attempts.max(1)))
    .bind(i64::from(q.lease_secs.max(1)))
    .bind(i64::from(q.retention_secs))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn load(conn: &mut AnyConnection, id: i64) -> Result<Option<Job>, JobError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM auftrag_jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
}

static PURGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Expired leases: jobs out of attempts are FAILED, the others PENDING again
/// (their attempt was counted when leased). Finished jobs past their
/// retention are deleted.
async fn sweep(conn: &mut AnyConnection, now: i64) -> Result<(), JobError> {
    let failed = sqlx::query(
        "UPDATE auftrag_jobs SET state = 'FAILED', \
         error = 'the lease expired ' || CAST(attempts AS TEXT) || ' times; no agency finished the job', \
         finished_ms = $1, updated_ms = $1, purge_ms = $1 + retention_secs * 1000, lease_expires_ms = NULL \
         WHERE state = 'BUSY' AND lease_expires_ms < $1 AND attempts >= max_attempts",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let again = sqlx::query(
        "UPDATE auftrag_jobs SET state = 'PENDING', lease_token = NULL, leased_by = NULL, \
         lease_expires_ms = NULL, updated_ms = $1 \
         WHERE state = 'BUSY' AND lease_expires_ms < $1",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if failed + again > 0 {
        metrics::counter!("auftrag_job_lease_expiries_total").increment(failed + again);
    }
    if super::every_nth(&PURGES, 64) {
        sqlx::query("DELETE FROM auftrag_jobs WHERE purge_ms < $1")
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Leases up to `max` PENDING jobs of `queues` to `agency`, oldest first.
pub async fn lease(
    store: &Store,
    agency: &str,
    queues: &[&str],
    max: usize,
) -> Result<Vec<Lease>, JobError> {
    if queues.is_empty() || max == 0 {
        return Ok(Vec::new());
    }
    let token = super::token::random_hex(16);
    let now = now_ms();
    let mut tx = store.begin_write().await?;
    sweep(&mut tx, now).await?;
    let list: Vec<String> = (0..queues.len()).map(|i| format!("${}", i + 4)).collect();
    // The jobs to lease are picked first, once: PostgreSQL may run a
    // `LIMIT … FOR UPDATE SKIP LOCKED` subquery in `WHERE id IN (…)` more
    // than once within the UPDATE, each run skipping the rows the last one
    // locked — and lease more jobs than asked for (all three of three with
    // `max` 1). A materialized CTE runs once.
    let pick = match store.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let materialized = match store.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " MATERIALIZED",
    };
    let sql = format!(
        "WITH picked AS{materialized} (SELECT id FROM auftrag_jobs WHERE state = 'PENDING' \
         AND queue IN ({}) ORDER BY id LIMIT {}{pick}) \
         UPDATE auftrag_jobs SET state = 'BUSY', attempts = attempts + 1, lease_token = $1, \
         leased_by = $2, lease_expires_ms = $3 + lease_secs * 1000, updated_ms = $3 \
         WHERE state = 'PENDING' AND id IN (SELECT id FROM picked) RETURNING {COLUMNS}",
        list.join(", "),
        max.min(1000)
    );
    let mut query = sqlx::query(&sql).bind(&token).bind(agency).bind(now);
    for q in queues {
        query = query.bind(*q);
    }
    let rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let mut leases = rows
        .iter()
        .map(|r| {
            job_from_row(r).map(|job| Lease {
                job,
                token: token.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    leases.sort_by_key(|l| l.job.id);
    for l in &leases {
        metrics::histogram!("auftrag_agency_pickup_seconds", "queue" => l.job.queue.clone())
            .record((now - l.job.created_ms).max(0) as f64 / 1000.0);
    }
    Ok(leases)
}

/// Why a heartbeat or result of the lease `token` on job `id` was refused.
async fn refusal(conn: &mut AnyConnection, id: i64, token: Option<&str>) -> JobError {
    match load(conn, id).await {
        Err(e) => e,
        Ok(None) => JobError::NotFound(id),
        Ok(Some(job)) => JobError::LeaseLost(match job.state {
            JobState::Completed | JobState::Failed => format!(
                "job {id} is {} already; its result was recorded once and is not replaced",
                job.state.as_str()
            ),
            JobState::Pending => format!(
                "the lease on job {id} expired and the job waits to be handed out again; \
                 this result is refused"
            ),
            JobState::Busy if token.is_some() => format!(
                "the lease on job {id} expired and the job was handed out again; \
                 this result is refused"
            ),
            JobState::Busy => format!("job {id} is BUSY"),
        }),
    }
}

/// Extends the lease `token` on job `id` by the queue's lease time; returns
/// the new expiry (ms).
pub async fn heartbeat(store: &Store, id: i64, token: &str) -> Result<i64, JobError> {
    let now = now_ms();
    let mut conn = store.write_conn().await?;
    let expires: Option<i64> = sqlx::query_scalar(
        "UPDATE auftrag_jobs SET lease_expires_ms = $1 + lease_secs * 1000, updated_ms = $1 \
         WHERE id = $2 AND state = 'BUSY' AND lease_token = $3 RETURNING lease_expires_ms",
    )
    .bind(now)
    .bind(id)
    .bind(token)
    .fetch_optional(&mut *conn)
    .await?;
    match expires {
        Some(e) => Ok(e),
        None => Err(refusal(&mut conn, id, Some(token)).await),
    }
}

/// The end of a job as an agency reports it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: JobState,
    pub output: Vec<u8>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
}

impl Outcome {
    fn checked(&self) -> Result<(), JobError> {
        if !self.state.is_final() {
            return Err(JobError::BadRequest(
                "a result's status is COMPLETED or FAILED".into(),
            ));
        }
        if self.output.len() > MAX_OUTPUT_BYTES {
            return Err(JobError::BadRequest(format!(
                "the output has {} bytes; at most {MAX_OUTPUT_BYTES} are stored",
                self.output.len()
            )));
        }
        Ok(())
    }
}

/// Records the result of the lease `token` on job `id`. The job must still
/// be BUSY under that lease; a repeated delivery of the same result (the
/// agency did not see the first answer) is answered with the job as recorded.
pub async fn finish(
    store: &Store,
    id: i64,
    token: &str,
    outcome: &Outcome,
) -> Result<Job, JobError> {
    outcome.checked()?;
    let now = now_ms();
    let mut conn = store.write_conn().await?;
    let row = sqlx::query(&format!(
        "UPDATE auftrag_jobs SET state = $1, output = $2, exit_code = $3, error = $4, \
         finished_ms = $5, updated_ms = $5, purge_ms = $5 + retention_secs * 1000, \
         lease_expires_ms = NULL \
         WHERE id = $6 AND state = 'BUSY' AND lease_token = $7 RETURNING {COLUMNS}"
    ))
    .bind(outcome.state.as_str())
    .bind(outcome.output.clone())
    .bind(outcome.exit_code)
    .bind(outcome.error.clone())
    .bind(now)
    .bind(id)
    .bind(token)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return job_from_row(&row);
    }
    if let Some(job) = load(&mut conn, id).await?
        && job.state == outcome.state
        && job.lease_token.as_deref() == Some(token)
        && job.output.as_deref().unwrap_or_default() == outcome.output.as_slice()
    {
        return Ok(job);
    }
    Err(refusal(&mut conn, id, Some(token)).await)
}

/// CRIMSy's UPDATE: it names no lease, so it applies to the job as long as
/// it is not finished. BUSY extends (or takes) the lease, PENDING gives the
/// job back, COMPLETED / FAILED record the result once.
pub async fn crimsy_update(
    store: &Store,
    id: i64,
    state: JobState,
    output: Vec<u8>,
) -> Result<Job, JobError> {
    let now = now_ms();
    let mut conn = store.write_conn().await?;
    let row = match state {
        JobState::Busy => {
            sqlx::query(&format!(
                "UPDATE auftrag_jobs SET attempts = attempts + CASE WHEN state = 'PENDING' THEN 1 ELSE 0 END, \
                 state = 'BUSY', lease_token = COALESCE(lease_token, 'crimsy'), \
                 leased_by = COALESCE(leased_by, 'crimsy'), \
                 lease_expires_ms = $1 + lease_secs * 1000, updated_ms = $1 \
                 WHERE id = $2 AND state IN ('PENDING', 'BUSY') RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        }
        JobState::Pending => {
            sqlx::query(&format!(
                "UPDATE auftrag_jobs SET state = 'PENDING', lease_token = NULL, leased_by = NULL, \
                 lease_expires_ms = NULL, updated_ms = $1 \
                 WHERE id = $2 AND state IN ('PENDING', 'BUSY') RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        }
        JobState::Completed | JobState::Failed => {
            let outcome = Outcome {
                state,
                output,
                exit_code: None,
                error: None,
            };
            outcome.checked()?;
            sqlx::query(&format!(
                "UPDATE auftrag_jobs SET state = $1, output = $2, finished_ms = $3, updated_ms = $3, \
                 purge_ms = $3 + retention_secs * 1000, lease_expires_ms = NULL \
                 WHERE id = $4 AND state IN ('PENDING', 'BUSY') RETURNING {COLUMNS}"
            ))
            .bind(state.as_str())
            .bind(outcome.output)
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    match row {
        Some(row) => job_from_row(&row),
        None => Err(refusal(&mut conn, id, None).await),
    }
}

/// Filters of a NetJob QUERY (and of job listings).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub id: Option<i64>,
    pub job_type: Option<String>,
    pub queue: Option<String>,
    pub state: Option<JobState>,
    pub owner: Option<String>,
    pub limit: i64,
}

/// Jobs matching the filter, oldest first.
pub async fn query(conn: &mut AnyConnection, filter: &JobFilter) -> Result<Vec<Job>, JobError> {
    let mut sql = format!("SELECT {COLUMNS} FROM auftrag_jobs WHERE 1 = 1");
    let mut texts: Vec<String> = Vec::new();
    let mut push = |sql: &mut String, column: &str, value: String| {
        texts.push(value);
        sql.push_str(&format!(" AND {column} = ${}", texts.len()));
    };
    if let Some(v) = &filter.job_type {
        push(&mut sql, "job_type", v.clone());
    }
    if let Some(v) = &filter.queue {
        push(&mut sql, "queue", v.clone());
    }
    if let Some(v) = filter.state {
        push(&mut sql, "state", v.as_str().to_owned());
    }
    if let Some(v) = &filter.owner {
        push(&mut sql, "owner", v.clone());
    }
    if let Some(id) = filter.id {
        sql.push_str(&format!(" AND id = {id}"));
    }
    sql.push_str(&format!(
        " ORDER BY id LIMIT {}",
        filter.limit.clamp(1, 1000)
    ));
    let mut q = sqlx::query(&sql);
    for t in texts {
        q = q.bind(t);
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
}

/// How many jobs each queue holds in each state: (queue, state, jobs), by
/// queue and state (the agency page).
pub async fn state_counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, i64)>, JobError> {
    Ok(sqlx::query_as(
        "SELECT queue, state, COUNT(*) FROM auftrag_jobs GROUP BY queue, state ORDER BY queue, state",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// The newest `limit` (1–1000) jobs in `state`, newest first (the agency
/// page's failures).
pub async fn newest(
    conn: &mut AnyConnection,
    state: JobState,
    limit: i64,
) -> Result<Vec<Job>, JobError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM auftrag_jobs WHERE state = $1 ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 1000)
    ))
    .bind(state.as_str())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(job_from_row)
    .collect()
}

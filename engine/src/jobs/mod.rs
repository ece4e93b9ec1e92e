//! Jobs for the agency (DESIGN.md §8).
//!
//! A job waits as PENDING in a queue of `queues.xml` until an agency inside
//! the network leases it: the job turns BUSY for the queue's lease time, and
//! the agency extends the lease with heartbeats while its script runs. A lease
//! carries a random token; a heartbeat or result must name it, so when a lease
//! expired and the job went to another agency, the first agency's late result
//! is refused (409) and every job's result is recorded exactly once. An
//! expired lease puts the job back to PENDING, its attempt counted; after the
//! queue's `max_attempts` it is FAILED.
//!
//! - [`db`]: the SQL (leasing with `FOR UPDATE SKIP LOCKED` on PostgreSQL; on
//!   SQLite the write transaction holds the database lock),
//! - [`token`]: the shared secret and CRIMSy's HMAC token with replay guard,
//! - [`netjob`]: CRIMSy's NetJob XML (`POST /ui/rest/print`),
//! - [`http`]: the routes.
//!
//! Workflow actions create jobs with [`enqueue_for_order`]; they are
//! written with the order's row, in the order's transaction, so the job
//! exists exactly when the order's new state does.

pub mod db;
pub mod http;
pub mod netjob;
pub mod token;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::error::{EngineError, HandlerError};
use crate::workflow::context::ActionCtx;
use crate::workflow::defs::Definitions;

pub use db::{Job, Lease, enqueue};

/// Wakes long-polling agencies of this process when a job is created. Other
/// instances find the job on their next re-query (the database decides who
/// gets it, so waking is only about latency).
pub(crate) static NEW_JOBS: Notify = Notify::const_new();

/// Tells waiting long-polls of this process to look for jobs again.
pub fn wake_pollers() {
    NEW_JOBS.notify_waiters();
}

/// Largest job input accepted (the agency pipes it to a script).
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;
/// Largest job output stored; agencies cut longer output to their limit.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// CRIMSy's job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    Pending,
    Busy,
    Completed,
    Failed,
}

impl JobState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Busy => "BUSY",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => Some(Self::Pending),
            "BUSY" => Some(Self::Busy),
            "COMPLETED" => Some(Self::Completed),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }

    pub const fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// Errors of job operations; HTTP turns them into problem documents.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    BadRequest(String),
    #[error("there is no job {0}")]
    NotFound(i64),
    /// The caller's lease is gone (expired and handed out again, or the job
    /// is finished): its heartbeat or result is refused.
    #[error("{0}")]
    LeaseLost(String),
    /// A failed agency token check; deliberately says nothing more.
    #[error("the agency token is not valid")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Engine(EngineError::Db(e))
    }
}

/// The queue named `name`, or a request error that lists the queues.
pub fn queue_def(
    defs: &'static Definitions,
    name: &str,
) -> Result<&'static crate::workflow::defs::QueueDef, JobError> {
    defs.queue(name).ok_or_else(|| {
        let known: Vec<&str> = defs.queues.iter().map(|q| q.name).collect();
        let hint = (name.len() <= MAX_SHOWN_CHARS)
            .then(|| crate::http::did_you_mean(name, &known))
            .flatten()
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        JobError::BadRequest(format!(
            "there is no job queue `{}`{hint} (queues.xml defines: {})",
            shown(name),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// A job queue of `queues.xml`, as a handler names it: the compiler
/// generates one constant per queue next to the definitions
/// (`queues::LABELS` for `<queue name="labels">`), so a queue that does not
/// exist is a compile error (rustc names the closest one), not a failing
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Queue(&'static str);

impl Queue {
    /// For the generated `queues::NAME` constants only: a handle made
    /// with another name finds no queue when a job is created.
    #[doc(hidden)]
    pub const fn declared(name: &'static str) -> Self {
        Self(name)
    }

    /// The queue's name in `queues.xml`.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A job a workflow action created, written with the order's row (see
/// [`crate::store::Pending`]).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: &'static str,
    pub job_type: &'static str,
    pub owner: String,
    pub input: Vec<u8>,
    pub max_attempts: i64,
    pub lease_secs: i64,
    pub retention_secs: i64,
    pub created_ms: i64,
}

/// Creates a job from a workflow action, owned by the order's requester and
/// linked to the order. It is written with the order's row, in the order's
/// transaction, and long-polling agencies of this process are woken when
/// that commits — so a job exists exactly when its order's step does.
/// `queue` is a generated handle (`queues::NAME`); the job fails at once
/// only for oversized data, or a handle of other definitions than the
/// engine runs.
pub async fn enqueue_for_order(
    ctx: &mut ActionCtx<'_>,
    queue: Queue,
    data: &[u8],
) -> Result<(), HandlerError> {
    let fail =
        |e: JobError| HandlerError::Failed(format!("creating a job in queue `{queue}`: {e}"));
    let q = queue_def(ctx.defs, queue.name()).map_err(fail)?;
    if data.len() > MAX_INPUT_BYTES {
        return Err(fail(JobError::BadRequest(format!(
            "the job data has {} bytes; at most {MAX_INPUT_BYTES} are accepted",
            data.len()
        ))));
    }
    ctx.pending.jobs.push(NewJob {
        queue: q.name,
        job_type: q.job_type.name(),
        owner: ctx.order.requester.clone(),
        input: data.to_vec(),
        max_attempts: i64::from(q.max_attempts.max(1)),
        lease_secs: i64::from(q.lease_secs.max(1)),
        retention_secs: i64::from(q.retention_secs),
        created_ms: now_ms(),
    });
    Ok(())
}

/// A job as the owner and staff see it (`GET /api/v1/jobs/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: i64,
    pub queue: String,
    pub job_type: String,
    pub state: JobState,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The output as text, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_base64: Option<String>,
}

/// An instant in milliseconds as RFC 3339.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(crate::store::history::format_instant)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// True on the first and then every `n`-th call: housekeeping (deleting
/// expired nonces and finished jobs past retention) runs now and then, not
/// on every request; expired rows are harmless meanwhile.
pub(crate) fn every_nth(counter: &std::sync::atomic::AtomicU64, n: u64) -> bool {
    counter
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(n)
}

/// Most characters of a request's value quoted back in an error.
pub const MAX_SHOWN_CHARS: usize = 40;

/// A value from a request, cut to [`MAX_SHOWN_CHARS`] for quoting it in an
/// error: answers never echo input wholesale (a parse error of a 30 MB body
/// must not answer 30 MB).
pub fn shown(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &value[..cut], value.len())),
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn unb64(what: &str, text: &str) -> Result<Vec<u8>, JobError> {
    use base64::Engine as _;
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| JobError::BadRequest(format!("`{what}` is not valid base64: {e}")))
}

impl Job {
    pub fn view(&self) -> JobView {
        let output = self.output.as_ref();
        JobView {
            id: self.id,
            queue: self.queue.clone(),
            job_type: self.job_type.clone(),
            state: self.state,
            owner: self.owner.clone(),
            order_id: self.order_id,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: format_ms(self.created_ms),
            updated_at: format_ms(self.updated_ms),
            finished_at: self.finished_ms.map(format_ms),
            lease_expires_at: self
                .lease_expires_ms
                .filter(|_| self.state == JobState::Busy)
                .map(format_ms),
            exit_code: self.exit_code,
            error: self.error.clone(),
            output: output.and_then(|o| String::from_utf8(o.clone()).ok()),
            output_base64: output.map(|o| b64(o)),
        }
    }
}

/// Used by `ActionCtx` users that hold an `AnyConnection` but no context.
pub async fn job(conn: &mut AnyConnection, id: i64) -> Result<Option<Job>, JobError> {
    db::load(conn, id).await
}

//! The agency and its jobs (`/ui/jobs`, staff only): the queues of the
//! definitions, how many jobs each holds in each state, the jobs agencies
//! work on with their leases, and the latest failures with exit code and
//! the end of what the script wrote to stderr.
//!
//! The page refuses everyone but staff before it reads anything (as
//! `GET /api/v1/jobs` lists other people's jobs to staff only); leaving
//! the link out of the navigation is a courtesy.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::views::{Chrome, problem, render, signed_in};
use crate::error::EngineError;
use crate::http::server::AppState;
use crate::jobs::{JobError, JobState, db};

/// Failures shown.
const FAILURES: i64 = 50;
/// BUSY jobs shown.
const BUSY: i64 = 200;
/// Characters of a failure's error (the agency's reason and the end of the
/// script's stderr) shown.
const TAIL_CHARS: usize = 800;

pub struct QueueRow {
    pub name: String,
    pub description: String,
    pub job_type: String,
    pub lease_secs: String,
    pub max_attempts: String,
    pub retention: String,
    /// Jobs per state, in the order of [`STATES`].
    pub counts: Vec<i64>,
    /// Not (any more) in the definitions, but jobs are stored for it.
    pub unknown: bool,
}

pub struct BusyRow {
    pub id: i64,
    pub queue: String,
    pub order_id: Option<i64>,
    pub owner: String,
    pub leased_by: String,
    pub until: String,
    pub attempts: String,
}

pub struct FailureRow {
    pub id: i64,
    pub queue: String,
    pub order_id: Option<i64>,
    pub finished: String,
    pub attempts: String,
    pub exit_code: String,
    pub tail: String,
}

const STATES: [JobState; 4] = [
    JobState::Pending,
    JobState::Busy,
    JobState::Completed,
    JobState::Failed,
];

#[derive(Template)]
#[template(path = "ui/jobs.html")]
struct JobsPage<'a> {
    c: &'a Chrome,
    states: Vec<&'static str>,
    queues: Vec<QueueRow>,
    busy: Vec<BusyRow>,
    failures: Vec<FailureRow>,
}

/// Milliseconds since the epoch as the pages show instants.
fn at_ms(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return String::new();
    };
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => {
            let f = time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            );
            t.format(&f).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

fn secs(s: impl Into<i64>) -> String {
    let s = s.into();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// The last `n` characters of `text`, with `…` before when cut.
fn tail(text: &str, n: usize) -> String {
    let count = text.chars().count();
    if count <= n {
        return text.to_owned();
    }
    let cut: String = text.chars().skip(count - n).collect();
    format!("…{cut}")
}

fn engine_error(e: JobError) -> EngineError {
    match e {
        JobError::Engine(e) => e,
        other => EngineError::Internal(other.to_string()),
    }
}

pub(super) async fn jobs_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let engine = &state.engine;
    let (_, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !c.staff {
        return problem(
            &c,
            EngineError::Forbidden("the agency and jobs page is for staff".into()),
        );
    }
    let read = async {
        let mut conn = engine.store.acquire().await?;
        let counts = db::state_counts(&mut conn).await.map_err(engine_error)?;
        let busy = db::query(
            &mut conn,
            &db::JobFilter {
                state: Some(JobState::Busy),
                limit: BUSY,
                ..db::JobFilter::default()
            },
        )
        .await
        .map_err(engine_error)?;
        let failed = db::newest(&mut conn, JobState::Failed, FAILURES)
            .await
            .map_err(engine_error)?;
        Ok::<_, EngineError>((counts, busy, failed))
    };
    let (counts, busy, failed) = match read.await {
        Ok(r) => r,
        Err(e) => return problem(&c, e),
    };
    let mut per_queue: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for (queue, state, n) in counts {
        if let Some(i) = STATES.iter().position(|s| s.as_str() == state) {
            per_queue.entry(queue).or_default()[i] += n;
        }
    }
    let mut queues: Vec<QueueRow> = engine
        .defs
        .queues
        .iter()
        .map(|q| QueueRow {
            name: q.name.to_owned(),
            description: q.description.to_owned(),
            job_type: q.job_type.name().to_owned(),
            lease_secs: secs(q.lease_secs),
            max_attempts: q.max_attempts.to_string(),
            retention: secs(q.retention_secs),
            counts: per_queue.remove(q.name).unwrap_or_default().to_vec(),
            unknown: false,
        })
        .collect();
    // jobs of queues the definitions no longer name
    queues.extend(per_queue.into_iter().map(|(name, counts)| QueueRow {
        name,
        description: String::new(),
        job_type: String::new(),
        lease_secs: String::new(),
        max_attempts: String::new(),
        retention: String::new(),
        counts: counts.to_vec(),
        unknown: true,
    }));
    let busy = busy
        .into_iter()
        .map(|j| BusyRow {
            id: j.id,
            queue: j.queue,
            order_id: j.order_id,
            owner: j.owner,
            leased_by: j.leased_by.unwrap_or_default(),
            until: at_ms(j.lease_expires_ms),
            attempts: format!("{} / {}", j.attempts, j.max_attempts),
        })
        .collect();
    let failures = failed
        .into_iter()
        .map(|j| FailureRow {
            id: j.id,
            queue: j.queue,
            order_id: j.order_id,
            finished: at_ms(j.finished_ms),
            attempts: format!("{} / {}", j.attempts, j.max_attempts),
            exit_code: j.exit_code.map(|e| e.to_string()).unwrap_or_default(),
            tail: tail(j.error.as_deref().unwrap_or_default(), TAIL_CHARS),
        })
        .collect();
    render(
        StatusCode::OK,
        &JobsPage {
            c: &c,
            states: STATES.iter().map(|s| s.as_str()).collect(),
            queues,
            busy,
            failures,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_end() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("0123456789", 4), "…6789");
        assert_eq!(tail("äöü", 2), "…öü");
    }

    #[test]
    fn instants_and_durations() {
        assert_eq!(at_ms(Some(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(at_ms(None), "");
        assert_eq!(secs(60u32), "60 s");
        assert_eq!(secs(300u32), "5 min");
        assert_eq!(secs(30 * 86_400u32), "30 d");
    }
}

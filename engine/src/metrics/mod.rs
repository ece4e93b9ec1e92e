//! Prometheus metrics (`GET /metrics`): what the engine does, for
//! operators. The engine records through the `metrics` facade where things
//! happen; this module installs the Prometheus recorder once per process,
//! adds the gauges read from the database at scrape time, and decides who
//! may scrape.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `auftrag_http_requests_total` | route, method, status | requests answered |
//! | `auftrag_http_request_duration_seconds` | route, method | latency histogram |
//! | `auftrag_orders_closed_total` | type, state | orders that reached a final state |
//! | `auftrag_orders_open` | type, state | orders not closed (gauge, from the database) |
//! | `auftrag_check_findings_total` | check, severity, stage | errors and warnings checks reported |
//! | `auftrag_decisions_total` | policy, rule, decision | authorization decisions |
//! | `auftrag_group_commit_orders` | | orders per shared commit (histogram) |
//! | `auftrag_jobs` | queue, state | jobs (gauge, from the database) |
//! | `auftrag_job_lease_expiries_total` | queue | leases that ran out and put a job back |
//! | `auftrag_agency_pickup_seconds` | queue | time from a job's creation to its lease |
//! | `auftrag_history_export_pending` | | order writes not yet copied to MongoDB (gauge, with `--history`) |
//! | `auftrag_history_export_oldest_seconds` | | age of the oldest of them (gauge, with `--history`) |

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::Row;

use crate::error::EngineError;
use crate::http::server::AppState;
use crate::http::{ApiResult, credentials};

/// The process's recorder: installed by the first engine that asks (tests
/// start many engines in one process; they share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    60.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("auftrag_group_commit_orders".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only the database gauges"
            );
        }
        handle
    })
}

/// Route layer: counts each answered request and its latency, by the
/// route's pattern (never the raw path: ids would make a series each).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("auftrag_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("auftrag_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
/// `GET /metrics`: Prometheus text format. Scrapers authenticate with
/// `Authorization: Bearer` and either the metrics token (`auftrag serve
/// --metrics-token-file`) or a token of a staff person.
pub async fn scrape(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let engine = &state.engine;
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| credentials(v, "Bearer"))
        .ok_or_else(|| {
            EngineError::Unauthorized(
                "/metrics needs `Authorization: Bearer TOKEN`: the metrics token (serve --metrics-token-file) or a staff person's token".into(),
            )
        })?;
    let scraper = match &engine.metrics_token {
        Some(expected)
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                token.as_bytes(),
            )) =>
        {
            true
        }
        _ => {
            let principal = crate::http::auth::authenticate(engine, request.headers()).await?;
            principal.is_staff(&engine.store).await?
        }
    };
    if !scraper {
        return Err(EngineError::Forbidden(
            "only staff or the metrics token may read /metrics".into(),
        )
        .into());
    }
    let mut text = handle().render();
    database_gauges(engine, &mut text).await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Gauges that are facts of the database (several instances share one):
/// read at scrape time, not counted by this process.
async fn database_gauges(engine: &crate::Engine, out: &mut String) -> Result<(), EngineError> {
    use std::fmt::Write;
    let mut conn = engine.store.acquire().await?;
    let open = sqlx::query(
        "SELECT order_type, state, COUNT(*) FROM auftrag_orders WHERE closed = 0 GROUP BY order_type, state",
    )
    .fetch_all(&mut *conn)
    .await?;
    let _ = writeln!(
        out,
        "# HELP auftrag_orders_open Orders not in a final state."
    );
    let _ = writeln!(out, "# TYPE auftrag_orders_open gauge");
    for row in &open {
        let _ = writeln!(
            out,
            "auftrag_orders_open{{type=\"{}\",state=\"{}\"}} {}",
            label(&row.try_get::<String, _>(0)?),
            label(&row.try_get::<String, _>(1)?),
            row.try_get::<i64, _>(2)?
        );
    }
    let jobs = sqlx::query("SELECT queue, state, COUNT(*) FROM auftrag_jobs GROUP BY queue, state")
        .fetch_all(&mut *conn)
        .await?;
    let _ = writeln!(out, "# HELP auftrag_jobs Jobs by queue and state.");
    let _ = writeln!(out, "# TYPE auftrag_jobs gauge");
    for row in &jobs {
        let _ = writeln!(
            out,
            "auftrag_jobs{{queue=\"{}\",state=\"{}\"}} {}",
            label(&row.try_get::<String, _>(0)?),
            label(&row.try_get::<String, _>(1)?),
            row.try_get::<i64, _>(2)?
        );
    }
    drop(conn);
    if engine.history.is_some() {
        let lag = crate::history::exporter::lag(&engine.store, &engine.history_status).await?;
        let _ = writeln!(
            out,
            "# HELP auftrag_history_export_pending Order writes not yet copied to the MongoDB history store."
        );
        let _ = writeln!(out, "# TYPE auftrag_history_export_pending gauge");
        let _ = writeln!(out, "auftrag_history_export_pending {}", lag.pending);
        let _ = writeln!(
            out,
            "# HELP auftrag_history_export_oldest_seconds Age of the oldest order write not yet copied to MongoDB."
        );
        let _ = writeln!(out, "# TYPE auftrag_history_export_oldest_seconds gauge");
        let _ = writeln!(
            out,
            "auftrag_history_export_oldest_seconds {}",
            lag.oldest_pending_secs
        );
    }
    Ok(())
}

/// A label value in the text format's escaping.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

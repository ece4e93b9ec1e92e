//! Routes of jobs and the agency:
//!
//! - `POST /api/v1/jobs`, `GET /api/v1/jobs`, `GET /api/v1/jobs/{id}` (bearer token),
//! - `POST /api/v1/agency/poll`, `POST /api/v1/agency/jobs/{id}` (agency token
//!   in `Authorization: Agency TOKEN`),
//! - `PUT /api/v1/agency/secret`, `POST /api/v1/agency/secret/rotate` (staff),
//! - `POST /ui/rest/print` (CRIMSy NetJob XML, token in the body).

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::db::{self, JobFilter, Outcome};
use super::netjob::{self, JobList, MAX_BODY_BYTES, NetJob, PRE_AUTH_BYTES, Refusal, TokenScan};
use super::{JobError, JobState, JobView, NEW_JOBS, b64, format_ms, shown, token, unb64};
use crate::http::server::AppState;
use crate::http::{ApiJson, ApiResult, Problem};
use crate::workflow::context::Principal;
use crate::workflow::defs::QueueDef;

/// Longest long-poll an agency may ask for.
pub const MAX_WAIT_SECS: u64 = 60;
/// While a long-poll waits, the database is asked again this often, so jobs
/// created on another instance (or whose lease expired) are found too.
const RECHECK: Duration = Duration::from_millis(1000);
/// Largest text kept of a script's error tail.
const MAX_ERROR_CHARS: usize = 8192;
/// Longest NetJob field other than `input`, `output` and `token`.
const MAX_FIELD_CHARS: usize = 256;
/// The challenge of the agency routes' 401: their token is CRIMSy's, in
/// `Authorization: Agency TOKEN` or NetJob's `<token>`, not a bearer token.
pub const AGENCY_CHALLENGE: &str = "Agency realm=\"auftrag agency\"";

pub fn routes() -> OpenApiRouter<AppState> {
    // Routes an agency calls with CRIMSy's token: their 401 names `Agency`.
    let agency = OpenApiRouter::new()
        .routes(routes!(poll))
        .routes(routes!(report))
        // Reads its body itself, within `netjob`'s limits (the token first).
        .routes(routes!(print))
        .route_layer(axum::middleware::map_response(agency_challenge));
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(set_secret))
        .routes(routes!(rotate_secret))
        .merge(agency)
        // Results carry up to 16 MiB of output, base64-encoded; the JSON
        // routes check the token in the header before reading the body.
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
}

/// A 401 of an agency route names the `Agency` scheme.
async fn agency_challenge(mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(AGENCY_CHALLENGE),
        );
    }
    response
}

impl From<JobError> for Problem {
    fn from(e: JobError) -> Self {
        match e {
            JobError::BadRequest(d) => Problem::bad_request(d),
            JobError::NotFound(id) => Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("there is no job {id}"),
            ),
            JobError::LeaseLost(d) => Problem::new(StatusCode::CONFLICT, "Conflict", d),
            JobError::Unauthorized => Problem::unauthorized(
                "Agency",
                "the agency token is not valid; agencies send `Authorization: Agency TOKEN` (CRIMSy: `<token>` in the NetJob)",
            ),
            JobError::Forbidden(d) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", d),
            JobError::Engine(e) => Problem::from(e),
        }
    }
}

/// A job id from the path.
struct JobId(i64);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r: PathRejection| {
                Problem::bad_request(format!(
                    "the job id must be a number: {}",
                    shown(&r.body_text())
                ))
            })?;
        crate::http::parse_id(&raw).map(JobId).ok_or_else(|| {
            Problem::bad_request(format!(
                "the job id must be a number such as 17, not `{}`",
                raw.escape_debug()
            ))
        })
    }
}

/// A request whose `Authorization: Agency TOKEN` passed the token check.
struct Agency;

impl FromRequestParts<AppState> for Agency {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::http::credentials(v, "Agency"))
            .ok_or(JobError::Unauthorized)?;
        token::verify(&state.engine.store, token).await?;
        Ok(Agency)
    }
}

// ---------------------------------------------------------------- users

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    queue: String,
    /// Job data as text.
    #[serde(default)]
    data: Option<String>,
    /// Job data as base64 (binary data).
    #[serde(default)]
    data_base64: Option<String>,
}

/// A new PENDING job in a queue of `queues.xml`, owned by the caller.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = CreateBody,
    responses((status = 201, description = "The job", body = JobView)))]
async fn create_job(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let data = match (body.data, body.data_base64) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(
                "give the job data as `data` (text) or `data_base64`, not both",
            ));
        }
        (Some(text), None) => text.into_bytes(),
        (None, Some(b)) => unb64("data_base64", &b)?,
        (None, None) => Vec::new(),
    };
    let engine = &state.engine;
    let mut conn = engine.store.write_conn().await?;
    let id = db::enqueue(
        &mut conn,
        engine.defs,
        &body.queue,
        &data,
        &principal.person,
        None,
    )
    .await?;
    let job = db::load(&mut conn, id)
        .await?
        .ok_or(JobError::NotFound(id))?;
    super::wake_pollers();
    Ok((StatusCode::CREATED, Json(job.view())))
}

/// A job: state, attempts, result (owner or staff).
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "The job", body = JobView)))]
async fn get_job(
    State(state): State<AppState>,
    principal: Principal,
    JobId(id): JobId,
) -> ApiResult<Json<JobView>> {
    let mut conn = state.engine.store.acquire().await?;
    let job = db::load(&mut conn, id)
        .await?
        .ok_or(JobError::NotFound(id))?;
    if job.owner != principal.person && !principal.is_staff(&state.engine.store).await? {
        return Err(JobError::Forbidden(format!(
            "job {id} belongs to another person; only they and staff may read it"
        ))
        .into());
    }
    Ok(Json(job.view()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct JobListBody {
    jobs: Vec<JobView>,
}

/// Jobs, by queue, state and owner (staff see all).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(("queue" = Option<String>, Query), ("state" = Option<String>, Query), ("owner" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, description = "The jobs", body = JobListBody)))]
async fn list_jobs(
    State(state): State<AppState>,
    principal: Principal,
    crate::http::ApiQuery(query): crate::http::ApiQuery,
) -> ApiResult<Json<JobListBody>> {
    const KNOWN: [&str; 4] = ["queue", "state", "owner", "limit"];
    if let Some(unknown) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Problem::bad_request(format!(
            "unknown query parameter `{unknown}` (known: {})",
            KNOWN.join(", ")
        )));
    }
    let get = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let state_filter = match get("state") {
        None => None,
        Some(s) => Some(JobState::parse(&s).ok_or_else(|| {
            Problem::bad_request(format!(
                "`state` is one of PENDING, BUSY, COMPLETED, FAILED, not `{}`",
                shown(&s)
            ))
        })?),
    };
    let owner = match (principal.is_staff(&state.engine.store).await?, get("owner")) {
        (true, owner) => owner,
        (false, Some(o)) if o != principal.person => {
            return Err(JobError::Forbidden(
                "you may list only your own jobs; staff may list all".into(),
            )
            .into());
        }
        (false, _) => Some(principal.person.clone()),
    };
    let limit = crate::store::parse_limit(get("limit").as_deref()).map_err(Problem::bad_request)?;
    let filter = JobFilter {
        queue: get("queue"),
        state: state_filter,
        owner,
        limit,
        ..JobFilter::default()
    };
    let mut conn = state.engine.store.acquire().await?;
    let jobs = db::query(&mut conn, &filter).await?;
    Ok(Json(JobListBody {
        jobs: jobs.iter().map(|j| j.view()).collect(),
    }))
}

// ---------------------------------------------------------------- agency

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PollBody {
    /// A name for the agency, recorded with its leases.
    #[serde(default)]
    agency: Option<String>,
    /// Queues to serve; empty: all queues of `job_types`.
    #[serde(default)]
    queues: Vec<String>,
    /// Job types to serve (PRINT, COMPUTE); empty: those of `queues`.
    #[serde(default)]
    job_types: Vec<String>,
    /// Seconds to wait for a job when none is there (long-poll), at most 60.
    #[serde(default)]
    wait_secs: u64,
    /// Jobs to lease at most (the agency's free slots), 1 to 100.
    #[serde(default)]
    max_jobs: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LeasedJob {
    id: i64,
    queue: String,
    job_type: String,
    /// Name it in heartbeats and the result.
    lease: String,
    lease_secs: i64,
    lease_expires_at: String,
    attempt: i64,
    input_base64: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PollAnswer {
    jobs: Vec<LeasedJob>,
}

/// The queues a poll serves.
fn select_queues(
    defs: &'static crate::workflow::defs::Definitions,
    queues: &[String],
    job_types: &[String],
) -> Result<Vec<&'static QueueDef>, JobError> {
    if queues.is_empty() && job_types.is_empty() {
        return Err(JobError::BadRequest(
            "name the `queues` or `job_types` (PRINT, COMPUTE) this agency serves".into(),
        ));
    }
    for q in queues {
        super::queue_def(defs, q)?;
    }
    for t in job_types {
        if !matches!(t.as_str(), "PRINT" | "COMPUTE") {
            return Err(JobError::BadRequest(format!(
                "job type `{}` is unknown; job types are PRINT and COMPUTE",
                shown(t)
            )));
        }
    }
    Ok(defs
        .queues
        .iter()
        .filter(|q| queues.is_empty() || queues.iter().any(|n| n == q.name))
        .filter(|q| job_types.is_empty() || job_types.iter().any(|t| t == q.job_type.name()))
        .collect())
}

/// An agency asks for work: leases up to `max_jobs` jobs, waiting up to
/// `wait_secs` for one.
#[utoipa::path(post, path = "/api/v1/agency/poll", tag = "agency", request_body = PollBody,
    responses((status = 200, description = "The leased jobs (maybe none)", body = PollAnswer)))]
async fn poll(
    State(state): State<AppState>,
    _agency: Agency,
    ApiJson(body): ApiJson<PollBody>,
) -> ApiResult<Json<PollAnswer>> {
    let engine = &state.engine;
    let queues = select_queues(engine.defs, &body.queues, &body.job_types)?;
    let names: Vec<&str> = queues.iter().map(|q| q.name).collect();
    let max = body.max_jobs.unwrap_or(1);
    if !(1..=100).contains(&max) {
        return Err(Problem::bad_request("`max_jobs` must be from 1 to 100"));
    }
    if body.wait_secs > MAX_WAIT_SECS {
        return Err(Problem::bad_request(format!(
            "`wait_secs` must be at most {MAX_WAIT_SECS}"
        )));
    }
    let agency = body.agency.unwrap_or_else(|| "agency".to_owned());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(body.wait_secs);
    loop {
        // Register for a wake-up before looking, so a job created between
        // the look and the wait is not missed.
        let notified = NEW_JOBS.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let leases = db::lease(&engine.store, &agency, &names, max).await?;
        let now = tokio::time::Instant::now();
        if !leases.is_empty() || now >= deadline {
            return Ok(Json(PollAnswer {
                jobs: leases
                    .into_iter()
                    .map(|l| LeasedJob {
                        id: l.job.id,
                        queue: l.job.queue,
                        job_type: l.job.job_type,
                        lease: l.token,
                        lease_secs: l.job.lease_secs,
                        lease_expires_at: format_ms(l.job.lease_expires_ms.unwrap_or_default()),
                        attempt: l.job.attempts,
                        input_base64: b64(&l.job.input),
                    })
                    .collect(),
            }));
        }
        let nap = (deadline - now).min(RECHECK);
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(nap) => {}
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    /// The lease the agency holds (from the poll answer).
    lease: String,
    /// BUSY (heartbeat), COMPLETED or FAILED.
    status: String,
    #[serde(default)]
    output_base64: Option<String>,
    #[serde(default)]
    exit_code: Option<i64>,
    /// What went wrong (e.g. the tail of the script's stderr).
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ReportAnswer {
    id: i64,
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
}

/// An agency reports on a leased job: a heartbeat (BUSY) or its result.
#[utoipa::path(post, path = "/api/v1/agency/jobs/{id}", tag = "agency", params(("id" = i64, Path)), request_body = ReportBody,
    responses((status = 200, description = "The job's state", body = ReportAnswer)))]
async fn report(
    State(state): State<AppState>,
    _agency: Agency,
    JobId(id): JobId,
    ApiJson(body): ApiJson<ReportBody>,
) -> ApiResult<Json<ReportAnswer>> {
    let store = &state.engine.store;
    let status = JobState::parse(&body.status).ok_or_else(|| {
        Problem::bad_request(format!(
            "`status` is BUSY (heartbeat), COMPLETED or FAILED, not `{}`",
            body.status
        ))
    })?;
    match status {
        JobState::Busy => {
            let expires = db::heartbeat(store, id, &body.lease).await?;
            Ok(Json(ReportAnswer {
                id,
                state: JobState::Busy,
                lease_expires_at: Some(format_ms(expires)),
            }))
        }
        JobState::Pending => Err(Problem::bad_request(
            "`status` is BUSY (heartbeat), COMPLETED or FAILED; a job is given back by letting its lease expire",
        )),
        JobState::Completed | JobState::Failed => {
            let output = match &body.output_base64 {
                Some(b) => unb64("output_base64", b)?,
                None => Vec::new(),
            };
            let error = body.error.map(|e| {
                let skip = e.chars().count().saturating_sub(MAX_ERROR_CHARS);
                e.chars().skip(skip).collect::<String>()
            });
            let outcome = Outcome {
                state: status,
                output,
                exit_code: body.exit_code,
                error,
            };
            let job = db::finish(store, id, &body.lease, &outcome).await?;
            tracing::info!(job = id, state = job.state.as_str(), "job finished");
            Ok(Json(ReportAnswer {
                id,
                state: job.state,
                lease_expires_at: None,
            }))
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    secret: String,
}

async fn staff_only(state: &AppState, principal: &Principal) -> ApiResult<()> {
    if principal.is_staff(&state.engine.store).await? {
        Ok(())
    } else {
        Err(JobError::Forbidden("only staff may set the agency secret".into()).into())
    }
}

/// Staff set the agency secret.
#[utoipa::path(put, path = "/api/v1/agency/secret", tag = "agency", request_body = SecretBody,
    responses((status = 204, description = "Set")))]
async fn set_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SecretBody>,
) -> ApiResult<StatusCode> {
    staff_only(&state, &principal).await?;
    let mut conn = state.engine.store.write_conn().await?;
    token::set_secret(&mut conn, &body.secret).await?;
    tracing::info!(by = %principal.person, "agency secret set");
    Ok(StatusCode::NO_CONTENT)
}

/// Staff make a new random agency secret; it is answered once.
#[utoipa::path(post, path = "/api/v1/agency/secret/rotate", tag = "agency",
    responses((status = 200, description = "`{\"secret\"}`", body = Object)))]
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<serde_json::Value>> {
    staff_only(&state, &principal).await?;
    let mut conn = state.engine.store.write_conn().await?;
    let secret = token::rotate_secret(&mut conn).await?;
    tracing::info!(by = %principal.person, "agency secret rotated");
    Ok(Json(serde_json::json!({ "secret": secret })))
}

// ---------------------------------------------------------------- CRIMSy

fn xml(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// Reads a `/ui/rest/print` body: the first [`PRE_AUTH_BYTES`] before the
/// token is verified, the rest (up to [`MAX_BODY_BYTES`]) after, and parses it
/// within the limits of [`netjob`](super::netjob). The token scan reads at
/// most the window, linearly, before anything else is done with the body.
async fn authenticated_netjob(
    state: &AppState,
    headers: &HeaderMap,
    stream: &mut axum::body::BodyDataStream,
) -> Result<NetJob, Problem> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let charset = ct
            .split(';')
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"'));
        if let Some(cs) = charset
            && !cs.eq_ignore_ascii_case("utf-8")
            && !cs.eq_ignore_ascii_case("us-ascii")
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                format!(
                    "NetJob XML is read as UTF-8, not `{}`: send it encoded in UTF-8 \
                     (`Content-Type: application/xml; charset=UTF-8`)",
                    shown(cs)
                ),
            ));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large(format!(
            "a NetJob body has at most {MAX_BODY_BYTES} bytes"
        )));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut complete = false;
    while buf.len() < PRE_AUTH_BYTES {
        match stream.next().await {
            None => {
                complete = true;
                break;
            }
            Some(chunk) => buf.extend_from_slice(&chunk.map_err(unreadable)?),
        }
    }
    // A last chunk may reach past the window; the scan reads the window only.
    let window = buf.len().min(PRE_AUTH_BYTES);
    let whole = complete && buf.len() <= PRE_AUTH_BYTES;
    let token = match netjob::scan_token(&buf[..window], whole).map_err(refused)? {
        TokenScan::Found(t) => t,
        TokenScan::Absent => {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a NetJob request carries the agency token in its `<token>` element",
            ));
        }
        TokenScan::NotYet => {
            return Err(too_large(format!(
                "the first {PRE_AUTH_BYTES} bytes of the body hold no complete `<token>`: \
                 the token is checked before the rest is read, so put `<token>` before \
                 `<output>` (or send less than {PRE_AUTH_BYTES} bytes)"
            )));
        }
    };
    token::verify(&state.engine.store, &token).await?;
    // Authenticated: the rest of the body, up to the full limit.
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(unreadable)?;
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large(format!(
                "a NetJob body has at most {MAX_BODY_BYTES} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(buf)
        .map_err(|e| refused(netjob::not_utf8(e.utf8_error().valid_up_to())))?;
    let request = if text.len() <= INLINE_PARSE_BYTES {
        NetJob::parse(&text)
    } else {
        // Linear, but megabytes: off the async workers.
        tokio::task::spawn_blocking(move || NetJob::parse(&text))
            .await
            .map_err(|e| {
                Problem::from(crate::EngineError::Internal(format!("NetJob parse: {e}")))
            })?
    }
    .map_err(refused)?;
    // The same parser read the same bytes; a second `<token>` was refused.
    if request.token.as_deref() != Some(token.as_str()) {
        return Err(JobError::Unauthorized.into());
    }
    Ok(request)
}

/// Reads and drops what is left of a refused body (up to
/// [`MAX_BODY_BYTES`], within the server's body deadline), so that the
/// client, still sending, gets the answer: closing a connection with unread
/// data resets it, and many clients then lose the answer. Nothing is kept.
async fn drain(stream: &mut axum::body::BodyDataStream) {
    let mut left = MAX_BODY_BYTES;
    while let Some(Ok(chunk)) = stream.next().await {
        if chunk.len() >= left {
            break;
        }
        left -= chunk.len();
    }
}

/// Bodies up to this size are parsed on the async worker; larger ones on a
/// blocking thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

fn too_large(detail: String) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large", detail)
}

fn refused(r: Refusal) -> Problem {
    match r {
        Refusal::Malformed(d) => Problem::bad_request(d),
        Refusal::TooLarge(d) => too_large(d),
    }
}

fn unreadable(e: axum::Error) -> Problem {
    Problem::bad_request(format!("the body could not be read: {e}"))
}

/// CRIMSy's NetJob protocol (QUERY, UPDATE), the agency token inside the
/// XML.
#[utoipa::path(post, path = "/ui/rest/print", tag = "agency",
    request_body(content = String, content_type = "application/xml", description = "A `<netJob>` document"),
    responses((status = 200, description = "A `<netJob>` answer", body = String, content_type = "application/xml")))]
async fn print(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let mut stream = body.into_data_stream();
    let request = match authenticated_netjob(&state, &headers, &mut stream).await {
        Ok(request) => request,
        Err(refusal) => {
            // A body declared larger than the limit is refused unread.
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_none_or(|n| n <= MAX_BODY_BYTES as u64) {
                drain(&mut stream).await;
            }
            return Err(refusal);
        }
    };
    let engine = &state.engine;
    for (name, value) in [
        ("jobid", &request.jobid),
        ("jobtype", &request.jobtype),
        ("queue", &request.queue),
        ("requesttype", &request.requesttype),
        ("status", &request.status),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_FIELD_CHARS) {
            return Err(Problem::bad_request(format!(
                "`{name}` has more than {MAX_FIELD_CHARS} characters"
            )));
        }
    }
    let job_id = match NetJob::get(&request.jobid) {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            Problem::bad_request(format!("`jobid` must be a number, not `{}`", shown(v)))
        })?),
    };
    let status = match NetJob::get(&request.status) {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "`status` is one of PENDING, BUSY, FAILED, COMPLETED, not `{}`",
                shown(s)
            ))
        })?),
    };
    let jobtype = NetJob::get(&request.jobtype).map(str::to_ascii_uppercase);
    let queue = NetJob::get(&request.queue).map(str::to_owned);
    let requesttype = NetJob::get(&request.requesttype)
        .unwrap_or_default()
        .to_ascii_uppercase();
    match requesttype.as_str() {
        "QUERY" => {
            let jobs = if status == Some(JobState::Pending) && job_id.is_none() {
                // A CRIMSy agency asking for pending work claims it.
                let queues: Vec<String> = queue.iter().cloned().collect();
                let types: Vec<String> = jobtype.iter().cloned().collect();
                let selected = if queues.is_empty() && types.is_empty() {
                    engine.defs.queues.iter().collect()
                } else {
                    select_queues(engine.defs, &queues, &types)?
                };
                let names: Vec<&str> = selected.iter().map(|q| q.name).collect();
                db::lease(&engine.store, "crimsy", &names, 1)
                    .await?
                    .into_iter()
                    .map(|l| l.job)
                    .collect()
            } else {
                let mut conn = engine.store.acquire().await?;
                db::query(
                    &mut conn,
                    &JobFilter {
                        id: job_id,
                        job_type: jobtype,
                        queue,
                        state: status,
                        owner: None,
                        limit: 100,
                    },
                )
                .await?
            };
            let answer = NetJob {
                requesttype: Some("QUERY".into()),
                joblist: Some(JobList {
                    job: jobs.iter().map(NetJob::from_job).collect(),
                }),
                ..NetJob::default()
            };
            Ok(xml(StatusCode::OK, answer.to_xml()))
        }
        "UPDATE" => {
            let id = job_id.ok_or_else(|| Problem::bad_request("an UPDATE names the `jobid`"))?;
            let status = status.ok_or_else(|| {
                Problem::bad_request("an UPDATE names the new `status` of the job")
            })?;
            let output = match NetJob::get(&request.output) {
                Some(o) => unb64("output", o)?,
                None => Vec::new(),
            };
            let job = db::crimsy_update(&engine.store, id, status, output).await?;
            let mut answer = NetJob::from_job(&job);
            answer.requesttype = Some("UPDATE".into());
            Ok(xml(StatusCode::OK, answer.to_xml()))
        }
        other => Err(Problem::bad_request(format!(
            "`requesttype` is QUERY or UPDATE, not `{}`",
            shown(other)
        ))),
    }
}

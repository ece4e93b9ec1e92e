//! The HTTP API (DESIGN.md §9, "The public contract"). Routes are thin: they
//! parse and authenticate, then call the [`crate::workflow::executor`]. Every error is
//! `application/problem+json` (RFC 9457) with a reason a person can act on.

pub mod auth;
pub mod history;
pub mod openapi;
pub mod server;
pub mod validate;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tower_http::trace::TraceLayer;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{EngineError, FieldProblem};
use crate::http::server::AppState;
use crate::store::history::OrderDocument;
use crate::store::{self, OrderFilter};
use crate::workflow::context::{ActionInput, Fields, Principal};
use crate::workflow::defs::Actor;
use crate::workflow::executor;

/// The API's routes and the layers every request passes: request id, log
/// span, target length, body deadline (`body_read_timeout`), the one
/// error layer.
pub fn router(state: AppState, body_read_timeout: std::time::Duration) -> Router {
    let (routes, document) = api_routes(&state).split_for_parts();
    let document = openapi::Document(std::sync::Arc::new(openapi::finish(
        document,
        state.engine.defs,
    )));
    routes
        .layer(axum::Extension(document))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        // the web pages: HTML, not part of the JSON contract (crate::ui)
        .merge(crate::ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(problem_for_every_error))
        .layer(axum::middleware::from_fn_with_state(
            body_read_timeout,
            body_deadline,
        ))
        .layer(axum::middleware::from_fn(bounded_uri))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Every route of the API, with its documentation (see [`openapi`]).
pub fn api_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(submit_order, list_orders))
        .routes(routes!(explain))
        .routes(routes!(get_order))
        .routes(routes!(withdraw))
        .routes(routes!(accept))
        .routes(routes!(abort))
        .routes(routes!(change_fields))
        .routes(routes!(claim))
        .routes(routes!(unclaim))
        .routes(routes!(definitions))
        .routes(routes!(definitions_graph))
        .routes(routes!(crate::metrics::scrape))
        .merge(crate::history::rollback::routes())
        .routes(routes!(history::search_history))
        .routes(routes!(history::stats))
        .merge(crate::jobs::http::routes())
        .merge(crate::http::validate::routes())
        .merge(state.engine.domain.routes())
}

// ---------------------------------------------------------------- problems

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The orders a refusal names (extension member): those that stand in
    /// the way of a rollback.
    /// (Boxed: every handler's `Err` carries a `Problem`, kept small.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<Box<[i64]>>,
    /// The authentication scheme a 401 asks for (`WWW-Authenticate`).
    #[serde(skip)]
    pub challenge: &'static str,
}

/// Longest `detail` (and field message) a problem carries, in bytes: an
/// answer never echoes a request wholesale, whatever a message quotes.
pub const MAX_DETAIL: usize = 1024;
/// Most field problems listed in one answer; the rest are counted.
pub const MAX_FIELD_PROBLEMS: usize = 20;

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            orders: None,
            challenge: "Bearer",
        }
    }

    /// A 401 that asks for credentials of `scheme` (`Bearer`, `Agency`).
    pub fn unauthorized(scheme: &'static str, detail: impl Into<String>) -> Self {
        Self {
            challenge: scheme,
            ..Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        truncate(&mut self.detail, MAX_DETAIL);
        if self.errors.len() > MAX_FIELD_PROBLEMS {
            let more = self.errors.len() - MAX_FIELD_PROBLEMS;
            self.errors.truncate(MAX_FIELD_PROBLEMS);
            self.detail = format!(
                "{} problems with the fields; the first {MAX_FIELD_PROBLEMS} are listed, {more} more are not",
                MAX_FIELD_PROBLEMS + more
            );
        }
        for e in &mut self.errors {
            truncate(&mut e.field, 128);
            truncate(&mut e.message, MAX_DETAIL);
        }
        let mut response = (status, Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge),
            );
        }
        response
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
pub fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max.saturating_sub(3);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// What a client may do about a status the framework answered by itself
/// (no route, wrong method, body too large, …).
fn advice(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not take this method; the `Allow` header lists those it takes"
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this route accepts; send less"
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body with the content type this route takes (`content-type: application/json` for the JSON API)"
        }
        StatusCode::REQUEST_TIMEOUT => "the request was not sent in time; send it again, whole",
        StatusCode::URI_TOO_LONG => "the request's address is too long",
        StatusCode::NOT_FOUND => "there is no such route; the API is under /api/v1",
        _ => "the request could not be handled as sent",
    }
}

/// The header that carries a request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// Middleware: every request has an id — the client's `X-Request-Id` when
/// it is a sane token (1–128 of `A-Za-z0-9._:-`), else a new random one. It
/// is in the request's log span, in the answer's `X-Request-Id` header and
/// in every problem document (`request_id`), so a person reporting an
/// error can name the log lines.
async fn request_id(mut request: Request, next: axum::middleware::Next) -> Response {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b))
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| hex::encode(rand::random::<[u8; 12]>()));
    let value = HeaderValue::from_str(&id).expect("a request id is a valid header value");
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = next.run(request).await;
    if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
    {
        let (mut parts, body) = response.into_parts();
        // Problems are bounded (MAX_DETAIL, MAX_FIELD_PROBLEMS).
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(mut problem)) => {
                problem.insert("request_id".into(), serde_json::Value::String(id));
                parts.headers.remove(header::CONTENT_LENGTH);
                serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec())
            }
            _ => bytes.to_vec(),
        };
        response = Response::from_parts(parts, axum::body::Body::from(body));
    }
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Longest request target (path and query) routed, in bytes; hyper itself
/// refuses targets over 64 KiB with a bare 414.
pub const MAX_URI: usize = 8 * 1024;

/// Middleware: a request target longer than [`MAX_URI`] is refused (414)
/// before routing.
async fn bounded_uri(request: Request, next: axum::middleware::Next) -> Response {
    let len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if len > MAX_URI {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "URI too long",
            format!(
                "the request target has {len} bytes, more than the {MAX_URI} this server reads; shorten the path or the filters"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// The one error layer: every error answer leaves as problem+json, also
/// those the framework makes by itself (extractor rejections, 405, 413,
/// 415, …). Their text, when there is one, becomes the detail, bounded.
async fn problem_for_every_error(response: Response) -> Response {
    let status = response.status();
    // problem documents, and the web pages' own error pages (HTML)
    let answered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || answered {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The framework's own texts are short; a longer body is cut at the limit.
    let text = axum::body::to_bytes(body, 4 * MAX_DETAIL)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        advice(status).to_owned()
    } else {
        format!("{text}; {}", advice(status))
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut problem = Problem::new(status, title, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, v.clone());
        }
    }
    problem
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!(
            "{} does not take {method}; the `Allow` header lists the methods it takes",
            uri.path()
        ),
    )
}

/// A request body that ends in an error once its time is up.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return std::task::Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        std::pin::Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: a request's body must arrive within `limit` of its head
/// (else 408), so a client sending a byte now and then holds no task for
/// long. The header read timeout is the server's ([`server::Limits`]).
async fn body_deadline(
    State(limit): State<std::time::Duration>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let expired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limit)),
        expired: expired.clone(),
    };
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::new(body)))
        .await;
    if expired.load(std::sync::atomic::Ordering::Relaxed) && !response.status().is_success() {
        return Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout",
            format!(
                "the request body did not arrive within {} s; send it again, whole",
                limit.as_secs()
            ),
        )
        .into_response();
    }
    response
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownOrderType(t) => Problem::bad_request(format!(
                "unknown order type `{t}`; see GET /api/v1/definitions for the order types"
            )),
            EngineError::InvalidFields(errors) => {
                let detail = errors
                    .iter()
                    .map(|p| format!("field `{}` {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                Problem {
                    errors,
                    ..Problem::bad_request(detail)
                }
            }
            EngineError::NotFound(id) => Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("there is no order {id} that you may read"),
            ),
            EngineError::Forbidden(d) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", d),
            EngineError::Conflict(d) => Problem::new(StatusCode::CONFLICT, "Conflict", d),
            EngineError::PreconditionFailed(d) => {
                Problem::new(StatusCode::PRECONDITION_FAILED, "Precondition failed", d)
            }
            EngineError::Unauthorized(d) => Problem::unauthorized("Bearer", d),
            e @ EngineError::Aborted(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Try again", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    format!("{other}; the order, if any, is kept in its previous state"),
                )
            }
        }
    }
}

/// `Err` side of every handler.
pub type ApiResult<T> = Result<T, Problem>;

/// The closest candidate to a misspelt name, if one is close enough.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("no route for {}", uri.path()),
    )
}

// ---------------------------------------------------------------- extractors

/// JSON body whose rejections are problem documents. The body must be a
/// JSON object (serde would read a struct from an array too), sent as
/// `application/json`; a wrong value is named by its path in the body.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.len() > 5 && v[v.len() - 5..].eq_ignore_ascii_case("+json"))
            });
        if !json_type {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                "the request body must be JSON, sent with `content-type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                let status = r.status();
                let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    advice(status).to_owned()
                } else {
                    format!("the request body could not be read: {}", r.body_text())
                };
                Problem::new(
                    status,
                    status.canonical_reason().unwrap_or("Bad request"),
                    detail,
                )
            })?;
        parse_json_object(&bytes).map(ApiJson)
    }
}

/// Parses a request body that must be one JSON object into `T`, with an
/// error a person can act on (where in the body, what was expected).
pub fn parse_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(Problem::bad_request(
                "the request body is empty; it must be a JSON object ({…})",
            ));
        }
        Some(_) => {
            return Err(Problem::bad_request(
                "the request body must be a JSON object ({…}), not an array, string or number",
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let what = match inner.classify() {
            serde_json::error::Category::Syntax => {
                format!("the request body is not valid JSON (line {line}, column {column})")
            }
            serde_json::error::Category::Eof => format!(
                "the request body is not valid JSON: it ends early (line {line}, column {column})"
            ),
            serde_json::error::Category::Io => "the request body could not be read".to_owned(),
            serde_json::error::Category::Data => {
                let mut message = inner.to_string();
                // serde adds " at line L column C"; the path says more.
                if let Some(i) = message.rfind(" at line ") {
                    message.truncate(i);
                }
                if path == "." {
                    format!("the request body is not valid: {message}")
                } else {
                    format!("the request body is not valid at `{path}`: {message}")
                }
            }
        };
        Problem::bad_request(what)
    })?;
    // Trailing characters after the object are refused, as serde_json does.
    Ok(value)
}

/// The query string as name → value, refused when it repeats a name or
/// holds what no filter needs: control characters (a NUL would reach the
/// database) or values longer than [`MAX_QUERY_VALUE`] bytes.
pub struct ApiQuery(pub HashMap<String, String>);

/// Longest query parameter value accepted, in bytes.
pub const MAX_QUERY_VALUE: usize = 512;

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let mut query = HashMap::new();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            let bad = |what: &str| {
                let mut name = name.to_string();
                truncate(&mut name, 64);
                Problem::bad_request(format!("query parameter `{}` {what}", name.escape_debug()))
            };
            if let Some(c) = name.chars().chain(value.chars()).find(|c| c.is_control()) {
                return Err(bad(&format!(
                    "contains a control character (U+{:04X}); filters take printable text",
                    c as u32
                )));
            }
            if value.len() > MAX_QUERY_VALUE {
                return Err(bad(&format!("is longer than {MAX_QUERY_VALUE} bytes")));
            }
            if query.insert(name.to_string(), value.to_string()).is_some() {
                return Err(bad("is given twice; give each filter once"));
            }
        }
        Ok(ApiQuery(query))
    }
}

/// An order id from the path.
pub struct OrderId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for OrderId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r: PathRejection| {
                Problem::bad_request(format!("the order id must be a number: {}", r.body_text()))
            })?;
        parse_id(&raw).map(OrderId).ok_or_else(|| {
            Problem::bad_request(format!(
                "the order id must be a number such as 17, not `{}`",
                raw.escape_debug()
            ))
        })
    }
}

/// An id as written in a path: decimal digits only (no sign, no spaces,
/// no leading zeros), so one resource has one address.
pub fn parse_id(raw: &str) -> Option<i64> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

/// The credentials of an `Authorization` header value for `scheme`; the
/// scheme's name is case-insensitive (RFC 9110 §11.1).
pub fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = value.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    /// See [`crate::http::auth::authenticate`].
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(crate::http::auth::authenticate(&state.engine, &parts.headers).await?)
    }
}

// ---------------------------------------------------------------- handlers

#[utoipa::path(get, path = "/api/v1/definitions", tag = "definitions",
    responses((status = 200, description = "The compiled definitions", body = Object)))]
/// The compiled definitions as JSON: workflows (states, transitions with
/// conditions and resulting-state maps), actions, checks and their bindings,
/// order types with typed fields, conditions, attributes, policies, queues.
async fn definitions(State(state): State<AppState>, _principal: Principal) -> ApiResult<Response> {
    let mut response = state.engine.defs.document.to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/definitions/graph", tag = "definitions",
    params(("format" = Option<String>, Query, description = "`mermaid` (default) or `dot`")),
    responses((status = 200, description = "The workflows as a diagram", body = String, content_type = "text/plain")))]
/// The workflows as a diagram: `?format=mermaid` (default) or `dot`.
async fn definitions_graph(
    State(state): State<AppState>,
    _principal: Principal,
    ApiQuery(query): ApiQuery,
) -> ApiResult<String> {
    let format = query
        .get("format")
        .map_or(Ok(crate::workflow::graph::Format::Mermaid), |f| f.parse())
        .map_err(Problem::bad_request)?;
    Ok(crate::workflow::graph::render(state.engine.defs, format))
}

/// Whether the server and its database answer.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
async fn healthz(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    sqlx::query("SELECT 1")
        .execute(&state.engine.store.pool)
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                format!("database: {e}"),
            )
        })?;
    // the mail outbox: a backlog that grows is worth a look (SMTP down?)
    let mail = crate::notify::outbox::backlog(&state.engine.store).await?;
    let mut answer = serde_json::json!({"status": "ok", "mail": mail});
    // the MongoDB history export: how far behind it is, and why
    if state.engine.history.is_some() {
        let lag = crate::history::exporter::lag(&state.engine.store, &state.engine.history_status)
            .await?;
        answer["history"] = serde_json::to_value(lag).unwrap_or_default();
    }
    Ok(Json(answer))
}

/// An order to place; the document's `SubmitBody` lists each order type's
/// fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(rename = "type")]
    order_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Fields,
}

/// Places an order: it is checked, authorized and executed, aborted, or
/// parked for staff, as far as it goes without a person.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = SubmitBody,
    responses((status = 201, description = "Stored and processed", body = executor::Outcome)))]
async fn submit_order(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<(StatusCode, Json<executor::Outcome>)> {
    let outcome =
        executor::submit(&state.engine, &principal, &body.order_type, body.fields).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

/// The order's history document, with its authorization decisions; an
/// order the caller may not read is a 404 like a missing one.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, description = "The history document; `ETag` is its version",
        headers(("etag" = String, description = "The order's version, for If-Match")), body = OrderDocument)))]
async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
) -> ApiResult<([(header::HeaderName, String); 1], Json<OrderDocument>)> {
    let engine = &state.engine;
    let mut conn = engine
        .store
        .pool
        .acquire()
        .await
        .map_err(EngineError::from)?;
    let order = store::load_order(&mut conn, engine.defs, id).await?;
    // The policies decide who may read an order (requester, the device's
    // admin, deputies and IT officer, staff); without policies, the
    // requester and staff may. An order a person may not read is answered
    // as one that does not exist: ids cannot be probed, and the refusal
    // names none of the order's facts.
    if !crate::pdp::may_read(&mut conn, engine.defs, &order.data, &principal.person).await? {
        return Err(EngineError::NotFound(id).into());
    }
    // one document: its tag before the decisions and mails are added
    let mut document = order.document();
    let etag = store::etag_of(&document);
    document.decisions = store::decisions_of(&mut conn, id).await?;
    document.notifications = crate::notify::outbox::listed_json(&mut conn, id).await?;
    document.claims = crate::workflow::claims::events(&mut conn, id).await?;
    document.links = crate::history::rollback::links_of(&mut conn, id).await?;
    if !principal.is_staff(&engine.store).await? {
        // The facts a decision was made on (a device's admin, deputies,
        // org) are for staff; others see whose and which rule decided.
        for d in &mut document.decisions {
            crate::pdp::redact_for_requester(d);
        }
    }
    Ok(([(header::ETAG, etag)], Json(document)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OrderList {
    orders: Vec<OrderDocument>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Orders, newest first: those the person may read (the `read_order`
/// policy, as for `GET /api/v1/orders/{id}`; without policies: staff all,
/// others their own).
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    params(
        ("requester" = Option<String>, Query, description = "PERS_KEY of the requester"),
        ("host" = Option<String>, Query, description = "The object of the order"),
        ("state" = Option<String>, Query),
        ("since" = Option<String>, Query, description = "RFC 3339"),
        ("until" = Option<String>, Query, description = "RFC 3339"),
        ("limit" = Option<i64>, Query),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "A page of history documents", body = OrderList)))]
async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery,
) -> ApiResult<Json<OrderList>> {
    const KNOWN: [&str; 7] = [
        "requester",
        "host",
        "state",
        "since",
        "until",
        "limit",
        "cursor",
    ];
    if let Some(unknown) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        let hint = did_you_mean(unknown, &KNOWN)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(Problem::bad_request(format!(
            "unknown query parameter `{unknown}`{hint} (known: {})",
            KNOWN.join(", ")
        )));
    }
    let get = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    for key in ["since", "until"] {
        if let Some(v) = get(key) {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    Problem::bad_request(format!(
                        "`{key}` must be an RFC 3339 time such as 2026-11-24T08:00:00Z, not `{v}`"
                    ))
                })?;
        }
    }
    let limit = store::parse_limit(get("limit").as_deref()).map_err(Problem::bad_request)?;
    let before_id = match get("cursor") {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            Problem::bad_request(format!("`cursor` `{c}` is not one this server handed out"))
        })?),
    };
    let filter = OrderFilter {
        requester: get("requester"),
        host: get("host"),
        state: get("state"),
        since: get("since").map(|v| normalize_instant(&v)),
        until: get("until").map(|v| normalize_instant(&v)),
        before_id,
        limit,
        access: None,
    };
    // what the person may read, as the read_order policy decides one by one
    let (orders, next) =
        crate::history::access::readable_page(&state.engine, &principal.person, &filter).await?;
    let next_cursor = next.map(|id| id.to_string());
    Ok(Json(OrderList {
        orders: orders.iter().map(|o| o.document()).collect(),
        next_cursor,
    }))
}

/// Brings an RFC 3339 time (already validated) to the stored form, so string
/// comparison is time comparison.
fn normalize_instant(v: &str) -> String {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(crate::store::history::format_instant)
        .unwrap_or_else(|_| v.to_owned())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    #[serde(default)]
    comment: Option<String>,
}

/// Accepts an empty body as "no comment".
fn optional_comment(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_json_object::<CommentBody>(body)
        .map(|b| b.comment)
        .map_err(|p| {
            Problem::bad_request(format!(
                "the request body must be {{\"comment\": \"…\"}} or empty: {}",
                p.detail
            ))
        })
}

/// The `If-Match` header: the versions of the order the client acted on.
pub struct IfMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => v
                .to_str()
                .ok()
                .filter(|v| v.len() <= 1024)
                .map(|v| IfMatch(Some(v.to_owned())))
                .ok_or_else(|| {
                    Problem::bad_request(
                        "`If-Match` must be the ETag of GET /api/v1/orders/{id}, such as \"3f2a…\"",
                    )
                }),
        }
    }
}

/// A person triggers `action` in `role`, with an optional `{"comment"}` body.
async fn comment_action(
    state: &AppState,
    principal: &Principal,
    (id, if_match): (i64, IfMatch),
    body: &[u8],
    role: Actor,
    action: &str,
) -> ApiResult<Json<executor::Outcome>> {
    let input = ActionInput {
        comment: optional_comment(body)?,
        fields: None,
        if_match: if_match.0,
    };
    Ok(Json(
        executor::act(&state.engine, principal, role, id, action, input).await?,
    ))
}

/// A route for a person's action on a waiting order, with an optional
/// `{"comment"}` body and `If-Match`.
macro_rules! comment_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:tt, $role:expr, $action:literal) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "The ETag the decision was made on")),
            request_body(content = Option<CommentBody>, description = "`{\"comment\"}` or empty"),
            responses((status = 200, description = "Where the order stands now", body = executor::Outcome)))]
        async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            OrderId(id): OrderId,
            if_match: IfMatch,
            body: axum::body::Bytes,
        ) -> ApiResult<Json<executor::Outcome>> {
            comment_action(&state, &principal, (id, if_match), &body, $role, $action).await
        }
    };
}

comment_route!(
    /// The requester withdraws a waiting order.
    withdraw, "/api/v1/orders/{id}/withdraw", Actor::Requester, "abort"
);
comment_route!(
    /// Staff abort a waiting order.
    abort, "/api/v1/orders/{id}/abort", Actor::Staff, "abort"
);
comment_route!(
    /// Staff accept a waiting order; it is checked again.
    accept, "/api/v1/orders/{id}/accept", Actor::Staff, "accept"
);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct FieldsBody {
    #[schema(value_type = Object)]
    fields: Fields,
    #[serde(default)]
    comment: Option<String>,
}

/// Staff change fields of a waiting order; it is checked again.
#[utoipa::path(patch, path = "/api/v1/orders/{id}/fields", tag = "orders",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "The ETag the change was made on")),
    request_body = FieldsBody,
    responses((status = 200, description = "Where the order stands now", body = executor::Outcome)))]
async fn change_fields(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<FieldsBody>,
) -> ApiResult<Json<executor::Outcome>> {
    if body.fields.is_empty() {
        return Err(Problem::bad_request("`fields` names no field to change"));
    }
    let input = ActionInput {
        comment: body.comment,
        fields: Some(body.fields),
        if_match,
    };
    Ok(Json(
        executor::act(
            &state.engine,
            &principal,
            Actor::Staff,
            id,
            "change_field",
            input,
        )
        .await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    /// Take over a claim someone else holds (else 409).
    #[serde(default)]
    take_over: bool,
}

/// Staff claim an open order before working it (or extend their claim);
/// another person's claim is taken over only with `{"take_over": true}`.
/// While a claim holds, staff actions by anyone else are refused (409).
#[utoipa::path(post, path = "/api/v1/orders/{id}/claim", tag = "orders",
    params(("id" = i64, Path)),
    request_body(content = Option<ClaimBody>, description = "`{\"take_over\": true}` or empty"),
    responses((status = 200, description = "Who holds the order now, and until when", body = crate::workflow::claims::ClaimState)))]
async fn claim(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    body: axum::body::Bytes,
) -> ApiResult<Json<crate::workflow::claims::ClaimState>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        ClaimBody::default()
    } else {
        parse_json_object::<ClaimBody>(&body)?
    };
    Ok(Json(
        crate::workflow::claims::claim(&state.engine, &principal, id, body.take_over).await?,
    ))
}

/// Staff give up their claim on an order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/unclaim", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, description = "Nobody holds the order now", body = crate::workflow::claims::ClaimState)))]
async fn unclaim(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
) -> ApiResult<Json<crate::workflow::claims::ClaimState>> {
    Ok(Json(
        crate::workflow::claims::unclaim(&state.engine, &principal, id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/explain", tag = "authorization",
    params(("person" = String, Query), ("action" = String, Query, description = "An order type or its start"), ("host" = Option<String>, Query)),
    responses((status = 200, description = "The decision with its explanation", body = Object)))]
/// `GET /api/v1/explain?person=&action=&host=` (staff): whether a person may
/// place an order and why, without placing it.
async fn explain(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery,
) -> ApiResult<Json<crate::pdp::Response>> {
    if !principal.is_staff(&state.engine.store).await? {
        return Err(EngineError::Forbidden("only staff may ask for explanations".into()).into());
    }
    const KNOWN: [&str; 3] = ["person", "action", "host"];
    if let Some(unknown) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Problem::bad_request(format!(
            "unknown query parameter `{unknown}` (known: person, action, host)"
        )));
    }
    let person = query
        .get("person")
        .ok_or_else(|| Problem::bad_request("`person` (a PERS_KEY) is required"))?;
    let action = query.get("action").ok_or_else(|| {
        Problem::bad_request("`action` (an order type, e.g. change_device) is required")
    })?;
    let response = crate::pdp::pep::explain(
        &state.engine,
        person,
        action,
        query.get("host").map(String::as_str),
    )
    .await?;
    Ok(Json(response))
}

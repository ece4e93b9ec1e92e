//! The HTTP API (DESIGN.md §9, "The public contract"). Routes are thin: they
//! parse and authenticate, then call the [`crate::workflow::executor`]. Every error is
//! `application/problem+json` (RFC 9457) with a reason a person can act on.

pub mod auth;
pub mod server;
pub mod validate;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tower_http::trace::TraceLayer;

use crate::error::{EngineError, FieldProblem};
use crate::http::server::AppState;
use crate::store::history::OrderDocument;
use crate::store::{self, OrderFilter};
use crate::workflow::context::{ActionInput, Fields, Principal};
use crate::workflow::defs::Actor;
use crate::workflow::executor;

pub fn router(state: AppState) -> Router {
    let domain_routes = state.engine.domain.routes();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/orders", post(submit_order).get(list_orders))
        .route("/api/v1/explain", get(explain))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/withdraw", post(withdraw))
        .route("/api/v1/orders/{id}/accept", post(accept))
        .route("/api/v1/orders/{id}/abort", post(abort))
        .route("/api/v1/orders/{id}/fields", patch(change_fields))
        .route("/api/v1/definitions", get(definitions))
        .route("/api/v1/definitions/graph", get(definitions_graph))
        .merge(crate::jobs::http::routes())
        .merge(crate::http::validate::routes())
        .merge(domain_routes)
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

// ---------------------------------------------------------------- problems

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
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
                format!("there is no order {id}"),
            ),
            EngineError::Forbidden(d) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", d),
            EngineError::Conflict(d) => Problem::new(StatusCode::CONFLICT, "Conflict", d),
            EngineError::Unauthorized(d) => {
                Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", d)
            }
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

/// JSON body whose rejections are problem documents.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(|r| {
                Problem::bad_request(format!("the request body is not valid: {}", r.body_text()))
            })
    }
}

/// An order id from the path.
pub struct OrderId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for OrderId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| OrderId(id))
            .map_err(|r: PathRejection| {
                Problem::bad_request(format!("the order id must be a number: {}", r.body_text()))
            })
    }
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

/// The workflows as a diagram: `?format=mermaid` (default) or `dot`.
async fn definitions_graph(
    State(state): State<AppState>,
    _principal: Principal,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<String> {
    let format = query
        .get("format")
        .map_or(Ok(crate::workflow::graph::Format::Mermaid), |f| f.parse())
        .map_err(Problem::bad_request)?;
    Ok(crate::workflow::graph::render(state.engine.defs, format))
}

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
    Ok(Json(serde_json::json!({"status": "ok"})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(rename = "type")]
    order_type: String,
    #[serde(default)]
    fields: Fields,
}

async fn submit_order(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<(StatusCode, Json<executor::Outcome>)> {
    let outcome =
        executor::submit(&state.engine, &principal, &body.order_type, body.fields).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
) -> ApiResult<Json<OrderDocument>> {
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
    // requester and staff may.
    let refusal = match engine.defs.authorization {
        Some(auth) => {
            let r = crate::pdp::decide_action(
                &mut conn,
                auth,
                &order.data,
                &principal.person,
                crate::pdp::READ_ORDER,
            )
            .await;
            (r.decision != crate::pdp::Decision::Permit).then(|| {
                format!(
                    "order {id} belongs to another requester, and the policies do not let you read it: {}",
                    crate::pdp::summary(&r)
                )
            })
        }
        None => (order.data.requester != principal.person
            && !principal.is_staff(&state.engine.store).await?)
            .then(|| {
            format!("order {id} belongs to another requester; only they and IP-management staff may read it")
        }),
    };
    if let Some(refusal) = refusal {
        return Err(EngineError::Forbidden(refusal).into());
    }
    let mut document = order.document();
    document.decisions = store::decisions_of(&mut conn, id).await?;
    Ok(Json(document))
}

#[derive(Debug, Serialize)]
struct OrderList {
    orders: Vec<OrderDocument>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<HashMap<String, String>>,
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
    let mut requester = get("requester");
    if !principal.is_staff(&state.engine.store).await? {
        match &requester {
            Some(r) if *r != principal.person => {
                return Err(EngineError::Forbidden(
                    "you may list only your own orders (requester = you); staff may list all"
                        .into(),
                )
                .into());
            }
            _ => requester = Some(principal.person.clone()),
        }
    }
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
        requester,
        host: get("host"),
        state: get("state"),
        since: get("since").map(|v| normalize_instant(&v)),
        until: get("until").map(|v| normalize_instant(&v)),
        before_id,
        limit,
    };
    let orders = store::list_orders(&state.engine.store.pool, state.engine.defs, &filter).await?;
    let next_cursor = (orders.len() as i64 == limit)
        .then(|| {
            orders
                .last()
                .and_then(|o| o.data.id)
                .map(|id| id.to_string())
        })
        .flatten();
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

#[derive(Debug, Default, Deserialize)]
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
    serde_json::from_slice::<CommentBody>(body)
        .map(|b| b.comment)
        .map_err(|e| {
            Problem::bad_request(format!(
                "the request body must be {{\"comment\": \"…\"}} or empty: {e}"
            ))
        })
}

/// A person triggers `action` in `role`, with an optional `{"comment"}` body.
async fn comment_action(
    state: &AppState,
    principal: &Principal,
    id: i64,
    body: &[u8],
    role: Actor,
    action: &str,
) -> ApiResult<Json<executor::Outcome>> {
    let input = ActionInput {
        comment: optional_comment(body)?,
        fields: None,
    };
    Ok(Json(
        executor::act(&state.engine, principal, role, id, action, input).await?,
    ))
}

async fn withdraw(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    body: axum::body::Bytes,
) -> ApiResult<Json<executor::Outcome>> {
    comment_action(&state, &principal, id, &body, Actor::Requester, "abort").await
}

async fn abort(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    body: axum::body::Bytes,
) -> ApiResult<Json<executor::Outcome>> {
    comment_action(&state, &principal, id, &body, Actor::Staff, "abort").await
}

async fn accept(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    body: axum::body::Bytes,
) -> ApiResult<Json<executor::Outcome>> {
    comment_action(&state, &principal, id, &body, Actor::Staff, "accept").await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsBody {
    fields: Fields,
    #[serde(default)]
    comment: Option<String>,
}

async fn change_fields(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    ApiJson(body): ApiJson<FieldsBody>,
) -> ApiResult<Json<executor::Outcome>> {
    if body.fields.is_empty() {
        return Err(Problem::bad_request("`fields` names no field to change"));
    }
    let input = ActionInput {
        comment: body.comment,
        fields: Some(body.fields),
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

/// `GET /api/v1/explain?person=&action=&host=` (staff): whether a person may
/// place an order and why, without placing it.
async fn explain(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<crate::pdp::Response>> {
    if !principal.is_staff(&state.engine.store).await? {
        return Err(EngineError::Forbidden(
            "only IP-management staff may ask for explanations".into(),
        )
        .into());
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

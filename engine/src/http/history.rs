//! `GET /api/v1/history` and `GET /api/v1/stats`: the history searched and
//! counted ([`crate::history::search`], [`crate::history::stats`]), within
//! what the caller may read.

use axum::Json;
use axum::extract::State;

use super::{ApiQuery, ApiResult};
use crate::history::search::{FoundPage, SearchPage, SearchQuery};
use crate::history::stats::{Stats, StatsQuery};
use crate::http::server::AppState;
use crate::workflow::context::Principal;

/// Searches the order history: every order that set a MAC, changed a
/// field, a check warned about, a comment mentions, … — within what the
/// caller may read (staff: everything). Answered from MongoDB when the
/// server has a history store, else from the SQL database; the same
/// answers either way.
#[utoipa::path(get, path = "/api/v1/history", tag = "history",
    params(
        ("host" = Option<String>, Query, description = "The object of the order"),
        ("requester" = Option<String>, Query, description = "PERS_KEY of the requester"),
        ("type" = Option<String>, Query, description = "An order type"),
        ("state" = Option<String>, Query, description = "The current state"),
        ("field" = Option<String>, Query, description = "A field the order changed (a key of `changed`)"),
        ("old" = Option<String>, Query, description = "The old value of `field` (or of any field): a string, a number's or `true`/`false`/`null`'s JSON text, or an item of a list"),
        ("new" = Option<String>, Query, description = "The new value, as `old`"),
        ("check" = Option<String>, Query, description = "A check that reported an error or warning about the order"),
        ("severity" = Option<String>, Query, description = "`error` or `warning` (with `check`; default both; accepted warnings count as warnings)"),
        ("text" = Option<String>, Query, description = "Case-insensitive part of a comment in the order's states"),
        ("since" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Created before (RFC 3339)"),
        ("sort" = Option<String>, Query, description = "`newest` (default) or `oldest` first, by id"),
        ("limit" = Option<i64>, Query, description = "1–1000, default 50"),
        ("cursor" = Option<String>, Query, description = "`next` of the previous page"),
    ),
    responses((status = 200, description = "A page of history documents", body = SearchPage)))]
pub async fn search_history(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery,
) -> ApiResult<Json<FoundPage>> {
    let query = SearchQuery::parse(state.engine.defs, &query)?;
    Ok(Json(
        crate::history::search::search_json(&state.engine, Some(&principal.person), &query).await?,
    ))
}

/// Statistics on the orders created in `[since, until)` that the caller
/// may read, per group (`by`) and in total: counts per state, automation
/// rate, processing time INSERTED → final and time waiting for a person
/// (count, nearest-rank p50 and p90, max), and how often each check
/// reported errors and warnings.
#[utoipa::path(get, path = "/api/v1/stats", tag = "history",
    params(
        ("since" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Created before (RFC 3339)"),
        ("by" = Option<String>, Query, description = "`type` (default), `state`, `day` (of creation, YYYY-MM-DD, UTC), `month` (of creation, YYYY-MM) or an attribute recorded with each order (JuNet: `org`, `admin`, `device`)"),
    ),
    responses((status = 200, description = "The numbers per group and in total", body = Stats)))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery,
) -> ApiResult<Json<Stats>> {
    let query = StatsQuery::parse(state.engine.defs, &query)?;
    Ok(Json(
        crate::history::stats::stats(&state.engine, Some(&principal.person), &query).await?,
    ))
}

//! Rolling an order back (thesis §6): `POST /api/v1/orders/{id}/rollback`
//! places a **new order** with the inverse effect of a closed one, made by
//! the domain from what the order recorded (`changed`, `[old, new]`:
//! [`crate::Domain::inverse`]) — a change is changed back, a registration
//! deleted, a deletion registered again. The new order is placed by the
//! person asking through [`executor::submit_with`], so the checks and
//! policies judge it like any order: an IPv4 address given to another
//! device meanwhile is an error of the rollback order, never overwritten.
//!
//! Refused before anything is placed:
//!
//! - who may not roll the order back: the policies decide the action
//!   [`crate::pdp::ROLLBACK_ORDER`] on the order (without policies: the
//!   staff table); one who may not even read it gets 404, as elsewhere;
//! - an order that is open, or changed nothing (it failed, or had nothing
//!   to do): 409;
//! - an order the domain cannot invert (it says why): 409;
//! - an order with a rollback still open: 409 naming it;
//! - **conflicts**: a later order (larger id) about the same object
//!   ([`crate::Domain::same_object`]) that changed any of the fields this
//!   one changed — or any field at all when the inverse undoes the object
//!   as a whole ([`crate::Inverse::whole_object`]) — stands in the way;
//!   409 names those orders (`orders` of the problem document). An order
//!   that failed changed nothing (its effect commits with its state), so
//!   "not failed" is "changed something". A rollback that completed is
//!   such a later order, so an order is rolled back once.
//!
//! The link (`auftrag_rollbacks`, migration 0023) is written in the
//! transaction that stores the rollback order, and both history documents
//! show it: `links.rollback_of` on the rollback, `links.rolled_back_by` on
//! the order rolled back.
//!
//! The conflict rule is judged when the request arrives, before the
//! rollback order's transaction: an order about the same object placed at
//! that very moment is not seen by it (the rollback order's checks still
//! judge the device as it is then). Another rollback of the same order is:
//! the rollback order's transaction locks the order rolled back and looks
//! again ([`guard`]), so of two rollbacks sent at once one is placed and
//! the other refused (409).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::TryStreamExt;
use sqlx::{AnyConnection, Row};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::{Inverse, ObjectOf};
use crate::error::EngineError;
use crate::http::server::{AppState, Engine};
use crate::http::{ApiResult, OrderId, Problem};
use crate::store::history::{Links, now};
use crate::store::{self, StoredOrder};
use crate::workflow::context::{Fields, Principal};
use crate::workflow::executor;

/// The rollback route (merged into [`crate::http::api_routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rollback_order))
}

/// Rolls a closed order back: places a new order with its inverse effect,
/// placed by the caller and checked and authorized like any order. Refused
/// (409, naming them in `orders`) while later orders changed the same
/// fields of the same object.
#[utoipa::path(post, path = "/api/v1/orders/{id}/rollback", tag = "orders",
    params(("id" = i64, Path, description = "The order to roll back")),
    responses(
        (status = 201, description = "The rollback order, stored and processed as `POST /api/v1/orders` answers; its history links to the order rolled back", body = executor::Outcome),
        (status = 409, description = "The order cannot be rolled back: open, changed nothing, not invertible, a rollback of it is open, or later orders (`orders`) changed the same fields", content_type = "application/problem+json"),
    ))]
async fn rollback_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
) -> ApiResult<(StatusCode, Json<executor::Outcome>)> {
    let outcome = roll_back(&state.engine, &principal, id).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

/// Rolls order `id` back for `principal`: [`plan`], then places the
/// rollback order linked to it. The API (`POST /api/v1/orders/{id}/rollback`)
/// and the order page's "Roll back" form call it alike.
pub async fn roll_back(
    engine: &Engine,
    principal: &Principal,
    id: i64,
) -> Result<executor::Outcome, Problem> {
    let inverse = plan(engine, principal, id).await?;
    Ok(executor::submit_with(
        engine,
        principal,
        &inverse.order_type,
        inverse.fields,
        Some(id),
    )
    .await?)
}

/// Whether `person` may roll `order` back by the policies (action
/// [`crate::pdp::ROLLBACK_ORDER`]; without policies: the staff table), and
/// the policy's summary for a refusal. Whether the order can be rolled back
/// (closed, no conflicts) is not judged here.
pub async fn permitted(
    conn: &mut AnyConnection,
    engine: &Engine,
    order: &StoredOrder,
    person: &str,
) -> Result<(bool, String), EngineError> {
    Ok(match engine.defs.authorization {
        Some(auth) => {
            let r = crate::pdp::decide_action(
                conn,
                auth,
                &order.data,
                person,
                crate::pdp::ROLLBACK_ORDER,
            )
            .await;
            (
                r.decision == crate::pdp::Decision::Permit,
                format!(" ({})", crate::pdp::summary_for_subject(&r)),
            )
        }
        None => (store::is_staff(conn, person).await?, String::new()),
    })
}

fn conflict(detail: String, orders: Vec<i64>) -> Problem {
    Problem {
        orders: (!orders.is_empty()).then(|| orders.into_boxed_slice()),
        ..Problem::new(StatusCode::CONFLICT, "Conflict", detail)
    }
}

/// Whether `principal` may roll order `id` back, and the order that would
/// do it; every refusal as the problem document to answer.
pub async fn plan(engine: &Engine, principal: &Principal, id: i64) -> Result<Inverse, Problem> {
    let defs = engine.defs;
    let mut conn = engine.store.acquire().await?;
    let order = store::load_order(&mut conn, defs, id).await?;
    let (permitted, why) = permitted(&mut conn, engine, &order, &principal.person).await?;
    if !permitted {
        if !crate::pdp::may_read(&mut conn, defs, &order.data, &principal.person).await? {
            return Err(EngineError::NotFound(id).into());
        }
        return Err(EngineError::Forbidden(format!(
            "you may not roll order {id} back; rollbacks are for staff{why}"
        ))
        .into());
    }
    if !order.closed {
        return Err(conflict(
            format!(
                "order {id} is {}, not closed: only a closed order can be rolled back; an open one can be aborted or withdrawn",
                order.state
            ),
            Vec::new(),
        ));
    }
    if order.data.changes.is_empty() {
        return Err(conflict(
            format!(
                "order {id} ({}) changed nothing, so there is nothing to roll back",
                order.state
            ),
            Vec::new(),
        ));
    }
    let links = links_of(&mut conn, id).await?;
    for &r in &links.rolled_back_by {
        let rollback = store::load_order(&mut conn, defs, r).await?;
        if !rollback.closed {
            return Err(conflict(
                format!(
                    "order {r}, which rolls order {id} back, is still {}; accept, abort or withdraw it first",
                    rollback.state
                ),
                vec![r],
            ));
        }
    }
    let document = order.document();
    let inverse = engine.domain.inverse(&document).map_err(|reason| {
        conflict(
            format!("order {id} cannot be rolled back: {reason}"),
            Vec::new(),
        )
    })?;
    let later = later_conflicts(&mut conn, engine, &order, inverse.whole_object).await?;
    if !later.is_empty() {
        let ids: Vec<i64> = later.iter().map(|(i, _)| *i).collect();
        let done: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| links.rolled_back_by.contains(i))
            .collect();
        let detail = if let Some(r) = done.first() {
            format!("order {id} was rolled back already, by order {r}")
        } else {
            let named: Vec<String> = later
                .iter()
                .map(|(i, fields)| format!("order {i} ({})", fields.join(", ")))
                .collect();
            format!(
                "order {id} cannot be rolled back: later orders changed {} since: {}; roll those back first, newest first",
                if inverse.whole_object {
                    "its object"
                } else {
                    "the same fields of its object"
                },
                named.join(", ")
            )
        };
        return Err(conflict(detail, ids));
    }
    Ok(inverse)
}

/// Later orders (larger id) about the same object as `order` that changed
/// any of its changed fields (any field when `whole_object`): their ids
/// with the fields in the way, oldest first. Orders that changed nothing
/// (failed, or still open) are not read.
async fn later_conflicts(
    conn: &mut AnyConnection,
    engine: &Engine,
    order: &StoredOrder,
    whole_object: bool,
) -> Result<Vec<(i64, Vec<String>)>, EngineError> {
    let id = order.data.id.unwrap_or_default();
    let this = ObjectOf {
        order_type: order.data.order_type.name,
        requester: &order.data.requester,
        key: order.data.key(),
        fields: &order.data.fields,
        facts: order.data.facts.as_ref(),
    };
    let mut found = Vec::new();
    let mut rows = sqlx::query(
        "SELECT id, order_type, requester, host, fields, changes, facts FROM auftrag_orders \
         WHERE id > $1 AND changes <> '{}' ORDER BY id",
    )
    .bind(id)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let json = |column: &str, text: Option<String>| -> Result<Option<Fields>, EngineError> {
            text.map(|t| {
                serde_json::from_str::<Fields>(&t).map_err(|e| {
                    EngineError::Internal(format!("stored column `{column}` is not valid: {e}"))
                })
            })
            .transpose()
        };
        let later_id: i64 = row.try_get(0)?;
        let order_type: String = row.try_get(1)?;
        let requester: String = row.try_get(2)?;
        let host: Option<String> = row.try_get(3)?;
        let fields = json("fields", row.try_get(4)?)?.unwrap_or_default();
        let changes = json("changes", row.try_get(5)?)?.unwrap_or_default();
        let facts = json("facts", row.try_get(6)?)?;
        let that = ObjectOf {
            order_type: &order_type,
            requester: &requester,
            key: host.as_deref(),
            fields: &fields,
            facts: facts.as_ref(),
        };
        if !engine.domain.same_object(&this, &that) {
            continue;
        }
        let in_the_way: Vec<String> = changes
            .keys()
            .filter(|k| whole_object || order.data.changes.contains_key(*k))
            .cloned()
            .collect();
        if !in_the_way.is_empty() {
            found.push((later_id, in_the_way));
        }
    }
    Ok(found)
}

/// In the transaction that will store a rollback of order `of`, before
/// anything of it is written: locks `of` (PostgreSQL; SQLite's write
/// transactions hold the database already), so rollbacks of one order
/// take turns, and refuses (409) when another rollback of it is open or
/// changed something — the request's own [`plan`] saw none, but one sent
/// at the same moment may have been stored since.
pub(crate) async fn guard(
    conn: &mut AnyConnection,
    backend: crate::store::Backend,
    of: i64,
) -> Result<(), EngineError> {
    if backend == crate::store::Backend::Postgres {
        sqlx::query("SELECT id FROM auftrag_orders WHERE id = $1 FOR UPDATE")
            .bind(of)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let other = sqlx::query(
        "SELECT r.order_id, o.state, o.closed FROM auftrag_rollbacks r \
         JOIN auftrag_orders o ON o.id = r.order_id \
         WHERE r.rollback_of = $1 AND (o.closed = 0 OR o.changes <> '{}') \
         ORDER BY r.order_id LIMIT 1",
    )
    .bind(of)
    .fetch_optional(&mut *conn)
    .await?;
    match other {
        None => Ok(()),
        Some(row) => {
            let (r, state, closed): (i64, String, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            Err(EngineError::Conflict(if closed == 0 {
                format!(
                    "order {r}, which rolls order {of} back, is still {state}; accept, abort or withdraw it first"
                )
            } else {
                format!("order {of} was rolled back already, by order {r}")
            }))
        }
    }
}

/// Records that order `order_id` was placed to roll back `rollback_of`, in
/// the transaction that stores it.
pub async fn record_link(
    conn: &mut AnyConnection,
    order_id: i64,
    rollback_of: i64,
) -> Result<(), EngineError> {
    sqlx::query(
        "INSERT INTO auftrag_rollbacks (order_id, rollback_of, created_at) VALUES ($1, $2, $3)",
    )
    .bind(order_id)
    .bind(rollback_of)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    // the order rolled back has a new link in its history document: a new
    // version of it (and, with the history export on, an outbox entry)
    sqlx::query("UPDATE auftrag_orders SET version = version + 1 WHERE id = $1")
        .bind(rollback_of)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The rollback links of order `id` (`links` of its history document).
pub async fn links_of(conn: &mut AnyConnection, id: i64) -> Result<Links, EngineError> {
    let rows = sqlx::query(
        "SELECT order_id, rollback_of FROM auftrag_rollbacks \
         WHERE order_id = $1 OR rollback_of = $1 ORDER BY order_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut links = Links::default();
    for row in rows {
        let (order_id, of): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if order_id == id {
            links.rollback_of = Some(of);
        } else {
            links.rolled_back_by.push(order_id);
        }
    }
    Ok(links)
}

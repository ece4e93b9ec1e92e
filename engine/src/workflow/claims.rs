//! Claims (as in Camunda's Tasklist): a member of staff claims an open order
//! before working it, so two people do not decide the same order. A claim
//! lapses after [`crate::Engine::claim_ttl`]; claiming an order someone else
//! holds must say so (`take_over`), and a staff action on an order another
//! person holds is refused (409) until they unclaim it, their claim lapses
//! or it is taken over. Claims are events in `auftrag_claims` (claim,
//! take_over, unclaim) and part of the order's history document.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::EngineError;
use crate::http::server::Engine;
use crate::store::history::{format_instant, now};
use crate::workflow::context::Principal;

/// One claim event of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ClaimEvent {
    /// `claim`, `take_over` or `unclaim`.
    pub event: String,
    /// `PERS_KEY` of the person who claimed, took over or unclaimed.
    pub person: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// When a claim lapses (claim and take_over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Who holds an order now, as `POST …/claim` and `…/unclaim` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClaimState {
    pub order: i64,
    /// `PERS_KEY` of the holder; absent when nobody holds the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When the claim lapses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Every claim event of an order, oldest first.
pub async fn events(conn: &mut AnyConnection, order: i64) -> Result<Vec<ClaimEvent>, EngineError> {
    let rows = sqlx::query(
        "SELECT event, person, at, until FROM auftrag_claims WHERE order_id = $1 ORDER BY id",
    )
    .bind(order)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ClaimEvent {
                event: r.try_get("event")?,
                person: r.try_get("person")?,
                at: r.try_get("at")?,
                until: r.try_get("until")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::from)
}

/// The claim in force on an order: its latest event, when that is a claim
/// or take-over that has not lapsed.
pub async fn current(
    conn: &mut AnyConnection,
    order: i64,
) -> Result<Option<ClaimEvent>, EngineError> {
    let row = sqlx::query(
        "SELECT event, person, at, until FROM auftrag_claims WHERE order_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(order)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let e = ClaimEvent {
        event: r.try_get("event")?,
        person: r.try_get("person")?,
        at: r.try_get("at")?,
        until: r.try_get("until")?,
    };
    Ok(in_force(e, &now()))
}

/// The claims in force on many orders (order id → claim), for a queue.
pub async fn current_of(
    conn: &mut AnyConnection,
    orders: &[i64],
) -> Result<std::collections::HashMap<i64, ClaimEvent>, EngineError> {
    let mut held = std::collections::HashMap::new();
    if orders.is_empty() {
        return Ok(held);
    }
    let ids = orders
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // ids are numbers, formatted here: nothing of a request is in the text
    let rows = sqlx::query(&format!(
        "SELECT order_id, event, person, at, until FROM auftrag_claims c WHERE order_id IN ({ids}) \
         AND id = (SELECT MAX(id) FROM auftrag_claims d WHERE d.order_id = c.order_id)"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let at = now();
    for r in rows {
        let e = ClaimEvent {
            event: r.try_get("event")?,
            person: r.try_get("person")?,
            at: r.try_get("at")?,
            until: r.try_get("until")?,
        };
        if let Some(e) = in_force(e, &at) {
            held.insert(r.try_get("order_id")?, e);
        }
    }
    Ok(held)
}

fn in_force(e: ClaimEvent, now: &str) -> Option<ClaimEvent> {
    let live = e.event != "unclaim" && e.until.as_deref().is_some_and(|u| u > now);
    live.then_some(e)
}

/// Refuses a staff action on order `id` while another person holds it.
pub(crate) async fn ensure_not_held_by_other(
    conn: &mut AnyConnection,
    id: i64,
    person: &str,
) -> Result<(), EngineError> {
    match current(conn, id).await? {
        Some(c) if c.person != person => Err(EngineError::Conflict(format!(
            "order {id} is claimed by {} until {}; ask them, wait until then, or take it over (POST /api/v1/orders/{id}/claim {{\"take_over\": true}})",
            c.person,
            c.until.unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// `actor` claims open order `id` (again: the claim is extended). A claim
/// someone else holds is refused (409) unless `take_over`. Only those the
/// policies let act as staff on the order may claim it (see
/// [`crate::workflow::executor::ensure_staff`]).
pub async fn claim(
    engine: &Engine,
    actor: &Principal,
    id: i64,
    take_over: bool,
) -> Result<ClaimState, EngineError> {
    let mut tx = engine.store.begin_write().await?;
    let order = crate::store::lock_order(&mut tx, engine.store.backend, engine.defs, id).await?;
    crate::workflow::executor::ensure_staff(&mut tx, engine.defs, &order.data, actor, id).await?;
    if order.closed {
        return Err(EngineError::Conflict(format!(
            "order {id} is {} and closed; there is nothing to work on",
            order.state
        )));
    }
    let held = current(&mut tx, id).await?;
    let event = match &held {
        Some(c) if c.person != actor.person && !take_over => {
            return Err(EngineError::Conflict(format!(
                "order {id} is claimed by {} until {}; to take it over, claim it with {{\"take_over\": true}}",
                c.person,
                c.until.clone().unwrap_or_default()
            )));
        }
        Some(c) if c.person != actor.person => "take_over",
        _ => "claim",
    };
    let at = time::OffsetDateTime::now_utc();
    let until = format_instant(at + engine.claim_ttl);
    sqlx::query(
        "INSERT INTO auftrag_claims (order_id, person, event, at, until) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(&actor.person)
    .bind(event)
    .bind(format_instant(at))
    .bind(&until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ClaimState {
        order: id,
        claimed_by: Some(actor.person.clone()),
        until: Some(until),
    })
}

/// `actor` gives up their claim on order `id`; nothing happens when nobody
/// holds it, and another person's claim is refused (409: take it over
/// first).
pub async fn unclaim(
    engine: &Engine,
    actor: &Principal,
    id: i64,
) -> Result<ClaimState, EngineError> {
    let mut tx = engine.store.begin_write().await?;
    let order = crate::store::lock_order(&mut tx, engine.store.backend, engine.defs, id).await?;
    crate::workflow::executor::ensure_staff(&mut tx, engine.defs, &order.data, actor, id).await?;
    match current(&mut tx, id).await? {
        None => {}
        Some(c) if c.person != actor.person => {
            return Err(EngineError::Conflict(format!(
                "order {id} is claimed by {}, not by you; take it over first to release it",
                c.person
            )));
        }
        Some(_) => {
            sqlx::query(
                "INSERT INTO auftrag_claims (order_id, person, event, at) VALUES ($1, $2, 'unclaim', $3)",
            )
            .bind(id)
            .bind(&actor.person)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(ClaimState {
        order: id,
        claimed_by: None,
        until: None,
    })
}

//! The outbox table's SQL. A row is claimed with a lease (token and end);
//! every outcome is one UPDATE conditional on the token, so a sender whose
//! lease ran out (and whose row another sender took) records nothing, and a
//! row is never lost: it stays PENDING until it is SENT or FAILED.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::EngineError;
use crate::store::{Backend, Store};

/// A row a sender holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub order_id: i64,
    pub seq: i64,
    pub template: String,
    pub recipient: String,
    pub vars: String,
    pub attempts: i64,
    pub token: String,
}

/// Claims up to `max` due rows for `lease_ms`, oldest first.
pub async fn claim(store: &Store, max: usize, lease_ms: i64) -> Result<Vec<Claimed>, EngineError> {
    let token = crate::jobs::token::random_hex(16);
    let now = super::now_ms();
    let lock = match store.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE auftrag_outbox SET lease_token = $1, lease_until_ms = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM auftrag_outbox WHERE status = 'PENDING' AND next_ms <= $3 \
         AND lease_until_ms <= $3 ORDER BY next_ms, id LIMIT {}{lock}) \
         RETURNING id, order_id, seq, template, recipient, vars, attempts",
        max.clamp(1, 100)
    );
    let mut conn = store.write_conn().await?;
    let rows = sqlx::query(&sql)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    drop(conn);
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get(0)?,
                order_id: r.try_get(1)?,
                seq: r.try_get(2)?,
                template: r.try_get(3)?,
                recipient: r.try_get(4)?,
                vars: r.try_get(5)?,
                attempts: r.try_get(6)?,
                token: token.clone(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// How a send ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        message_id: String,
    },
    /// Try again at `next_ms`.
    Retry {
        next_ms: i64,
        error: String,
    },
    /// The server refused for good (or there is no address).
    Failed {
        error: String,
    },
}

/// Records the outcome of a claimed row (nothing when the lease was lost).
pub async fn record(
    store: &Store,
    row: &Claimed,
    address: Option<&str>,
    outcome: &Outcome,
) -> Result<bool, EngineError> {
    let (status, next_ms, message_id, sent_at, error) = match outcome {
        Outcome::Sent { message_id } => (
            "SENT",
            0,
            Some(message_id.as_str()),
            Some(crate::store::history::now()),
            None,
        ),
        Outcome::Retry { next_ms, error } => {
            ("PENDING", *next_ms, None, None, Some(error.as_str()))
        }
        Outcome::Failed { error } => ("FAILED", 0, None, None, Some(error.as_str())),
    };
    let mut conn = store.write_conn().await?;
    let done = sqlx::query(
        "UPDATE auftrag_outbox SET status = $1, next_ms = CASE WHEN $2 > 0 THEN $2 ELSE next_ms END, \
         lease_until_ms = 0, lease_token = NULL, address = COALESCE($3, address), \
         message_id = COALESCE($4, message_id), sent_at = $5, last_error = COALESCE($6, last_error) \
         WHERE id = $7 AND lease_token = $8",
    )
    .bind(status)
    .bind(next_ms)
    .bind(address)
    .bind(message_id)
    .bind(sent_at)
    .bind(error)
    .bind(row.id)
    .bind(&row.token)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// One notification of an order, as `GET /api/v1/orders/{id}` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The recipient: `person:KEY`, `staff` or `address:ADDR`.
    pub to: String,
    /// The address it went (or goes) to, once the sender resolved it.
    pub address: Option<String>,
    pub transition: String,
    pub template: String,
    /// PENDING (kept or being retried), SENT, FAILED.
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
}

/// An order's notifications, in the order they were written.
pub async fn of_order(conn: &mut AnyConnection, order_id: i64) -> Result<Vec<Listed>, EngineError> {
    let rows = sqlx::query(
        "SELECT recipient, address, transition, template, status, attempts, sent_at, last_error, \
         message_id FROM auftrag_outbox WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Listed {
                to: r.try_get(0)?,
                address: r.try_get(1)?,
                transition: r.try_get(2)?,
                template: r.try_get(3)?,
                status: r.try_get(4)?,
                attempts: r.try_get(5)?,
                sent_at: r.try_get(6)?,
                last_error: r.try_get(7)?,
                message_id: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::from)
}

/// The outbox's backlog for `/healthz`.
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    /// Mails not yet sent (due, waiting for a retry, or being sent).
    pub pending: i64,
    /// Seconds the oldest of them has waited.
    pub oldest_pending_secs: i64,
    /// Mails a server refused for good.
    pub failed: i64,
}

pub async fn backlog(store: &Store) -> Result<Backlog, EngineError> {
    let row = sqlx::query(
        "SELECT COUNT(*), MIN(created_ms) FROM auftrag_outbox WHERE status = 'PENDING'",
    )
    .fetch_one(&store.pool)
    .await?;
    let pending: i64 = row.try_get(0)?;
    let oldest: Option<i64> = row.try_get(1)?;
    let failed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM auftrag_outbox WHERE status = 'FAILED'")
            .fetch_one(&store.pool)
            .await?;
    Ok(Backlog {
        pending,
        oldest_pending_secs: oldest.map_or(0, |o| ((super::now_ms() - o) / 1000).max(0)),
        failed,
    })
}

/// [`of_order`] as JSON values (for the order's history document).
pub async fn listed_json(
    conn: &mut AnyConnection,
    order_id: i64,
) -> Result<Vec<serde_json::Value>, EngineError> {
    Ok(of_order(conn, order_id)
        .await?
        .into_iter()
        .filter_map(|l| serde_json::to_value(l).ok())
        .collect())
}

/// An order's rows as a sender would claim them (for `auftrag mail
/// preview`; no lease is taken).
pub async fn rows_of(conn: &mut AnyConnection, order_id: i64) -> Result<Vec<Claimed>, EngineError> {
    let rows = sqlx::query(
        "SELECT id, order_id, seq, template, recipient, vars, attempts FROM auftrag_outbox \
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get(0)?,
                order_id: r.try_get(1)?,
                seq: r.try_get(2)?,
                template: r.try_get(3)?,
                recipient: r.try_get(4)?,
                vars: r.try_get(5)?,
                attempts: r.try_get(6)?,
                token: String::new(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::from)
}

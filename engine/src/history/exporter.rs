//! The transactional outbox and the task that copies changed history
//! documents to MongoDB.
//!
//! While the export is on (setting `history_export` = `on`, set when
//! `auftrag serve --history` starts), triggers on `auftrag_orders` add an
//! entry to `auftrag_history_outbox` for every insert or update of an order,
//! inside the transaction that made it: an order cannot change without its
//! entry, and an entry cannot exist for a change that was rolled back.
//!
//! An exporter runs in every `serve` with `--history`. It claims a batch of
//! entries (PostgreSQL: `FOR UPDATE SKIP LOCKED` in a transaction, so that
//! several instances share the work without waiting for each other),
//! reads those orders as they are now, with their row version, writes each
//! document to MongoDB unless MongoDB holds it at the same or a later
//! version ([`super::mongo::HistoryDb::put`]), then deletes the entries and
//! commits. A retry, a second exporter or an old copy arriving late can
//! therefore never replace a newer document. MongoDB unreachable: the
//! entries stay (and are claimed again), orders keep flowing, `/healthz`
//! shows the backlog and its age.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tracing::{info, warn};

use super::document::{Derived, MongoDocument};
use super::mongo::HistoryDb;
use crate::error::EngineError;
use crate::http::server::Engine;
use crate::store::{Backend, Store};

/// The setting that turns the outbox triggers on.
pub const SETTING: &str = "history_export";

/// Entries one exporter claims at a time.
const BATCH: i64 = 256;

/// Documents written to MongoDB at once.
const PARALLEL: usize = 16;

/// Turns the outbox on: from now on every write of an order leaves an entry.
pub async fn enable(store: &Store) -> Result<(), EngineError> {
    let mut conn = store.write_conn().await?;
    sqlx::query(
        "INSERT INTO auftrag_settings (name, value) VALUES ($1, 'on') \
         ON CONFLICT (name) DO UPDATE SET value = 'on'",
    )
    .bind(SETTING)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The outbox's state for `/healthz`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Lag {
    /// Order writes not yet copied to MongoDB.
    pub pending: i64,
    /// Seconds the oldest of them has waited.
    pub oldest_pending_secs: i64,
    /// Whether the export is behind (entries older than a few seconds).
    pub behind: bool,
    /// The last error talking to MongoDB, while it lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Seconds after which pending entries mean the export is behind.
const BEHIND_SECS: i64 = 5;

pub async fn lag(store: &Store, status: &ExportStatus) -> Result<Lag, EngineError> {
    let row = sqlx::query("SELECT COUNT(*), MIN(created_ms) FROM auftrag_history_outbox")
        .fetch_one(&store.pool)
        .await?;
    let pending: i64 = row.try_get(0)?;
    let oldest: Option<i64> = row.try_get(1)?;
    let oldest_pending_secs = oldest.map_or(0, |o| ((crate::notify::now_ms() - o) / 1000).max(0));
    Ok(Lag {
        pending,
        oldest_pending_secs,
        behind: oldest_pending_secs >= BEHIND_SECS,
        last_error: status.last_error(),
    })
}

/// What the exporter last saw go wrong (shared with `/healthz`).
#[derive(Debug, Default)]
pub struct ExportStatus {
    error: std::sync::Mutex<Option<String>>,
}

impl ExportStatus {
    fn set(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    pub fn last_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The document of `order` at `version`, as MongoDB keeps it, with its
/// rollback `links`.
pub fn mongo_document(
    defs: &'static crate::workflow::defs::Definitions,
    order: &crate::store::StoredOrder,
    version: i64,
    links: crate::store::history::Links,
) -> Result<mongodb::bson::Document, EngineError> {
    let mut document = order.document();
    document.links = links;
    let derived = Derived::of_order(defs, order);
    MongoDocument {
        id: document.id,
        version,
        document: &document,
        derived: &derived,
    }
    .to_bson()
}

/// The documents of `orders` (with their versions) as MongoDB keeps them,
/// their rollback links read in one query.
pub async fn mongo_documents(
    conn: &mut sqlx::AnyConnection,
    defs: &'static crate::workflow::defs::Definitions,
    orders: &[(crate::store::StoredOrder, i64)],
) -> Result<Vec<mongodb::bson::Document>, EngineError> {
    let ids: Vec<String> = orders
        .iter()
        .filter_map(|(o, _)| o.data.id)
        .map(|id| id.to_string())
        .collect();
    let mut links: BTreeMap<i64, crate::store::history::Links> = BTreeMap::new();
    if !ids.is_empty() {
        // ids are integers: a list of them in the statement is safe
        let list = ids.join(", ");
        let rows = sqlx::query(&format!(
            "SELECT order_id, rollback_of FROM auftrag_rollbacks \
             WHERE order_id IN ({list}) OR rollback_of IN ({list}) ORDER BY order_id"
        ))
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let (order_id, of): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            links.entry(order_id).or_default().rollback_of = Some(of);
            links.entry(of).or_default().rolled_back_by.push(order_id);
        }
    }
    orders
        .iter()
        .map(|(order, version)| {
            let id = order.data.id.unwrap_or_default();
            mongo_document(defs, order, *version, links.remove(&id).unwrap_or_default())
        })
        .collect()
}

/// Writes `documents`: all at once as new documents (`insertMany`,
/// unordered — one round trip, the common case of orders MongoDB does not
/// hold yet), then those whose `_id` was there already one by one with the
/// version guard ([`HistoryDb::put`]), [`PARALLEL`] at a time. Returns how
/// many were written (the others were there at the same or a later
/// version); the first other error stops it.
async fn put_all(
    history: &HistoryDb,
    documents: Vec<mongodb::bson::Document>,
) -> Result<usize, EngineError> {
    use futures::StreamExt;
    if documents.is_empty() {
        return Ok(0);
    }
    let total = documents.len();
    let existing: Vec<usize> = match history.orders.insert_many(&documents).ordered(false).await {
        Ok(_) => return Ok(total),
        Err(e) => match e.kind.as_ref() {
            mongodb::error::ErrorKind::InsertMany(m)
                if m.write_concern_error.is_none()
                    && m.write_errors
                        .as_ref()
                        .is_some_and(|w| w.iter().all(|w| w.code == 11000 || w.code == 121)) =>
            {
                let errors = m.write_errors.iter().flatten();
                for w in errors.clone().filter(|w| w.code == 121) {
                    refused(&documents[w.index.min(total - 1)], &w.message);
                }
                errors
                    .filter(|w| w.code == 11000)
                    .map(|w| w.index)
                    .collect()
            }
            _ => {
                return Err(EngineError::Internal(format!(
                    "MongoDB history store: writing history documents: {e}"
                )));
            }
        },
    };
    let inserted = total - existing.len();
    let results: Vec<Result<bool, EngineError>> = futures::stream::iter(existing)
        .filter_map(|i| std::future::ready(documents.get(i).cloned()))
        .map(|d| history.put(d))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut written = inserted;
    for r in results {
        written += usize::from(r?);
    }
    Ok(written)
}

/// A document MongoDB's validator refused: the definitions and the stored
/// order disagree (e.g. an order type removed from the definitions). It is
/// left out with an error in the log — the SQL database keeps the order —
/// instead of stopping the export of every other order.
fn refused(document: &mongodb::bson::Document, why: &str) {
    tracing::error!(
        id = document.get_i64("_id").unwrap_or_default(),
        reason = why,
        "MongoDB refused a history document; it is left out of the export"
    );
}

/// One round: claims up to [`BATCH`] entries, copies their orders, removes
/// the entries. Returns how many entries it did (0: the outbox is empty,
/// or every entry is claimed by another exporter).
pub async fn export_once(engine: &Engine, history: &HistoryDb) -> Result<usize, EngineError> {
    let store = &engine.store;
    match store.backend {
        // a transaction holds the claimed entries' locks until they are
        // deleted; other exporters skip them
        Backend::Postgres => {
            let mut tx = store.pool.begin().await?;
            let done = export_claimed(engine, history, &mut tx, " FOR UPDATE SKIP LOCKED").await?;
            tx.commit().await?;
            Ok(done)
        }
        // SQLite has one writer anyway: read without a transaction (a
        // reading transaction could not become a writing one once another
        // connection has committed), delete on the writer connection
        Backend::Sqlite => {
            let mut conn = store.acquire().await?;
            let (done, seqs) = claim_and_copy(engine, history, &mut conn, "").await?;
            drop(conn);
            if !seqs.is_empty() {
                let mut writer = store.write_conn().await?;
                delete_entries(&mut writer, &seqs).await?;
            }
            Ok(done)
        }
    }
}

async fn export_claimed(
    engine: &Engine,
    history: &HistoryDb,
    conn: &mut sqlx::AnyConnection,
    lock: &str,
) -> Result<usize, EngineError> {
    let (done, seqs) = claim_and_copy(engine, history, conn, lock).await?;
    delete_entries(conn, &seqs).await?;
    Ok(done)
}

/// Reads up to [`BATCH`] entries, copies their orders as they are now;
/// returns how many entries and their `seq`s.
async fn claim_and_copy(
    engine: &Engine,
    history: &HistoryDb,
    conn: &mut sqlx::AnyConnection,
    lock: &str,
) -> Result<(usize, Vec<i64>), EngineError> {
    let rows = sqlx::query(&format!(
        "SELECT seq, order_id FROM auftrag_history_outbox ORDER BY seq LIMIT {BATCH}{lock}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok((0, Vec::new()));
    }
    let mut seqs = Vec::with_capacity(rows.len());
    let mut ids = BTreeMap::new();
    for r in &rows {
        seqs.push(r.try_get::<i64, _>(0)?);
        ids.insert(r.try_get::<i64, _>(1)?, ());
    }
    let ids: Vec<i64> = ids.into_keys().collect();
    let orders = crate::store::orders_with_version(conn, engine.defs, &ids, 0, 0).await?;
    let documents = mongo_documents(conn, engine.defs, &orders).await?;
    put_all(history, documents).await?;
    Ok((seqs.len(), seqs))
}

async fn delete_entries(conn: &mut sqlx::AnyConnection, seqs: &[i64]) -> Result<(), EngineError> {
    if seqs.is_empty() {
        return Ok(());
    }
    // seqs are integers: a list of them in the statement is safe
    let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
    sqlx::query(&format!(
        "DELETE FROM auftrag_history_outbox WHERE seq IN ({})",
        list.join(", ")
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies every order to MongoDB (`auftrag history export --all`): fills an
/// empty or new store, or brings an old one up to date. Documents MongoDB
/// holds at the same or a later version stay. Returns (orders read,
/// documents written).
pub async fn export_all(
    store: &Store,
    defs: &'static crate::workflow::defs::Definitions,
    history: &HistoryDb,
    mut progress: impl FnMut(usize, usize),
) -> Result<(usize, usize), EngineError> {
    const PAGE: i64 = 1000;
    let (mut read, mut written) = (0, 0);
    let mut after = 0;
    loop {
        let mut conn = store.acquire().await?;
        let orders = crate::store::orders_with_version(&mut conn, defs, &[], after, PAGE).await?;
        let Some(last) = orders.last().map(|(o, _)| o.data.id.unwrap_or_default()) else {
            break;
        };
        let documents = mongo_documents(&mut conn, defs, &orders).await?;
        drop(conn);
        after = last;
        read += orders.len();
        written += put_all(history, documents).await?;
        progress(read, written);
    }
    Ok((read, written))
}

/// The exporter task of `auftrag serve --history`: sets the collection up
/// (waiting for MongoDB as long as it takes), then exports until
/// `shutdown` resolves.
pub async fn run(
    engine: Arc<Engine>,
    history: HistoryDb,
    indexes: Vec<mongodb::IndexModel>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let status = &engine.history_status;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(250);
    let mut ready = false;
    info!(url = %history.shown_url, "exporting the history to MongoDB");
    loop {
        let round = async {
            if !ready {
                history.ensure(engine.defs, indexes.clone()).await?;
                ready = true;
                info!("history collection ready");
            }
            export_once(&engine, &history).await
        }
        .await;
        let pause = match round {
            Ok(0) => {
                status.set(None);
                backoff = Duration::from_millis(250);
                Duration::from_millis(200)
            }
            Ok(_) => {
                status.set(None);
                backoff = Duration::from_millis(250);
                Duration::ZERO
            }
            Err(e) => {
                if status.last_error().is_none() {
                    warn!(error = %e, "history export failed; retrying");
                }
                status.set(Some(e.to_string()));
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

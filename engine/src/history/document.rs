//! The history document as MongoDB keeps it, and the values derived from
//! an order's states that statistics read.

use serde::Serialize;

use crate::store::StoredOrder;
use crate::store::history::{OrderDocument, StateEntry};
use crate::workflow::defs::{Definitions, WorkflowDef};

/// What statistics need of an order's states, computed when the order is
/// written (columns `closed_at`, `duration_ms`, `waiting_ms`, `waited` in
/// SQL; the same names in the MongoDB document), so that counting a
/// million orders reads four columns instead of parsing every history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Derived {
    /// When the order reached its final state (RFC 3339, as stored).
    pub closed_at: Option<String>,
    /// Milliseconds from INSERTED to the final state; `None` while open.
    pub duration_ms: Option<i64>,
    /// Milliseconds spent in states where the order waits for a person
    /// (neither autorun nor final nor the workflow's initial state), over
    /// the stays that have ended.
    pub waiting_ms: i64,
    /// The order has been in such a state.
    pub waited: bool,
}

/// Whether an order in `state` waits for a person.
fn waits(workflow: &WorkflowDef, state: &str) -> bool {
    workflow.state_id(state).is_some_and(|id| {
        id != workflow.initial && {
            let s = workflow.state(id);
            !s.autorun && !s.final_state
        }
    })
}

/// Milliseconds since the Unix epoch of an instant as the history stores it.
pub fn instant_ms(at: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Derived {
    pub fn of(
        defs: &'static Definitions,
        order_type: &crate::workflow::defs::OrderTypeDef,
        states: &[StateEntry],
        closed: bool,
        created_at: &str,
    ) -> Self {
        let workflow = defs.workflow_of(order_type);
        let mut derived = Derived::default();
        for (i, entry) in states.iter().enumerate() {
            if !waits(workflow, &entry.state) {
                continue;
            }
            derived.waited = true;
            if let Some(next) = states.get(i + 1)
                && let (Some(from), Some(to)) = (instant_ms(&entry.at), instant_ms(&next.at))
            {
                derived.waiting_ms += (to - from).max(0);
            }
        }
        if closed && let Some(last) = states.last() {
            derived.closed_at = Some(last.at.clone());
            derived.duration_ms = instant_ms(&last.at)
                .zip(instant_ms(created_at))
                .map(|(to, from)| (to - from).max(0));
        }
        derived
    }

    pub fn of_order(defs: &'static Definitions, order: &StoredOrder) -> Self {
        Self::of(
            defs,
            order.data.order_type,
            &order.states,
            order.closed,
            &order.created_at,
        )
    }
}

/// The document MongoDB keeps for an order: the history document
/// ([`StoredOrder::document`], as `GET /api/v1/orders/{id}` shows it
/// before decisions, mails and claims are added), with `_id` = the order's
/// id, `version` (the outbox sequence number it was exported at; a document
/// is only replaced by one with a larger version) and the [`Derived`]
/// values.
#[derive(Debug, Serialize)]
pub struct MongoDocument<'a> {
    #[serde(rename = "_id")]
    pub id: i64,
    pub version: i64,
    #[serde(flatten)]
    pub document: &'a OrderDocument,
    #[serde(flatten)]
    pub derived: &'a Derived,
}

impl MongoDocument<'_> {
    /// As BSON, ready for the driver.
    pub fn to_bson(&self) -> Result<mongodb::bson::Document, crate::error::EngineError> {
        let mut document = mongodb::bson::to_document(self).map_err(|e| {
            crate::error::EngineError::Internal(format!("history document as BSON: {e}"))
        })?;
        // Facts are kept by attribute name (`resource.admin`); a dot in a
        // field name cannot be queried with MongoDB's dotted paths, so the
        // document nests them by category: `facts.resource.admin`.
        if let Some(facts) = self.document.facts.as_ref() {
            let mut nested = mongodb::bson::Document::new();
            for (name, value) in facts {
                let (category, rest) = name.split_once('.').unwrap_or(("", name));
                let value = mongodb::bson::Bson::try_from(value.clone())
                    .unwrap_or(mongodb::bson::Bson::Null);
                match nested.get_mut(category) {
                    Some(mongodb::bson::Bson::Document(d)) => {
                        d.insert(rest, value);
                    }
                    _ => {
                        nested.insert(category, mongodb::bson::doc! { rest: value });
                    }
                }
            }
            document.insert("facts", nested);
        }
        Ok(document)
    }
}

/// Fills the [`Derived`] columns of orders stored before they existed (and
/// raises those rows' versions). A row of an order type the definitions no
/// longer have, or with states that are not a history, gets the empty
/// values (no wait, no duration), so that it is not read again at the next
/// start. Returns how many rows it filled.
pub async fn backfill(
    store: &crate::store::Store,
    defs: &'static Definitions,
) -> Result<usize, crate::error::EngineError> {
    use sqlx::Row;
    let mut filled = 0;
    loop {
        let mut conn = store.acquire().await?;
        let rows = sqlx::query(
            "SELECT id, order_type, closed, created_at, states FROM auftrag_orders \
             WHERE waiting_ms IS NULL ORDER BY id LIMIT 500",
        )
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut tx = store.begin_write().await?;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let order_type: String = row.try_get(1)?;
            let closed = row.try_get::<i64, _>(2)? != 0;
            let created_at: String = row.try_get(3)?;
            let states: Option<Vec<StateEntry>> =
                serde_json::from_str(&row.try_get::<String, _>(4)?).ok();
            let d = match (defs.order_type(&order_type), states) {
                (Some(t), Some(states)) => Derived::of(defs, t, &states, closed, &created_at),
                _ => Derived::default(),
            };
            sqlx::query(
                "UPDATE auftrag_orders SET closed_at = $1, duration_ms = $2, waiting_ms = $3, \
                 waited = $4, version = version + 1 WHERE id = $5",
            )
            .bind(d.closed_at)
            .bind(d.duration_ms)
            .bind(d.waiting_ms)
            .bind(i64::from(d.waited))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        filled += rows.len();
    }
}

/// A history document as MongoDB keeps it ([`MongoDocument`]) turned back
/// into the one the API shows: the facts flat again (`resource.admin`).
pub fn from_mongo(
    mut document: mongodb::bson::Document,
) -> Result<OrderDocument, crate::error::EngineError> {
    use mongodb::bson::Bson;
    if let Ok(nested) = document.get_document("facts") {
        let mut flat = mongodb::bson::Document::new();
        for (category, values) in nested {
            match values {
                Bson::Document(values) => {
                    for (name, value) in values {
                        flat.insert(format!("{category}.{name}"), value.clone());
                    }
                }
                other => {
                    flat.insert(category.clone(), other.clone());
                }
            }
        }
        document.insert("facts", flat);
    }
    mongodb::bson::from_document::<OrderDocument>(document).map_err(|e| {
        crate::error::EngineError::Internal(format!(
            "a history document in MongoDB is not one: {e}"
        ))
    })
}

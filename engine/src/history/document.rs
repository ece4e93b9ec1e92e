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
        mongodb::bson::to_document(self).map_err(|e| {
            crate::error::EngineError::Internal(format!("history document as BSON: {e}"))
        })
    }
}

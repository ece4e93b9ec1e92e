//! The order history document (thesis Listing 5.3): one document per order
//! with its metadata, the changed fields as `{field: [old, new]}` and every
//! state it went through with time and comment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::context::{Fields, Finding};

/// The state every order is recorded in when it arrives.
pub const INSERTED: &str = "INSERTED";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub state: String,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The history document of one order, as `GET /api/v1/orders/{id}` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderDocument {
    pub id: i64,
    /// The object of the order (thesis: `host_id`).
    pub host_id: Option<String>,
    /// `PERS_KEY` of the requester (thesis: `auftraggeber_id`).
    pub requester: String,
    #[serde(rename = "type")]
    pub order_type: String,
    /// Current state.
    pub state: String,
    /// In a final state (thesis: `abgeschlossen`).
    pub closed: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The fields as submitted or last changed by staff.
    pub fields: Fields,
    /// What the order changed in the database (thesis: `daten`).
    pub changed: BTreeMap<String, [serde_json::Value; 2]>,
    /// Every state with time and comment (thesis: `zustaende`).
    pub states: Vec<StateEntry>,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Warnings staff accepted; not raised again.
    pub accepted_warnings: Vec<Finding>,
    /// Authorization decisions with their explanations (`GET /api/v1/orders/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<serde_json::Value>,
}

/// Now, as stored in the history: RFC 3339 UTC with milliseconds, so the
/// strings sort like the instants.
pub fn now() -> String {
    format_instant(OffsetDateTime::now_utc())
}

/// Formats an instant the way the history stores it.
pub fn format_instant(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let utc = at.to_offset(time::UtcOffset::UTC);
    // Formatting a UTC instant with this description cannot fail.
    utc.format(&format).unwrap_or_default()
}

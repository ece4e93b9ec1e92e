//! The order history document (thesis Listing 5.3): one document per order
//! with its metadata, the changed fields as `{field: [old, new]}` and every
//! state it went through with time and comment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::workflow::context::{Fields, Finding};

/// The state every order is recorded in when it arrives.
pub const INSERTED: &str = "INSERTED";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateEntry {
    pub state: String,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `PERS_KEY` of the person whose request moved the order here (the
    /// requester for INSERTED, staff for their actions); absent for the
    /// engine's own steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The history document of one order, as `GET /api/v1/orders/{id}` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Object)]
    pub fields: Fields,
    /// What the order changed in the database (thesis: `daten`): field →
    /// `[old, new]`.
    #[schema(value_type = Object)]
    pub changed: BTreeMap<String, [serde_json::Value; 2]>,
    /// Every state with time and comment (thesis: `zustaende`).
    pub states: Vec<StateEntry>,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Warnings staff accepted; not raised again.
    pub accepted_warnings: Vec<Finding>,
    /// Authorization decisions with their explanations (`GET /api/v1/orders/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<serde_json::Value>,
    /// What the order was about when it was decided (policy attributes
    /// marked `record="yes"` → value); who may read it is decided on these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub facts: Option<Fields>,
    /// The order's mails (`GET /api/v1/orders/{id}`): to, transition,
    /// status, attempts, sent at, last error (`crate::notify::outbox::Listed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<serde_json::Value>,
    /// Who claimed the order, took it over or gave it up, and when
    /// (`GET /api/v1/orders/{id}`; see [`crate::workflow::claims`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<crate::workflow::claims::ClaimEvent>,
    /// The rollback this order is, or the rollbacks placed for it
    /// (`GET /api/v1/orders/{id}`; `POST /api/v1/orders/{id}/rollback`).
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub links: Links,
}

/// How an order is linked to other orders (`links` of the history
/// document; see [`crate::history::rollback`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Links {
    /// This order was placed to roll back that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
    /// The orders placed to roll this one back, oldest first (one that
    /// failed its checks may be followed by another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back_by: Vec<i64>,
}

impl Links {
    pub fn is_empty(&self) -> bool {
        self.rollback_of.is_none() && self.rolled_back_by.is_empty()
    }
}

/// Now, as stored in the history: RFC 3339 UTC with milliseconds, so the
/// strings sort like the instants.
pub fn now() -> String {
    format_instant(OffsetDateTime::now_utc())
}

/// Formats an instant the way the history stores it.
pub fn format_instant(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    if (0..=9999).contains(&utc.year()) {
        // the description below, written digit by digit: every order
        // stores a handful of instants; `time`'s general formatter took
        // 4 k instructions for one, `write!` with padded fields 2 k
        let mut s = String::with_capacity(24);
        let fields: [(u32, u32, char); 7] = [
            (utc.year().unsigned_abs(), 4, '-'),
            (u8::from(utc.month()).into(), 2, '-'),
            (utc.day().into(), 2, 'T'),
            (utc.hour().into(), 2, ':'),
            (utc.minute().into(), 2, ':'),
            (utc.second().into(), 2, '.'),
            (utc.millisecond().into(), 3, 'Z'),
        ];
        for (value, width, then) in fields {
            for place in (0..width).rev() {
                let digit = value / 10u32.pow(place) % 10;
                s.push(char::from(b'0' + digit as u8));
            }
            s.push(then);
        }
        return s;
    }
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    // Formatting a UTC instant with this description cannot fail.
    utc.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_as_the_description_says() {
        let description = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        for unix_ms in [
            0_i64,
            1,
            999,
            1_764_655_200_123,
            253_402_300_799_999,
            -1,
            -62_135_596_800_000,
        ] {
            let at =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).unwrap();
            assert_eq!(
                format_instant(at),
                at.format(&description).unwrap(),
                "{unix_ms}"
            );
        }
        let local = OffsetDateTime::from_unix_timestamp(1_764_655_200)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format_instant(local), "2025-12-02T06:00:00.000Z");
    }
}

//! The typed context that actions, checks and conditions work on (the
//! thesis's workflow context: the order, its errors, warnings and the warnings
//! staff accepted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::workflow::defs::{Actor, Definitions, OrderTypeDef, Stage};

/// Field values of an order as submitted: field name → JSON value (a string,
/// or null for an emptied optional field).
pub type Fields = BTreeMap<String, serde_json::Value>;

/// One error or warning found by a check.
///
/// A warning staff accepted is not raised again on a later check of the same
/// order; identity is check, field and message, so the same check raising a
/// different problem (another device with that MAC) is raised anew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub check: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// The person on whose behalf a request is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `PERS_KEY` of the person.
    pub person: String,
}

impl Principal {
    /// Whether the person is a member of staff (the staff
    /// table). Asked where a route needs it, not for every request: placing
    /// an order leaves it to the policies.
    pub async fn is_staff(
        &self,
        store: &crate::store::Store,
    ) -> Result<bool, crate::error::EngineError> {
        let mut conn = store.pool.acquire().await?;
        crate::store::is_staff(&mut conn, &self.person).await
    }
}

/// An order as actions and checks see it.
#[derive(Debug, Clone)]
pub struct OrderData {
    /// `None` while validating in the portal stage (nothing is stored).
    pub id: Option<i64>,
    pub order_type: &'static OrderTypeDef,
    /// `PERS_KEY` of the person who submitted the order.
    pub requester: String,
    pub fields: Fields,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub accepted: Vec<Finding>,
    /// What the order changed: field → `[old, new]` (thesis Listing 5.3).
    pub changes: BTreeMap<String, [serde_json::Value; 2]>,
    /// What the order was about when it was decided: the values of the
    /// policy attributes marked `record="yes"` (attribute name → value) at
    /// its latest authorization decision, which a domain's action may
    /// complete (e.g. with the object it made). Decisions about the stored
    /// order (who may read it) read these instead of what the order's key
    /// means today. `None`: not decided yet (or stored before facts were
    /// kept).
    pub facts: Option<Fields>,
}

impl OrderData {
    /// The value of a filled text field. Empty strings and nulls count as not filled.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Whether the field has a value, i.e. whether its field checks run.
    /// Empty strings, empty lists and nulls count as not filled.
    pub fn is_filled(&self, field: &str) -> bool {
        match self.fields.get(field) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        }
    }

    /// The parsed value of a field (`None` when not filled). Use it after the
    /// syntax check passed; the generated field structs call it.
    pub fn typed<T: crate::workflow::types::FieldValue>(
        &self,
        field: &str,
    ) -> Result<Option<T>, crate::workflow::types::FieldError> {
        crate::workflow::types::optional(self.fields.get(field), field)
    }

    /// The value of the order type's key field (the object the order is
    /// about), as stored and indexed with the order: `None` for a text no
    /// key can be — with control characters or longer than
    /// [`KEY_MAX_LENGTH`] characters (the order's
    /// syntax check refuses it anyway).
    pub fn key(&self) -> Option<&str> {
        self.order_type
            .key_field
            .and_then(|k| self.text(k))
            .filter(|k| is_key(k))
    }

    /// Records that the order changed `field` from `old` to `new`.
    pub fn record_change(
        &mut self,
        field: &str,
        old: impl Into<serde_json::Value>,
        new: impl Into<serde_json::Value>,
    ) {
        self.changes
            .insert(field.to_owned(), [old.into(), new.into()]);
    }
}

/// The longest key (see [`OrderData::key`]) stored with an order: an index
/// entry must stay small (PostgreSQL refuses B-tree entries of more than
/// about 2.7 kB).
const KEY_MAX_LENGTH: usize = 255;

/// Whether a key field's text can be an order's key ([`OrderData::key`]):
/// not empty, no control characters, at most [`KEY_MAX_LENGTH`] characters.
fn is_key(text: &str) -> bool {
    !text.is_empty() && crate::workflow::types::check_text(text, KEY_MAX_LENGTH, false).is_ok()
}

/// Input that an API call hands to the action it triggers.
#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    pub comment: Option<String>,
    /// New field values (`change_field`).
    pub fields: Option<Fields>,
    /// The versions (`ETag`s) of the order the person acted on
    /// (`If-Match`); the action is refused (412) when the order has moved
    /// on since. `None`: act on whatever version there is.
    pub if_match: Option<String>,
}

/// What an action handler gets.
pub struct ActionCtx<'a> {
    /// The transaction that also records the state change and history.
    pub conn: &'a mut AnyConnection,
    pub defs: &'static Definitions,
    pub order: &'a mut OrderData,
    /// Who triggered the action; `None` when the engine runs it (autorun).
    pub actor: Option<&'a Principal>,
    /// The role in which the actor triggered the action.
    pub role: Option<Actor>,
    pub input: &'a ActionInput,
    /// Comment recorded with the resulting state in the history.
    pub comment: Option<String>,
    /// The action's return value: picks the resulting state when the
    /// workflow maps return values (`<resulting_state return="…">`).
    pub result: Option<String>,
    /// What the checks and policy resolvers of this transaction remembered
    /// (see [`Memo`]); an action that writes clears what it made stale.
    pub memo: &'a mut Memo,
    /// Decisions and jobs to write with the order's row (at the end of the
    /// transaction).
    pub(crate) pending: &'a mut crate::store::Pending,
}

impl ActionCtx<'_> {
    /// Sets the action's return value (see [`ActionCtx::result`]).
    pub fn set_result(&mut self, value: impl Into<String>) {
        self.result = Some(value.into());
    }

    /// Writes to send with the order's row at the end of the transaction,
    /// in the same round trip (see [`crate::store::writes`]): for writes that
    /// nothing in the transaction reads afterwards — or [`ActionCtx::flush`]
    /// them first. They fail the order's step like any handler error.
    pub fn defer(&mut self) -> &mut crate::store::writes::Writes {
        &mut self.pending.writes
    }

    /// Sends the deferred writes now, before reading what they write.
    pub async fn flush(&mut self) -> Result<(), crate::error::HandlerError> {
        std::mem::take(&mut self.pending.writes)
            .run(self.conn)
            .await?;
        Ok(())
    }
}

/// What a check function gets.
pub struct CheckCtx<'a> {
    /// Read access to the database, inside the order's transaction.
    pub conn: &'a mut AnyConnection,
    pub order: &'a OrderData,
    /// The field this check runs for; `None` for a global check.
    pub field: Option<&'static str>,
    pub stage: Stage,
    pub(crate) findings: Vec<(Option<String>, String)>,
    /// Authorization decisions to append to the order's log when its row is
    /// written.
    pub(crate) decisions: Vec<crate::store::PendingDecision>,
    /// The order's facts as its authorization decision found them (see
    /// [`OrderData::facts`]).
    pub(crate) facts: Option<Fields>,
    /// The persons the decisions' obligations name (obligation, persons).
    pub(crate) obligations: Vec<(&'static str, Vec<String>)>,
    /// The compiled policies of the definitions the check runs for (for the
    /// built-in check [`crate::builtin::authorization`]).
    pub(crate) authorization: Option<&'static crate::pdp::Authorization>,
    /// Values shared with the other checks, the policy resolvers and the
    /// executing action of the same transaction (see [`Memo`]).
    pub memo: Memo,
}

/// Values a domain's handlers derive from the database and share while one
/// order is processed (e.g. which device a host name means, or the domain's
/// view of the order), so that the policy resolvers, the checks and the
/// executing action ask the database once instead of once each.
///
/// A memo lives for one transaction: one [`crate::workflow::checks::run_checks`] call
/// at the portal stage, one workflow run (the action a person triggers and
/// the autorun steps after it) at the engine stage. Its values are only as
/// fresh as the reads behind them: a handler that **writes** the tables a
/// remembered value came from, or changes the order's fields, must
/// [`Memo::clear`] it (or the entries it made stale) before it returns (the
/// built-in `change_field` does). Keys are the domain's; prefix them with the
/// domain's name.
///
/// A handful of short keys looked up dozens of times per order: hashed with
/// foldhash rather than the standard library's SipHash, which cost more
/// than the lookups.
#[derive(Default)]
pub struct Memo(
    std::collections::HashMap<
        std::borrow::Cow<'static, str>,
        std::sync::Arc<dyn std::any::Any + Send + Sync>,
        foldhash::fast::RandomState,
    >,
);

impl Memo {
    /// The value remembered under `key`, if it has type `T`.
    pub fn get<T: Send + Sync + 'static>(&self, key: &str) -> Option<std::sync::Arc<T>> {
        self.0
            .get(key)
            .cloned()
            .and_then(|v| v.downcast::<T>().ok())
    }

    /// Remembers `value` under `key` and returns it.
    pub fn put<T: Send + Sync + 'static>(
        &mut self,
        key: impl Into<std::borrow::Cow<'static, str>>,
        value: T,
    ) -> std::sync::Arc<T> {
        let value = std::sync::Arc::new(value);
        self.0.insert(key.into(), value.clone());
        value
    }

    /// Forgets the value under `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Forgets everything (after a write that may have made it stale).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<'a> CheckCtx<'a> {
    pub fn new(
        conn: &'a mut AnyConnection,
        order: &'a OrderData,
        field: Option<&'static str>,
        stage: Stage,
    ) -> Self {
        Self {
            conn,
            order,
            field,
            stage,
            findings: Vec::new(),
            decisions: Vec::new(),
            facts: None,
            obligations: Vec::new(),
            authorization: None,
            memo: Memo::default(),
        }
    }

    /// The value of the field this check runs for.
    pub fn value(&self) -> Option<&str> {
        self.field.and_then(|f| self.order.text(f))
    }

    /// The parsed value of the field this check runs for. Field checks run
    /// after the field's syntax check passed, so this is `Some` for a filled
    /// field (`None` for a global check or an empty field).
    pub fn typed<T: crate::workflow::types::FieldValue>(&self) -> Option<T> {
        self.field
            .and_then(|f| self.order.typed::<T>(f).ok().flatten())
    }

    /// Reports a problem with the checked field (or the whole order for a
    /// global check). Whether it is an error or a warning is the binding's
    /// severity at the current stage, as `checks.xml` says.
    pub fn report(&mut self, message: impl Into<String>) {
        self.findings
            .push((self.field.map(str::to_owned), message.into()));
    }

    /// Reports a problem with another field than the one checked.
    pub fn report_field(&mut self, field: &str, message: impl Into<String>) {
        self.findings.push((Some(field.to_owned()), message.into()));
    }

    pub fn into_findings(self) -> Vec<(Option<String>, String)> {
        self.findings
    }
}

/// What a workflow condition sees.
pub struct CondCtx<'a> {
    pub order: &'a OrderData,
}

impl CondCtx<'_> {
    pub fn has_errors(&self) -> bool {
        !self.order.errors.is_empty()
    }

    pub fn has_warnings(&self) -> bool {
        !self.order.warnings.is_empty()
    }
}

//! Searching the history (`GET /api/v1/history`, `auftrag history search`):
//! one parsed, bounded query ([`SearchQuery`]) answered from the SQL
//! database (SQLite, PostgreSQL) or from the MongoDB copy, with the same
//! answers.
//!
//! Filters (all optional, ANDed, and ANDed with what the person may read,
//! [`super::access::access_for`]):
//!
//! - `host`, `requester`, `type`, `state`: equal to the order's.
//! - `since` / `until`: created at or after / before (RFC 3339).
//! - `field`, `old`, `new`: about what the order changed (`changed`, a map
//!   `{field: [old, new]}`). `field` alone: the order changed that field;
//!   with `old` and/or `new`: that field's old/new value matches; `old`
//!   and/or `new` without `field`: some field's values match (the same
//!   field for both). A value matches the parameter when it is a string
//!   equal to it, or a number, boolean or `null` whose JSON text
//!   (`5001`, `true`, `null`) equals it, or a list holding such a value
//!   (so `field=aliases&new=www.example.org` finds the orders that gave a
//!   device that alias). Records are not compared.
//! - `check` (with `severity=error|warning`, default both): a check of
//!   that name reported an error, or a warning — also one staff accepted
//!   later (`accepted_warnings`).
//! - `text`: a case-insensitive substring of a comment in the order's
//!   states. (SQLite folds the case of ASCII letters only.)
//!
//! Results are history documents, newest first (`sort=newest`, by id) or
//! oldest first (`sort=oldest`), `limit` (1–1000, default 50) to a page;
//! `next` is the cursor of the next page, or `null` on the last.
//!
//! On PostgreSQL the `changed` filters are JSON path queries on
//! `changes::jsonb` and the `check` filter a containment query on the
//! findings, both served by the GIN indexes of migration 0026; SQLite reads
//! them with `json_each` after the indexed filters (requester, host, type,
//! state, created_at). MongoDB: [`search_indexes`].

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::Row;

use super::access::Access;
use crate::error::{EngineError, FieldProblem};
use crate::store::history::OrderDocument;
use crate::store::writes::Arg;
use crate::store::{Backend, Store};
use crate::workflow::defs::Definitions;

/// Most documents one page holds.
pub const MAX_LIMIT: i64 = 1000;
/// Documents on a page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;

/// The query parameters `GET /api/v1/history` takes.
pub const PARAMETERS: [&str; 15] = [
    "host",
    "requester",
    "type",
    "state",
    "field",
    "old",
    "new",
    "check",
    "severity",
    "text",
    "since",
    "until",
    "sort",
    "limit",
    "cursor",
];

/// A refused query parameter, as a 400 naming it.
pub(crate) fn bad(name: &str, message: impl Into<String>) -> EngineError {
    EngineError::InvalidFields(vec![FieldProblem {
        field: name.to_owned(),
        message: format!("(a query parameter) {}", message.into()),
    }])
}

/// Refuses parameters not in `known`, with a guess at what was meant.
pub(crate) fn refuse_unknown(
    query: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), EngineError> {
    let mut names: Vec<&String> = query.keys().collect();
    names.sort();
    if let Some(unknown) = names.into_iter().find(|k| !known.contains(&k.as_str())) {
        let hint = crate::http::did_you_mean(unknown, known)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        return Err(bad(
            unknown,
            format!("is unknown; {hint}known: {}", known.join(", ")),
        ));
    }
    Ok(())
}

/// A non-empty value of `name`, checked to be printable text of bounded
/// length ([`crate::store::search_text`]).
pub(crate) fn text_param(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<String>, EngineError> {
    match query.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            crate::store::search_text(name, v)?;
            Ok(Some(v.clone()))
        }
    }
}

/// An RFC 3339 instant, brought to the stored form (UTC, milliseconds) so
/// that comparing strings compares instants.
pub(crate) fn instant_param(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<String>, EngineError> {
    let Some(v) = text_param(query, name)? else {
        return Ok(None);
    };
    let at = time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            bad(
                name,
                "must be an RFC 3339 time such as 2026-11-24T08:00:00Z",
            )
        })?;
    Ok(Some(crate::store::history::format_instant(at)))
}

/// Which findings `check` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The order of the results, by order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
}

/// A parsed, bounded `GET /api/v1/history` query.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub host: Option<String>,
    pub requester: Option<String>,
    pub order_type: Option<String>,
    pub state: Option<String>,
    /// A key of `changed` (letters, digits, `_`).
    pub field: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub check: Option<String>,
    /// `None`: errors and warnings.
    pub severity: Option<Severity>,
    pub text: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub sort: Sort,
    pub limit: i64,
    /// Only orders past this id in the direction of `sort`.
    pub after: Option<i64>,
}

/// A cursor as handed out: the sort's letter and the last id of the page
/// (`n41`, `o42`). Opaque to clients; checked to belong to the sort.
fn cursor_of(sort: Sort, id: i64) -> String {
    let letter = match sort {
        Sort::Newest => 'n',
        Sort::Oldest => 'o',
    };
    format!("{letter}{id}")
}

fn parse_cursor(sort: Sort, cursor: &str) -> Result<i64, EngineError> {
    let refused = || {
        bad(
            "cursor",
            "is not one this server handed out for this `sort`; pass `next` of the previous page unchanged",
        )
    };
    let (letter, digits) = cursor.split_at_checked(1).ok_or_else(refused)?;
    let wanted = match sort {
        Sort::Newest => "n",
        Sort::Oldest => "o",
    };
    if letter != wanted {
        return Err(refused());
    }
    crate::http::parse_id(digits).ok_or_else(refused)
}

/// A `field` name: what `changed` keys are (letters, digits, `_`).
fn field_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Every state name of the definitions' workflows.
fn state_names(defs: &Definitions) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = defs
        .workflows
        .iter()
        .flat_map(|w| w.states.iter().map(|s| s.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

impl SearchQuery {
    /// Parses the query parameters; a bad value is refused naming its
    /// parameter.
    pub fn parse(
        defs: &'static Definitions,
        query: &HashMap<String, String>,
    ) -> Result<Self, EngineError> {
        refuse_unknown(query, &PARAMETERS)?;
        let order_type = text_param(query, "type")?;
        if let Some(t) = &order_type
            && defs.order_type(t).is_none()
        {
            let names: Vec<&str> = defs.order_types.iter().map(|t| t.name).collect();
            let hint = crate::http::did_you_mean(t, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(bad(
                "type",
                format!("names no order type; {hint}known: {}", names.join(", ")),
            ));
        }
        let state = text_param(query, "state")?;
        if let Some(s) = &state {
            let names = state_names(defs);
            if !names.contains(&s.as_str()) {
                let hint = crate::http::did_you_mean(s, &names)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                return Err(bad(
                    "state",
                    format!("names no state; {hint}known: {}", names.join(", ")),
                ));
            }
        }
        let field = text_param(query, "field")?;
        if let Some(f) = &field
            && !field_name(f)
        {
            return Err(bad(
                "field",
                "must be a field name (letters, digits and `_`, at most 64), such as ipv4",
            ));
        }
        let severity = match text_param(query, "severity")?.as_deref() {
            None => None,
            Some("error") => Some(Severity::Error),
            Some("warning") => Some(Severity::Warning),
            Some(_) => return Err(bad("severity", "must be `error` or `warning`")),
        };
        let check = text_param(query, "check")?;
        if severity.is_some() && check.is_none() {
            return Err(bad(
                "severity",
                "narrows `check`; give `check` (a check's name) too",
            ));
        }
        let sort = match text_param(query, "sort")?.as_deref() {
            None | Some("newest") => Sort::Newest,
            Some("oldest") => Sort::Oldest,
            Some(_) => return Err(bad("sort", "must be `newest` or `oldest`")),
        };
        let limit = crate::store::parse_limit(text_param(query, "limit")?.as_deref())
            .map_err(|m| bad("limit", m))?;
        let after = text_param(query, "cursor")?
            .map(|c| parse_cursor(sort, &c))
            .transpose()?;
        let since = instant_param(query, "since")?;
        let until = instant_param(query, "until")?;
        Ok(SearchQuery {
            host: text_param(query, "host")?,
            requester: text_param(query, "requester")?,
            order_type,
            state,
            field,
            old: text_param(query, "old")?,
            new: text_param(query, "new")?,
            check,
            severity,
            text: text_param(query, "text")?,
            since,
            until,
            sort,
            limit,
            after,
        })
    }
}

/// A page of results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// History documents, in the order asked for.
    pub orders: Vec<OrderDocument>,
    /// Pass as `cursor` (with the same filters and `sort`) for the next
    /// page; `null` on the last page.
    pub next: Option<String>,
}

/// The first `limit` of `found` (read one more than `limit`) and the
/// cursor of the next page, if there is one.
fn page(sort: Sort, limit: i64, mut found: Vec<Found>) -> FoundPage {
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    let next = if more {
        found.last().map(|o| cursor_of(sort, o.id()))
    } else {
        None
    };
    FoundPage {
        orders: found,
        next,
    }
}

/// Searches the history of what `person` may read (`None`: everything,
/// for operators on the server): in MongoDB when the engine has a history
/// store, else in the SQL database.
pub async fn search(
    engine: &crate::Engine,
    person: Option<&str>,
    query: &SearchQuery,
) -> Result<SearchPage, EngineError> {
    search_found(engine, person, query).await?.decode()
}

/// [`search`] as the HTTP API answers it: documents read from the SQL
/// database go out as stored ([`StoredDocument`]), without being decoded
/// and encoded again.
pub async fn search_json(
    engine: &crate::Engine,
    person: Option<&str>,
    query: &SearchQuery,
) -> Result<FoundPage, EngineError> {
    search_found(engine, person, query).await
}

async fn search_found(
    engine: &crate::Engine,
    person: Option<&str>,
    query: &SearchQuery,
) -> Result<FoundPage, EngineError> {
    let access = access_of(engine, person).await?;
    // a policy the query cannot carry completely: search its candidates,
    // then decide those not surely readable one by one (a page may then
    // hold fewer documents than `limit`; `next` goes on from its end)
    let (access, verify) = match access {
        Access::Verify { sure, candidates } => (Access::Only(candidates), Some(sure)),
        other => (other, None),
    };
    let mut page = match &engine.history {
        Some(history) => {
            let page = search_mongo(history, &access, query).await?;
            FoundPage {
                orders: page.orders.into_iter().map(Found::from).collect(),
                next: page.next,
            }
        }
        None => search_sql_stored(&engine.store, engine.defs, &access, query).await?,
    };
    if let (Some(sure), Some(person)) = (verify, person) {
        let mut conn = engine.store.acquire().await?;
        let mut readable = Vec::with_capacity(page.orders.len());
        for document in std::mem::take(&mut page.orders) {
            let order = crate::store::load_order(&mut conn, engine.defs, document.id()).await?;
            if sure.holds(&order.data)
                || crate::pdp::may_read(&mut conn, engine.defs, &order.data, person).await?
            {
                readable.push(document);
            }
        }
        page.orders = readable;
    }
    Ok(page)
}

/// A page of results as [`search_json`] gives it: the JSON of a
/// [`SearchPage`].
#[derive(Debug, Serialize)]
pub struct FoundPage {
    pub orders: Vec<Found>,
    pub next: Option<String>,
}

impl FoundPage {
    /// The page with its documents decoded.
    pub fn decode(self) -> Result<SearchPage, EngineError> {
        Ok(SearchPage {
            orders: self
                .orders
                .into_iter()
                .map(Found::decode)
                .collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

/// A history document found: as the SQL database stores it, or decoded
/// (from MongoDB). Both serialize to the same JSON.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Found {
    Stored(Box<StoredDocument>),
    Decoded(Box<OrderDocument>),
}

impl From<OrderDocument> for Found {
    fn from(document: OrderDocument) -> Self {
        Self::Decoded(Box::new(document))
    }
}

impl Found {
    pub fn id(&self) -> i64 {
        match self {
            Self::Stored(d) => d.id,
            Self::Decoded(d) => d.id,
        }
    }

    /// The document decoded.
    pub fn decode(self) -> Result<OrderDocument, EngineError> {
        match self {
            Self::Stored(d) => (*d).decode(),
            Self::Decoded(d) => Ok(*d),
        }
    }
}

/// The history document of an order as the SQL database stores it: the
/// JSON columns (fields, changes, states, findings, facts) are taken as
/// their text, checked to be JSON but not decoded, and written out as
/// they are. Serializes as [`OrderDocument`] does (a test compares them
/// over every order of the test data sets).
#[derive(Debug, Serialize)]
pub struct StoredDocument {
    id: i64,
    host_id: Option<String>,
    requester: String,
    #[serde(rename = "type")]
    order_type: String,
    state: String,
    closed: bool,
    created_at: String,
    updated_at: String,
    fields: Box<RawValue>,
    changed: Box<RawValue>,
    states: Box<RawValue>,
    errors: Box<RawValue>,
    warnings: Box<RawValue>,
    accepted_warnings: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<Box<RawValue>>,
}

/// A stored JSON column's text.
fn raw(row: &sqlx::any::AnyRow, column: &str) -> Result<Box<RawValue>, EngineError> {
    RawValue::from_string(row.try_get::<String, _>(column)?)
        .map_err(|e| EngineError::Internal(format!("stored column `{column}` is not valid: {e}")))
}

fn decode_raw<T: serde::de::DeserializeOwned>(
    column: &str,
    value: &RawValue,
) -> Result<T, EngineError> {
    serde_json::from_str(value.get())
        .map_err(|e| EngineError::Internal(format!("stored column `{column}` is not valid: {e}")))
}

impl StoredDocument {
    /// The document of a row of [`crate::store::ORDER_COLUMNS`] and `host`.
    pub(crate) fn from_row(
        defs: &'static Definitions,
        row: &sqlx::any::AnyRow,
    ) -> Result<Self, EngineError> {
        let order_type: String = row.try_get("order_type")?;
        if defs.order_type(&order_type).is_none() {
            return Err(EngineError::Internal(format!(
                "stored order has order type `{order_type}`, which the definitions no longer have"
            )));
        }
        let fields = raw(row, "fields")?;
        Ok(Self {
            id: row.try_get("id")?,
            // the key field's value (`OrderData::key`), written with every
            // write of the fields; the `host` filter reads the same column
            host_id: row.try_get("host")?,
            requester: row.try_get("requester")?,
            order_type,
            state: row.try_get("state")?,
            closed: row.try_get::<i64, _>("closed")? != 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            fields,
            changed: raw(row, "changes")?,
            states: raw(row, "states")?,
            errors: raw(row, "errors")?,
            warnings: raw(row, "warnings")?,
            accepted_warnings: raw(row, "accepted")?,
            facts: row
                .try_get::<Option<String>, _>("facts")?
                .map(|f| {
                    RawValue::from_string(f).map_err(|e| {
                        EngineError::Internal(format!("stored column `facts` is not valid: {e}"))
                    })
                })
                .transpose()?,
        })
    }

    /// The document decoded.
    pub fn decode(self) -> Result<OrderDocument, EngineError> {
        Ok(OrderDocument {
            id: self.id,
            host_id: self.host_id,
            requester: self.requester,
            order_type: self.order_type,
            state: self.state,
            closed: self.closed,
            created_at: self.created_at,
            updated_at: self.updated_at,
            fields: decode_raw("fields", &self.fields)?,
            changed: decode_raw("changes", &self.changed)?,
            states: decode_raw("states", &self.states)?,
            errors: decode_raw("errors", &self.errors)?,
            warnings: decode_raw("warnings", &self.warnings)?,
            accepted_warnings: decode_raw("accepted", &self.accepted_warnings)?,
            decisions: Vec::new(),
            facts: self
                .facts
                .as_deref()
                .map(|f| decode_raw("facts", f))
                .transpose()?
                .flatten(),
            notifications: Vec::new(),
            claims: Vec::new(),
            links: Default::default(),
        })
    }
}

/// What `person` may read (`None`: everything).
pub(crate) async fn access_of(
    engine: &crate::Engine,
    person: Option<&str>,
) -> Result<Access, EngineError> {
    match person {
        None => Ok(Access::Everything),
        Some(person) => engine.access.get(&engine.store, engine.defs, person).await,
    }
}

// ------------------------------------------------------------------- SQL

/// SQL text with its `$n` parameters.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) conds: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Sql {
    /// `$n` for a new parameter.
    pub(crate) fn arg(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// ANDs the access condition.
    pub(crate) fn access(&mut self, access: &Access, backend: Backend) {
        let cond = access.sql(backend, self.args.len() + 1);
        self.args.extend(cond.args);
        self.conds.push(format!("({})", cond.sql));
    }

    pub(crate) fn where_clause(&self) -> String {
        if self.conds.is_empty() {
            "1 = 1".to_owned()
        } else {
            self.conds.join(" AND ")
        }
    }

    pub(crate) fn query<'q>(
        &self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut query = sqlx::query(sql);
        for arg in &self.args {
            query = arg.clone().bind(query);
        }
        query
    }
}

/// `text` as a LIKE pattern: `%`, `_` and the escape `\` taken literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A string as a JSON (and SQL/JSON path) string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The JSON scalars other than a string that a parameter's text can name
/// (`5001`, `true`, `false`, `null`): their JSON text is the parameter.
fn scalar_of(text: &str) -> Option<serde_json::Value> {
    match text {
        "true" => Some(serde_json::Value::Bool(true)),
        "false" => Some(serde_json::Value::Bool(false)),
        "null" => Some(serde_json::Value::Null),
        _ => {
            let n: i64 = text.parse().ok()?;
            // one spelling: `+5` and `05` are not the JSON text of 5
            (n.to_string() == text).then(|| serde_json::Value::from(n))
        }
    }
}

/// PostgreSQL: a SQL/JSON path predicate (strict mode) that `@[index]`
/// (the old or new value of a `changed` entry) matches `text`: equals it,
/// or is a list with an item equal to it. (In strict mode a comparison of
/// a list or record with a scalar, or `[*]` of a scalar, is unknown: false.)
fn pg_value_matches(index: u8, text: &str) -> String {
    let mut values = vec![json_string(text)];
    if let Some(scalar) = scalar_of(text) {
        values.push(scalar.to_string());
    }
    let mut arms = Vec::new();
    for at in [format!("@[{index}]"), format!("@[{index}][*]")] {
        for value in &values {
            arms.push(format!("{at} == {value}"));
        }
    }
    arms.join(" || ")
}

/// SQLite: the SQL condition that the `changed` entry `entry` (a
/// `json_each` row over `changes`) has at index `index` a value matching
/// the parameter `p` (see the module documentation).
fn sqlite_value_matches(entry: &str, index: u8, p: &str) -> String {
    let path = format!("'$[{index}]'");
    format!(
        "(json_type({entry}.value, {path}) <> 'object' AND EXISTS (SELECT 1 FROM json_each({entry}.value, {path}) v \
         WHERE (v.type = 'text' AND v.value = {p}) \
            OR (v.type IN ('integer', 'true', 'false', 'null') \
                AND CASE v.type WHEN 'integer' THEN CAST(v.value AS TEXT) ELSE v.type END = {p})))"
    )
}

fn changed_conds(sql: &mut Sql, backend: Backend, q: &SearchQuery) {
    if q.field.is_none() && q.old.is_none() && q.new.is_none() {
        return;
    }
    match backend {
        Backend::Postgres => {
            // one SQL/JSON path query, served by the GIN index on
            // `changes::jsonb` (`@?`)
            let mut preds = Vec::new();
            if let Some(old) = &q.old {
                preds.push(pg_value_matches(0, old));
            }
            if let Some(new) = &q.new {
                preds.push(pg_value_matches(1, new));
            }
            let key = match &q.field {
                // field names are letters, digits and `_` ([`field_name`])
                Some(f) => format!("strict $.{}", json_string(f)),
                None => "strict $.*".to_owned(),
            };
            let path = if preds.is_empty() {
                key
            } else {
                let preds: Vec<String> = preds.into_iter().map(|p| format!("({p})")).collect();
                format!("{key} ? ({})", preds.join(" && "))
            };
            let p = sql.arg(path);
            sql.conds
                .push(format!("(changes::jsonb) @? CAST({p} AS jsonpath)"));
        }
        Backend::Sqlite => {
            let mut conds = Vec::new();
            if let Some(f) = &q.field {
                let p = sql.arg(f.clone());
                conds.push(format!("c.key = {p}"));
            }
            if let Some(old) = &q.old {
                let p = sql.arg(old.clone());
                conds.push(sqlite_value_matches("c", 0, &p));
            }
            if let Some(new) = &q.new {
                let p = sql.arg(new.clone());
                conds.push(sqlite_value_matches("c", 1, &p));
            }
            sql.conds.push(format!(
                "EXISTS (SELECT 1 FROM json_each(changes) c WHERE {})",
                conds.join(" AND ")
            ));
        }
    }
}

fn check_conds(sql: &mut Sql, backend: Backend, check: &str, severity: Option<Severity>) {
    match backend {
        Backend::Postgres => {
            // containment on all findings (GIN index of migration 0026),
            // then on the severity's own lists
            let p = sql.arg(serde_json::json!([{ "check": check }]).to_string());
            let all = format!(
                "((errors::jsonb || warnings::jsonb || accepted::jsonb) @> CAST({p} AS jsonb))"
            );
            match severity {
                None => sql.conds.push(all),
                Some(Severity::Error) => sql
                    .conds
                    .push(format!("{all} AND errors::jsonb @> CAST({p} AS jsonb)")),
                Some(Severity::Warning) => sql.conds.push(format!(
                    "{all} AND (warnings::jsonb || accepted::jsonb) @> CAST({p} AS jsonb)"
                )),
            }
        }
        Backend::Sqlite => {
            let p = sql.arg(check.to_owned());
            let lists: &[&str] = match severity {
                None => &["errors", "warnings", "accepted"],
                Some(Severity::Error) => &["errors"],
                Some(Severity::Warning) => &["warnings", "accepted"],
            };
            let arms: Vec<String> = lists
                .iter()
                .map(|list| {
                    format!(
                        "EXISTS (SELECT 1 FROM json_each({list}) f WHERE json_extract(f.value, '$.check') = {p})"
                    )
                })
                .collect();
            sql.conds.push(format!("({})", arms.join(" OR ")));
        }
    }
}

/// The conditions of `q` other than the cursor, with `access`.
fn sql_conds(backend: Backend, access: &Access, q: &SearchQuery) -> Sql {
    let mut sql = Sql::default();
    add_conds(&mut sql, backend, access, q);
    sql
}

/// The conditions of `q` with `access`, as a `WHERE` clause whose
/// parameters follow those `sql` has already.
pub(crate) fn sql_conds_for_stats(
    sql: &mut Sql,
    backend: Backend,
    access: &Access,
    q: &SearchQuery,
) -> String {
    add_conds(sql, backend, access, q);
    let clause = sql.where_clause();
    sql.conds.clear();
    clause
}

fn add_conds(sql: &mut Sql, backend: Backend, access: &Access, q: &SearchQuery) {
    for (column, value) in [
        ("host", &q.host),
        ("requester", &q.requester),
        ("order_type", &q.order_type),
        ("state", &q.state),
    ] {
        if let Some(v) = value {
            let p = sql.arg(v.clone());
            sql.conds.push(format!("{column} = {p}"));
        }
    }
    if let Some(v) = &q.since {
        let p = sql.arg(v.clone());
        sql.conds.push(format!("created_at >= {p}"));
    }
    if let Some(v) = &q.until {
        let p = sql.arg(v.clone());
        sql.conds.push(format!("created_at < {p}"));
    }
    changed_conds(sql, backend, q);
    if let Some(check) = &q.check {
        check_conds(sql, backend, check, q.severity);
    }
    if let Some(text) = &q.text {
        let p = sql.arg(like_pattern(text));
        sql.conds.push(match backend {
            Backend::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each(states) s \
                 WHERE lower(json_extract(s.value, '$.comment')) LIKE lower({p}) ESCAPE '\\')"
            ),
            Backend::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(states::jsonb) s \
                 WHERE lower(s ->> 'comment') LIKE lower({p}) ESCAPE '\\')"
            ),
        });
    }
    sql.access(access, backend);
}

/// Searches the SQL database.
pub async fn search_sql(
    store: &Store,
    defs: &'static Definitions,
    access: &Access,
    q: &SearchQuery,
) -> Result<SearchPage, EngineError> {
    search_sql_stored(store, defs, access, q).await?.decode()
}

/// Searches the SQL database; the documents as stored.
async fn search_sql_stored(
    store: &Store,
    defs: &'static Definitions,
    access: &Access,
    q: &SearchQuery,
) -> Result<FoundPage, EngineError> {
    let mut sql = sql_conds(store.backend, access, q);
    let (compare, order) = match q.sort {
        Sort::Newest => ("<", "DESC"),
        Sort::Oldest => (">", "ASC"),
    };
    if let Some(after) = q.after {
        let p = sql.arg(after);
        sql.conds.push(format!("id {compare} {p}"));
    }
    let text = format!(
        "SELECT {}, host FROM auftrag_orders WHERE {} ORDER BY id {order} LIMIT {}",
        crate::store::ORDER_COLUMNS,
        sql.where_clause(),
        q.limit + 1
    );
    let rows = sql.query(&text).fetch_all(&store.pool).await?;
    let orders = rows
        .iter()
        .map(|r| StoredDocument::from_row(defs, r).map(|d| Found::Stored(Box::new(d))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(q.sort, q.limit, orders))
}

// --------------------------------------------------------------- MongoDB

/// A MongoDB error as the engine reports it.
pub(crate) fn mongo_error(e: mongodb::error::Error) -> EngineError {
    EngineError::Internal(format!("history store (MongoDB): {e}"))
}

/// The values a parameter matches in `changed` (see the module
/// documentation): the string, and the scalar its text names.
fn mongo_candidates(text: &str) -> Vec<Bson> {
    let mut values = vec![Bson::String(text.to_owned())];
    match scalar_of(text) {
        Some(serde_json::Value::Bool(b)) => values.push(Bson::Boolean(b)),
        Some(serde_json::Value::Null) => values.push(Bson::Null),
        Some(serde_json::Value::Number(n)) => {
            if let Some(n) = n.as_i64() {
                values.push(Bson::Int64(n));
            }
        }
        _ => {}
    }
    values
}

/// `path` (a value of `changed`) matches one of `values`, or is a list
/// holding one.
fn mongo_value_filter(path: &str, values: Vec<Bson>) -> Document {
    doc! { "$or": [
        { path: { "$in": values.clone() } },
        { path: { "$elemMatch": { "$in": values } } },
    ] }
}

/// The aggregation expression: `value` matches one of `values`, or is a
/// list holding one.
fn mongo_value_expr(value: Bson, values: Vec<Bson>) -> Bson {
    Bson::Document(doc! { "$or": [
        { "$in": [value.clone(), values.clone()] },
        { "$and": [
            { "$isArray": [value.clone()] },
            { "$gt": [{ "$size": { "$setIntersection": [value, values] } }, 0] },
        ] },
    ] })
}

fn mongo_changed(q: &SearchQuery) -> Option<Document> {
    if q.field.is_none() && q.old.is_none() && q.new.is_none() {
        return None;
    }
    if let Some(field) = &q.field {
        // field names are letters, digits and `_` ([`field_name`])
        let mut parts = vec![doc! { format!("changed.{field}"): { "$exists": true } }];
        if let Some(old) = &q.old {
            parts.push(mongo_value_filter(
                &format!("changed.{field}.0"),
                mongo_candidates(old),
            ));
        }
        if let Some(new) = &q.new {
            parts.push(mongo_value_filter(
                &format!("changed.{field}.1"),
                mongo_candidates(new),
            ));
        }
        return Some(doc! { "$and": parts });
    }
    let mut arms = Vec::new();
    if let Some(old) = &q.old {
        arms.push(mongo_value_expr(
            Bson::Document(doc! { "$arrayElemAt": ["$$c.v", 0] }),
            mongo_candidates(old),
        ));
    }
    if let Some(new) = &q.new {
        arms.push(mongo_value_expr(
            Bson::Document(doc! { "$arrayElemAt": ["$$c.v", 1] }),
            mongo_candidates(new),
        ));
    }
    Some(doc! { "$expr": { "$anyElementTrue": [{ "$map": {
        "input": { "$objectToArray": { "$ifNull": ["$changed", {}] } },
        "as": "c",
        "in": { "$and": arms },
    } }] } })
}

/// `text` as a regular expression that matches it literally.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The filter of `q` (without the cursor), with `access`.
pub(crate) fn mongo_filter(access: &Access, q: &SearchQuery) -> Document {
    let mut parts: Vec<Document> = Vec::new();
    for (path, value) in [
        ("host_id", &q.host),
        ("requester", &q.requester),
        ("type", &q.order_type),
        ("state", &q.state),
    ] {
        if let Some(v) = value {
            parts.push(doc! { path: v.clone() });
        }
    }
    if let Some(v) = &q.since {
        parts.push(doc! { "created_at": { "$gte": v.clone() } });
    }
    if let Some(v) = &q.until {
        parts.push(doc! { "created_at": { "$lt": v.clone() } });
    }
    if let Some(changed) = mongo_changed(q) {
        parts.push(changed);
    }
    if let Some(check) = &q.check {
        let lists: &[&str] = match q.severity {
            None => &["errors", "warnings", "accepted_warnings"],
            Some(Severity::Error) => &["errors"],
            Some(Severity::Warning) => &["warnings", "accepted_warnings"],
        };
        let arms: Vec<Document> = lists
            .iter()
            .map(|l| doc! { format!("{l}.check"): check.clone() })
            .collect();
        parts.push(doc! { "$or": arms });
    }
    if let Some(text) = &q.text {
        parts.push(doc! { "states.comment": { "$regex": regex_literal(text), "$options": "i" } });
    }
    let access = access.mongo();
    if !access.is_empty() {
        parts.push(access);
    }
    conjunction(parts)
}

/// The conditions `parts` as one filter: a single document where their
/// paths differ (operators on the same path merged: `{created_at: {$gte,
/// $lt}}`), `$and` only for the rest. The same meaning as `{$and: parts}`,
/// but the form a query planner matches against its indexes (SecantusDB
/// used no index for a lone condition inside `$and`: 1 s instead of 1 ms
/// on a million documents).
fn conjunction(parts: Vec<Document>) -> Document {
    let mut merged = Document::new();
    let mut rest: Vec<Document> = Vec::new();
    for part in parts {
        for (key, value) in part {
            let operators = |v: &Bson| match v {
                Bson::Document(d) if d.keys().all(|k| k.starts_with('$')) => Some(d.clone()),
                _ => None,
            };
            match merged.get(&key) {
                None if !key.starts_with('$') => {
                    merged.insert(key, value);
                }
                Some(old) => match (operators(old), operators(&value)) {
                    (Some(mut a), Some(b)) if b.keys().all(|k| !a.contains_key(k)) => {
                        a.extend(b);
                        merged.insert(key, a);
                    }
                    _ => rest.push(doc! { key: value }),
                },
                None => rest.push(doc! { key: value }),
            }
        }
    }
    if !rest.is_empty() {
        merged.insert("$and", rest);
    }
    merged
}

/// Searches the MongoDB history store.
pub async fn search_mongo(
    history: &super::mongo::HistoryDb,
    access: &Access,
    q: &SearchQuery,
) -> Result<SearchPage, EngineError> {
    use futures::TryStreamExt;
    let mut filter = mongo_filter(access, q);
    let (compare, order) = match q.sort {
        Sort::Newest => ("$lt", -1),
        Sort::Oldest => ("$gt", 1),
    };
    if let Some(after) = q.after {
        filter = conjunction(vec![filter, doc! { "_id": { compare: after } }]);
    }
    let documents: Vec<Document> = history
        .orders
        .find(filter)
        .sort(doc! { "_id": order })
        .limit(q.limit + 1)
        .await
        .map_err(mongo_error)?
        .try_collect()
        .await
        .map_err(mongo_error)?;
    let orders = documents
        .into_iter()
        .map(|d| super::document::from_mongo(d).map(Found::from))
        .collect::<Result<Vec<_>, _>>()?;
    page(q.sort, q.limit, orders).decode()
}

/// The indexes the searches and statistics need in the MongoDB collection
/// (created with the collection): requester, host, type, state and
/// creation time each with `_id` (pages sort by it), the checks of the
/// findings, and a wildcard index on `changed` (its keys are field names).
pub fn search_indexes() -> Vec<mongodb::IndexModel> {
    let index = |name: &str, keys: Document| {
        mongodb::IndexModel::builder()
            .keys(keys)
            .options(
                mongodb::options::IndexOptions::builder()
                    .name(format!("search_{name}"))
                    .build(),
            )
            .build()
    };
    vec![
        // requester, host and state: `super::mongo` (the thesis's indexes)
        index("type", doc! { "type": 1, "_id": -1 }),
        index("created", doc! { "created_at": 1, "_id": -1 }),
        index("errors", doc! { "errors.check": 1 }),
        index("warnings", doc! { "warnings.check": 1 }),
        index("accepted", doc! { "accepted_warnings.check": 1 }),
        index("changed", doc! { "changed.$**": 1 }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_belong_to_their_sort() {
        assert_eq!(
            parse_cursor(Sort::Newest, &cursor_of(Sort::Newest, 41)).unwrap(),
            41
        );
        assert_eq!(
            parse_cursor(Sort::Oldest, &cursor_of(Sort::Oldest, 42)).unwrap(),
            42
        );
        for bad in ["o41", "n", "", "n-1", "n01", "41", "né", "n1 "] {
            assert!(parse_cursor(Sort::Newest, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_and_regex_take_text_literally() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(regex_literal("a.b*(c)"), "a\\.b\\*\\(c\\)");
    }

    #[test]
    fn scalars_have_one_spelling() {
        assert_eq!(scalar_of("5001"), Some(serde_json::json!(5001)));
        assert_eq!(scalar_of("null"), Some(serde_json::Value::Null));
        assert_eq!(scalar_of("+5"), None);
        assert_eq!(scalar_of("05"), None);
        assert_eq!(scalar_of("zam"), None);
    }
}

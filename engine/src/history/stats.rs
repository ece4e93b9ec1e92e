//! Statistics on the history (`GET /api/v1/stats`, `auftrag history
//! stats`; thesis §6): per group of orders (`by=type|state|day|month` or any
//! attribute recorded with the orders, such as JuNet's `org`) and in
//! total, over the orders created in `[since, until)` that the person may
//! read:
//!
//! - `orders`, and how many are in each state (`states`);
//! - `closed` (in a final state), `automated` (closed without ever having
//!   waited for a person: [`super::Derived::waited`]) and
//!   `automation_rate` = automated / closed (`null` without closed orders);
//! - `duration_ms`: INSERTED → final state over the closed orders: count,
//!   p50, p90, max;
//! - `waited` (orders that waited for a person), `waiting_ms_total` and
//!   `waiting_ms` (count, p50, p90, max over the orders that waited; a stay
//!   that has not ended is not counted);
//! - `checks`: per check, the number of orders it reported an error about
//!   and of orders it warned about (warnings staff accepted included).
//!
//! Percentiles are nearest-rank: the value at rank ⌈p·n⌉ in ascending
//! order (PostgreSQL `percentile_disc`, SQLite window functions, MongoDB
//! `$percentile`). All read the values derived when an order is written
//! (`closed_at`, `duration_ms`, `waiting_ms`, `waited`), not the histories.

use std::collections::{BTreeMap, HashMap};

use mongodb::bson::{Bson, Document, doc};
use serde::Serialize;
use sqlx::Row;

use super::access::Access;
use super::search::{
    SearchQuery, Sql, bad, instant_param, mongo_error, refuse_unknown, text_param,
};
use crate::error::EngineError;
use crate::store::{Backend, Store};
use crate::workflow::defs::Definitions;

/// The query parameters `GET /api/v1/stats` takes.
pub const PARAMETERS: [&str; 3] = ["since", "until", "by"];

/// How orders are grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    Type,
    State,
    /// The day of `created_at` (`YYYY-MM-DD`, UTC).
    Day,
    /// The month of `created_at` (`YYYY-MM`).
    Month,
    /// A policy attribute kept with the orders (`record="yes"`), by its
    /// full name (`resource.org`).
    Fact(&'static str),
}

/// A parsed `GET /api/v1/stats` query.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub by: By,
    /// `by` as given (`type`, `org`, …).
    pub by_name: String,
    /// Only orders of this type. Not a parameter of the API: set by Rust
    /// callers (the statistics page draws orders per day for each type).
    pub order_type: Option<String>,
}

/// The attributes kept with orders, by full name.
fn recorded(defs: &Definitions) -> Vec<&'static str> {
    defs.authorization
        .map(|a| {
            a.attributes
                .iter()
                .filter(|a| a.recorded)
                .map(|a| a.name)
                .collect()
        })
        .unwrap_or_default()
}

impl StatsQuery {
    pub fn parse(
        defs: &'static Definitions,
        query: &HashMap<String, String>,
    ) -> Result<Self, EngineError> {
        refuse_unknown(query, &PARAMETERS)?;
        let by_name = text_param(query, "by")?.unwrap_or_else(|| "type".to_owned());
        let facts = recorded(defs);
        let by = match by_name.as_str() {
            "type" => By::Type,
            "state" => By::State,
            "day" => By::Day,
            "month" => By::Month,
            other => {
                // `org` for `resource.org`: the name without its category
                let fact = facts.iter().find(|f| {
                    **f == other || f.split_once('.').is_some_and(|(_, name)| name == other)
                });
                match fact {
                    Some(f) => By::Fact(f),
                    None => {
                        let mut known = vec!["type", "state", "day", "month"];
                        known.extend(
                            facts
                                .iter()
                                .map(|f| f.split_once('.').map_or(*f, |(_, n)| n)),
                        );
                        let hint = crate::http::did_you_mean(other, &known)
                            .map(|s| format!("did you mean `{s}`? "))
                            .unwrap_or_default();
                        return Err(bad(
                            "by",
                            format!(
                                "names no grouping; {hint}known: {} (the last are attributes recorded with each order)",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        Ok(StatsQuery {
            since: instant_param(query, "since")?,
            until: instant_param(query, "until")?,
            by,
            by_name,
            order_type: None,
        })
    }

    /// The orders counted, as a search.
    fn orders(&self) -> SearchQuery {
        SearchQuery {
            since: self.since.clone(),
            until: self.until.clone(),
            order_type: self.order_type.clone(),
            ..SearchQuery::default()
        }
    }
}

/// Count and nearest-rank percentiles of a number of milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Spread {
    pub count: i64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub max: Option<i64>,
}

/// How often a check reported on the orders of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckCount {
    pub check: String,
    /// Orders it reported an error about.
    pub errors: i64,
    /// Orders it warned about (also when staff accepted the warning).
    pub warnings: i64,
}

/// The numbers of one group of orders (or of all: `total`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    /// The group's value of `by` (`null`: orders without one, such as an
    /// order about no device for `org`; always `null` for `total`).
    pub key: Option<String>,
    pub orders: i64,
    /// Orders per current state.
    pub states: BTreeMap<String, i64>,
    /// Orders in a final state.
    pub closed: i64,
    /// Closed orders that never waited for a person.
    pub automated: i64,
    /// `automated / closed`; `null` without closed orders.
    pub automation_rate: Option<f64>,
    /// INSERTED → final state, over the closed orders.
    pub duration_ms: Spread,
    /// Orders that waited for a person.
    pub waited: i64,
    /// Time spent waiting for a person, all orders together.
    pub waiting_ms_total: i64,
    /// Time spent waiting, over the orders that waited.
    pub waiting_ms: Spread,
    /// Per check (by name), the orders it reported errors or warnings about.
    pub checks: Vec<CheckCount>,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// The grouping (`type`, `state`, `day`, `month`, or a recorded
    /// attribute).
    pub by: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub total: Group,
    /// One per value of `by`, in the order of their keys (`null` first).
    pub groups: Vec<Group>,
}

/// What the stores answer, before it is put together.
#[derive(Debug, Default)]
struct Rows {
    /// (key, state, orders, closed, automated, waited, waiting_ms)
    counts: Vec<(Option<String>, String, [i64; 5])>,
    durations: Vec<(Option<String>, Spread)>,
    duration_total: Spread,
    waits: Vec<(Option<String>, Spread)>,
    wait_total: Spread,
    /// (key, check, is error, orders)
    checks: Vec<(Option<String>, String, bool, i64)>,
}

fn assemble(q: &StatsQuery, rows: Rows) -> Stats {
    let mut groups: BTreeMap<Option<String>, Group> = BTreeMap::new();
    let mut total = Group::default();
    for (key, state, [n, closed, automated, waited, waiting]) in rows.counts {
        for g in [
            groups.entry(key.clone()).or_insert_with(|| Group {
                key: key.clone(),
                ..Group::default()
            }),
            &mut total,
        ] {
            g.orders += n;
            *g.states.entry(state.clone()).or_default() += n;
            g.closed += closed;
            g.automated += automated;
            g.waited += waited;
            g.waiting_ms_total += waiting;
        }
    }
    for (key, spread) in rows.durations {
        groups.entry(key).or_default().duration_ms = spread;
    }
    for (key, spread) in rows.waits {
        groups.entry(key).or_default().waiting_ms = spread;
    }
    total.duration_ms = rows.duration_total;
    total.waiting_ms = rows.wait_total;
    let mut total_checks: BTreeMap<String, CheckCount> = BTreeMap::new();
    let mut group_checks: BTreeMap<Option<String>, BTreeMap<String, CheckCount>> = BTreeMap::new();
    for (key, check, error, n) in rows.checks {
        for map in [group_checks.entry(key).or_default(), &mut total_checks] {
            let c = map.entry(check.clone()).or_insert_with(|| CheckCount {
                check: check.clone(),
                errors: 0,
                warnings: 0,
            });
            if error {
                c.errors += n;
            } else {
                c.warnings += n;
            }
        }
    }
    for (key, checks) in group_checks {
        groups.entry(key).or_default().checks = checks.into_values().collect();
    }
    total.checks = total_checks.into_values().collect();
    let rate = |g: &mut Group| {
        g.automation_rate = (g.closed > 0).then(|| g.automated as f64 / g.closed as f64);
    };
    rate(&mut total);
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.iter_mut().for_each(rate);
    Stats {
        by: q.by_name.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
        total,
        groups,
    }
}

/// Statistics of what `person` may read (`None`: everything): from
/// MongoDB when the engine has a history store, else from SQL.
pub async fn stats(
    engine: &crate::Engine,
    person: Option<&str>,
    query: &StatsQuery,
) -> Result<Stats, EngineError> {
    let access = match super::search::access_of(engine, person).await? {
        // counting cannot ask the PDP order by order: a person whose read
        // policy the query cannot carry completely is counted the orders
        // they surely may read
        Access::Verify { sure, .. } => Access::Only(sure),
        other => other,
    };
    match &engine.history {
        Some(history) => stats_mongo(history, &access, query).await,
        None => stats_sql(&engine.store, &access, query).await,
    }
}

// ------------------------------------------------------------------- SQL

/// The group key as SQL over `auftrag_orders` (text or NULL).
fn sql_key(sql: &mut Sql, backend: Backend, by: &By) -> String {
    match by {
        By::Type => "order_type".to_owned(),
        By::State => "state".to_owned(),
        By::Day => "substr(created_at, 1, 10)".to_owned(),
        By::Month => "substr(created_at, 1, 7)".to_owned(),
        By::Fact(name) => match backend {
            Backend::Sqlite => {
                let p = sql.arg(format!("$.\"{name}\""));
                format!("CAST(json_extract(facts, {p}) AS TEXT)")
            }
            Backend::Postgres => {
                let p = sql.arg((*name).to_owned());
                format!("((facts::jsonb) ->> CAST({p} AS TEXT))")
            }
        },
    }
}

/// `Some(text)` of a key column.
fn key_of(row: &sqlx::any::AnyRow) -> Result<Option<String>, EngineError> {
    Ok(row.try_get::<Option<String>, _>(0)?)
}

/// The spread of `column` over the orders meeting `only`, per group and
/// over all of them, in one statement.
async fn sql_spread(
    store: &Store,
    access: &Access,
    q: &StatsQuery,
    column: &str,
    only: &str,
) -> Result<(Vec<(Option<String>, Spread)>, Spread), EngineError> {
    let mut sql = Sql::default();
    let key = sql_key(&mut sql, store.backend, &q.by);
    let base = super::search::sql_conds_for_stats(&mut sql, store.backend, access, &q.orders());
    let inner = format!(
        "SELECT {key} AS k, {column} AS v FROM auftrag_orders WHERE {base} AND {only} AND {column} IS NOT NULL"
    );
    let text = match store.backend {
        // the groups and the total (the empty grouping set) in one pass
        Backend::Postgres => format!(
            "SELECT k, CAST(GROUPING(k) AS BIGINT), COUNT(*), \
             percentile_disc(0.5) WITHIN GROUP (ORDER BY v), \
             percentile_disc(0.9) WITHIN GROUP (ORDER BY v), MAX(v) \
             FROM ({inner}) o GROUP BY GROUPING SETS ((k), ())"
        ),
        // nearest rank: ⌈n/2⌉ = (n + 1) / 2, ⌈9n/10⌉ = (9n + 9) / 10
        Backend::Sqlite => format!(
            "WITH i AS ({inner}) \
             SELECT k, 0, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
               MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM ( \
               SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS r, \
                      COUNT(*) OVER (PARTITION BY k) AS n FROM i) o GROUP BY k, n \
             UNION ALL \
             SELECT NULL, 1, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
               MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM ( \
               SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS r, COUNT(*) OVER () AS n FROM i) t \
             GROUP BY n"
        ),
    };
    let rows = sql.query(&text).fetch_all(&store.pool).await?;
    let mut groups = Vec::new();
    let mut total = Spread::default();
    for r in &rows {
        let spread = Spread {
            count: r.try_get(2)?,
            p50: r.try_get(3)?,
            p90: r.try_get(4)?,
            max: r.try_get(5)?,
        };
        if r.try_get::<i64, _>(1)? == 1 {
            total = spread;
        } else {
            groups.push((key_of(r)?, spread));
        }
    }
    Ok((groups, total))
}

/// Statistics from the SQL database.
pub async fn stats_sql(
    store: &Store,
    access: &Access,
    q: &StatsQuery,
) -> Result<Stats, EngineError> {
    let backend = store.backend;
    let mut rows = Rows::default();

    let mut sql = Sql::default();
    let key = sql_key(&mut sql, backend, &q.by);
    let base = super::search::sql_conds_for_stats(&mut sql, backend, access, &q.orders());
    let text = format!(
        "SELECT k, state, COUNT(*), \
           CAST(SUM(closed) AS BIGINT), \
           CAST(SUM(CASE WHEN closed = 1 AND COALESCE(waited, 0) = 0 THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN waited = 1 THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(COALESCE(waiting_ms, 0)) AS BIGINT) \
         FROM (SELECT {key} AS k, state, closed, waited, waiting_ms FROM auftrag_orders WHERE {base}) o \
         GROUP BY k, state"
    );
    for r in sql.query(&text).fetch_all(&store.pool).await? {
        rows.counts.push((
            key_of(&r)?,
            r.try_get(1)?,
            [
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ],
        ));
    }

    (rows.durations, rows.duration_total) =
        sql_spread(store, access, q, "duration_ms", "closed = 1").await?;
    (rows.waits, rows.wait_total) =
        sql_spread(store, access, q, "waiting_ms", "waited = 1").await?;

    let mut sql = Sql::default();
    let key = sql_key(&mut sql, backend, &q.by);
    let base = super::search::sql_conds_for_stats(&mut sql, backend, access, &q.orders());
    let text = match backend {
        // one pass over the orders: each order's findings joined laterally
        Backend::Postgres => format!(
            "SELECT k, c, s, COUNT(DISTINCT id) FROM ( \
               SELECT {key} AS k, id, f.c, f.s FROM auftrag_orders, LATERAL ( \
                 SELECT x ->> 'check' AS c, 'error' AS s FROM jsonb_array_elements(errors::jsonb) x \
                 UNION ALL SELECT x ->> 'check', 'warning' FROM jsonb_array_elements(warnings::jsonb) x \
                 UNION ALL SELECT x ->> 'check', 'warning' FROM jsonb_array_elements(accepted::jsonb) x \
               ) f WHERE {base}) o \
             WHERE c IS NOT NULL GROUP BY k, c, s"
        ),
        // SQLite has no LATERAL: the orders once (a CTE used three times
        // is materialized), their findings per list
        Backend::Sqlite => {
            let arm = |list: &str, severity: &str| {
                format!(
                    "SELECT o.k, o.id, json_extract(f.value, '$.check') AS c, '{severity}' AS s \
                     FROM o, json_each(o.{list}) f"
                )
            };
            format!(
                "WITH o AS (SELECT {key} AS k, id, errors, warnings, accepted FROM auftrag_orders WHERE {base}) \
                 SELECT k, c, s, COUNT(DISTINCT id) FROM ({} UNION ALL {} UNION ALL {}) x \
                 WHERE c IS NOT NULL GROUP BY k, c, s",
                arm("errors", "error"),
                arm("warnings", "warning"),
                arm("accepted", "warning"),
            )
        }
    };
    for r in sql.query(&text).fetch_all(&store.pool).await? {
        rows.checks.push((
            key_of(&r)?,
            r.try_get(1)?,
            r.try_get::<String, _>(2)? == "error",
            r.try_get(3)?,
        ));
    }
    Ok(assemble(q, rows))
}

// --------------------------------------------------------------- MongoDB

fn mongo_key(by: &By) -> Bson {
    match by {
        By::Type => Bson::String("$type".into()),
        By::State => Bson::String("$state".into()),
        By::Day => Bson::Document(doc! { "$substrCP": ["$created_at", 0, 10] }),
        By::Month => Bson::Document(doc! { "$substrCP": ["$created_at", 0, 7] }),
        // the documents keep facts nested by category (`resource.org` is
        // `facts.resource.org`; see `super::document::MongoDocument`)
        By::Fact(name) => Bson::String(format!("$facts.{name}")),
    }
}

fn bson_key(value: Option<&Bson>) -> Option<String> {
    match value? {
        Bson::Null => None,
        Bson::String(s) => Some(s.clone()),
        Bson::Int32(n) => Some(n.to_string()),
        Bson::Int64(n) => Some(n.to_string()),
        Bson::Boolean(b) => Some(b.to_string()),
        other => Some(other.clone().into_relaxed_extjson().to_string()),
    }
}

fn bson_int(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        // percentiles come as doubles; the values are whole milliseconds
        Bson::Double(d) => Some(d.round() as i64),
        _ => None,
    }
}

/// The check names of a list of findings.
fn checks_of(list: &str) -> Document {
    doc! { "$map": { "input": { "$ifNull": [list, []] }, "as": "f", "in": "$$f.check" } }
}

async fn aggregate(
    history: &super::mongo::HistoryDb,
    pipeline: Vec<Document>,
) -> Result<Vec<Document>, EngineError> {
    use futures::TryStreamExt;
    history
        .orders
        .aggregate(pipeline)
        .await
        .map_err(mongo_error)?
        .try_collect()
        .await
        .map_err(mongo_error)
}

/// The `$facet` arm that computes the spread of `field` over the
/// documents meeting `only`, per group (`grouped`) or over all.
fn mongo_spread_arm(field: &str, only: Document, grouped: bool) -> Vec<Document> {
    vec![
        doc! { "$match": { "$and": [only, { field: { "$ne": null } }] } },
        doc! { "$group": {
            "_id": if grouped { Bson::String("$k".into()) } else { Bson::Null },
            "n": { "$sum": 1 },
            "p": { "$percentile": { "input": format!("${field}"), "p": [0.5, 0.9], "method": "approximate" } },
            "max": { "$max": format!("${field}") },
        } },
    ]
}

fn mongo_spreads(docs: Option<&Vec<Bson>>) -> Vec<(Option<String>, Spread)> {
    docs.into_iter()
        .flatten()
        .filter_map(Bson::as_document)
        .map(|d| {
            let p = d.get_array("p").ok();
            (
                bson_key(d.get("_id")),
                Spread {
                    count: bson_int(d.get("n")).unwrap_or_default(),
                    p50: bson_int(p.and_then(|p| p.first())),
                    p90: bson_int(p.and_then(|p| p.get(1))),
                    max: bson_int(d.get("max")),
                },
            )
        })
        .collect()
}

/// Statistics from the MongoDB history store (aggregation pipelines).
pub async fn stats_mongo(
    history: &super::mongo::HistoryDb,
    access: &Access,
    q: &StatsQuery,
) -> Result<Stats, EngineError> {
    let filter = super::search::mongo_filter(access, &q.orders());
    let key = mongo_key(&q.by);
    let mut rows = Rows::default();
    let closed = doc! { "closed": true };
    let waited = doc! { "waited": true };
    // one pass over the matching documents: every number in an arm of
    // one `$facet`
    let result = aggregate(
        history,
        vec![
            doc! { "$match": filter },
            doc! { "$project": {
                "k": key, "state": 1, "closed": 1, "waited": 1, "waiting_ms": 1, "duration_ms": 1,
                "e": { "$setUnion": [checks_of("$errors")] },
                "w": { "$setUnion": [checks_of("$warnings"), checks_of("$accepted_warnings")] },
            } },
            doc! { "$facet": {
                "counts": [doc! { "$group": {
                    "_id": { "k": "$k", "s": "$state" },
                    "n": { "$sum": 1 },
                    "closed": { "$sum": { "$cond": [{ "$eq": ["$closed", true] }, 1, 0] } },
                    "automated": { "$sum": { "$cond": [
                        { "$and": [{ "$eq": ["$closed", true] }, { "$ne": ["$waited", true] }] }, 1, 0] } },
                    "waited": { "$sum": { "$cond": [{ "$eq": ["$waited", true] }, 1, 0] } },
                    "waiting": { "$sum": { "$ifNull": ["$waiting_ms", 0] } },
                } }],
                "durations": mongo_spread_arm("duration_ms", closed.clone(), true),
                "duration_total": mongo_spread_arm("duration_ms", closed, false),
                "waits": mongo_spread_arm("waiting_ms", waited.clone(), true),
                "wait_total": mongo_spread_arm("waiting_ms", waited, false),
                "checks": [
                    doc! { "$project": { "k": 1, "f": { "$concatArrays": [
                        { "$map": { "input": "$e", "as": "c", "in": { "c": "$$c", "s": "error" } } },
                        { "$map": { "input": "$w", "as": "c", "in": { "c": "$$c", "s": "warning" } } },
                    ] } } },
                    doc! { "$unwind": "$f" },
                    doc! { "$group": { "_id": { "k": "$k", "c": "$f.c", "s": "$f.s" }, "n": { "$sum": 1 } } },
                ],
            } },
        ],
    )
    .await?;
    let result = result.into_iter().next().unwrap_or_default();
    let arm = |name: &str| result.get_array(name).ok();
    for d in arm("counts")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        let id = d.get_document("_id").ok();
        let int = |name: &str| bson_int(d.get(name)).unwrap_or_default();
        rows.counts.push((
            bson_key(id.and_then(|id| id.get("k"))),
            bson_key(id.and_then(|id| id.get("s"))).unwrap_or_default(),
            [
                int("n"),
                int("closed"),
                int("automated"),
                int("waited"),
                int("waiting"),
            ],
        ));
    }
    rows.durations = mongo_spreads(arm("durations"));
    rows.duration_total = mongo_spreads(arm("duration_total"))
        .pop()
        .map(|(_, s)| s)
        .unwrap_or_default();
    rows.waits = mongo_spreads(arm("waits"));
    rows.wait_total = mongo_spreads(arm("wait_total"))
        .pop()
        .map(|(_, s)| s)
        .unwrap_or_default();
    for d in arm("checks")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        let id = d.get_document("_id").ok();
        let Some(check) = bson_key(id.and_then(|id| id.get("c"))) else {
            continue;
        };
        rows.checks.push((
            bson_key(id.and_then(|id| id.get("k"))),
            check,
            id.and_then(|id| id.get_str("s").ok()) == Some("error"),
            bson_int(d.get("n")).unwrap_or_default(),
        ));
    }
    Ok(assemble(q, rows))
}

//! Which orders a person may read, as a condition on the stored order.
//!
//! The `read_order` policy decides one order at a time
//! ([`crate::pdp::may_read`]). Lists and searches cannot ask it for every
//! order in the store; instead the policy is evaluated for the person with
//! the order left open (partial evaluation, as Cedar and OPA do it for data
//! filtering): what remains is a condition on the order's stored columns —
//! its requester, host, type, and the facts recorded when it was decided —
//! which [`Access::sql`] and [`Access::mongo`] turn into a query.
//!
//! The evaluation itself is [`crate::pdp::partial`]; what it cannot
//! translate (an attribute read live from the domain's database for the
//! order, not kept with it) becomes [`Access::Verify`]: the query narrows
//! to the candidates, and the PDP decides each of them as it would one by
//! one ([`readable_page`] does both), so a list never disagrees with
//! reading the orders one at a time.

use serde_json::Value;

use crate::workflow::context::OrderData;

/// A stored value of an order that a condition can test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The requester's `PERS_KEY` (column `requester`).
    Requester,
    /// The object of the order (column `host`, document `host_id`).
    Host,
    /// The order type's name.
    OrderType,
    /// A value recorded with the order when it was decided: the attribute's
    /// whole name (`resource.admin`; attributes marked `record="yes"`).
    Fact(String),
    /// The recorded values as a whole (`facts`): absent for an order not
    /// decided yet (or stored before facts were kept). Only for
    /// [`Cond::Present`].
    Facts,
}

/// An ordering comparison (`column op value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on a stored order.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The column holds this value (strings, integers or booleans).
    Eq(Column, Value),
    /// The column holds one of these values (an empty list holds for none).
    In(Column, Vec<Value>),
    /// The column holds a number that compares so with this one (integers;
    /// a missing or non-numeric value: false).
    Cmp(Column, Order, Value),
    /// The column has a value.
    Present(Column),
    /// The condition does not hold (a comparison with a missing value does
    /// not hold, so its negation does).
    Not(Box<Cond>),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

/// What a person may read.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every order (staff).
    Everything,
    /// No order at all.
    Nothing,
    /// The orders meeting the condition.
    Only(Cond),
    /// The policy could not be translated completely (it reads something
    /// that is not stored with the order): the orders meeting `sure` may be
    /// read; of the other `candidates` (a superset of `sure`), each must be
    /// decided by the PDP. [`Access::sql`] and [`Access::mongo`] give the
    /// candidates.
    Verify { sure: Cond, candidates: Cond },
}

/// A condition as SQL: the text (placeholders `$n` numbered from the
/// `first` given to [`Access::sql`]) and the values to bind, in order.
#[derive(Debug, Clone, Default)]
pub struct SqlCond {
    pub sql: String,
    pub args: Vec<crate::store::writes::Arg>,
}

/// A fact's name as it may appear in a JSON path: facts are kept under
/// the attribute's name (`resource.device`), which the compiler lets
/// through only of letters, digits, `_` and the category's `.`; anything
/// else is refused here rather than spliced into SQL.
fn fact_name(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
    .then_some(name)
}

/// The SQL expression of a fact (also the expression its index is on, see
/// [`index_facts`]): SQLite's JSON path quotes the name, whose `.` is no
/// step into an object.
pub fn fact_sql(name: &str, backend: crate::store::Backend) -> Option<String> {
    let name = fact_name(name)?;
    Some(match backend {
        crate::store::Backend::Sqlite => format!("json_extract(facts, '$.\"{name}\"')"),
        crate::store::Backend::Postgres => format!("((facts::jsonb) ->> '{name}')"),
    })
}

impl Access {
    /// The condition as a SQL boolean expression over `auftrag_orders`.
    pub fn sql(&self, backend: crate::store::Backend, first: usize) -> SqlCond {
        let mut out = SqlCond::default();
        match self {
            Access::Everything => out.sql.push_str("1 = 1"),
            Access::Nothing => out.sql.push_str("1 = 0"),
            Access::Only(cond)
            | Access::Verify {
                candidates: cond, ..
            } => sql_cond(cond, backend, first, &mut out),
        }
        out
    }

    /// Whether the query's rows still need the PDP, one by one.
    pub fn needs_verify(&self) -> bool {
        matches!(self, Access::Verify { .. })
    }

    /// The condition as a MongoDB query filter on the history documents.
    pub fn mongo(&self) -> mongodb::bson::Document {
        use mongodb::bson::doc;
        match self {
            Access::Everything => doc! {},
            // `_id` is the order's id, never below 1
            Access::Nothing => doc! { "_id": { "$lt": 0 } },
            Access::Only(cond)
            | Access::Verify {
                candidates: cond, ..
            } => mongo_cond(cond),
        }
    }
}

/// What an order holds in a column, as a condition reads it.
fn column_value(column: &Column, order: &OrderData) -> Option<Value> {
    match column {
        Column::Requester => Some(Value::String(order.requester.clone())),
        Column::Host => order.key().map(|k| Value::String(k.to_owned())),
        Column::OrderType => Some(Value::String(order.order_type.name.to_owned())),
        Column::Fact(name) => order
            .facts
            .as_ref()
            .and_then(|f| f.get(name))
            .filter(|v| !v.is_null())
            .cloned(),
        Column::Facts => order.facts.as_ref().map(|_| Value::Bool(true)),
    }
}

impl Cond {
    /// Whether a stored order meets the condition (what the query asks of
    /// its row).
    pub fn holds(&self, order: &OrderData) -> bool {
        match self {
            Cond::Eq(c, v) => column_value(c, order).is_some_and(|x| x == *v),
            Cond::In(c, vs) => column_value(c, order).is_some_and(|x| vs.contains(&x)),
            Cond::Cmp(c, op, v) => match (column_value(c, order), v) {
                (Some(Value::Number(x)), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
                    (Some(x), Some(y)) => match op {
                        Order::Lt => x < y,
                        Order::Le => x <= y,
                        Order::Gt => x > y,
                        Order::Ge => x >= y,
                    },
                    _ => false,
                },
                _ => false,
            },
            Cond::Present(c) => column_value(c, order).is_some(),
            Cond::Not(c) => !c.holds(order),
            Cond::All(cs) => cs.iter().all(|c| c.holds(order)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(order)),
        }
    }
}

fn sql_column(column: &Column, backend: crate::store::Backend) -> Option<String> {
    Some(match column {
        Column::Requester => "requester".to_owned(),
        Column::Host => "host".to_owned(),
        Column::OrderType => "order_type".to_owned(),
        Column::Facts => "facts".to_owned(),
        Column::Fact(name) => fact_sql(name, backend)?,
    })
}

/// A value bound against a column: SQLite's `json_extract` gives numbers
/// and booleans (as 0/1) typed, PostgreSQL's `->>` gives text.
fn sql_arg(value: &Value, backend: crate::store::Backend) -> crate::store::writes::Arg {
    use crate::store::Backend;
    use crate::store::writes::Arg;
    match (value, backend) {
        (Value::String(s), _) => Arg::Text(Some(s.clone())),
        (Value::Number(n), Backend::Sqlite) if n.is_i64() => Arg::Int(n.as_i64().unwrap_or(0)),
        (Value::Bool(b), Backend::Sqlite) => Arg::Int(i64::from(*b)),
        (other, _) => Arg::Text(Some(other.to_string())),
    }
}

fn sql_cond(cond: &Cond, backend: crate::store::Backend, first: usize, out: &mut SqlCond) {
    let placeholder = |out: &mut SqlCond, value: &Value| {
        out.args.push(sql_arg(value, backend));
        format!("${}", first + out.args.len() - 1)
    };
    match cond {
        Cond::Eq(column, value) => match sql_column(column, backend) {
            Some(c) => {
                let p = placeholder(out, value);
                out.sql.push_str(&format!("{c} = {p}"));
            }
            None => out.sql.push_str("1 = 0"),
        },
        Cond::In(column, values) => match sql_column(column, backend) {
            Some(c) if !values.is_empty() => {
                let ps: Vec<String> = values.iter().map(|v| placeholder(out, v)).collect();
                out.sql.push_str(&format!("{c} IN ({})", ps.join(", ")));
            }
            _ => out.sql.push_str("1 = 0"),
        },
        Cond::Cmp(column, op, value) => match (column, value.as_i64()) {
            (Column::Fact(name), Some(n)) if fact_name(name).is_some() => {
                let op = match op {
                    Order::Lt => "<",
                    Order::Le => "<=",
                    Order::Gt => ">",
                    Order::Ge => ">=",
                };
                out.args.push(crate::store::writes::Arg::Int(n));
                let p = format!("${}", first + out.args.len() - 1);
                out.sql.push_str(&match backend {
                    // json_extract gives numbers typed; a text is never
                    // compared as a number
                    crate::store::Backend::Sqlite => format!(
                        "(json_type(facts, '$.\"{name}\"') IN ('integer', 'real') \
                         AND json_extract(facts, '$.\"{name}\"') {op} {p})"
                    ),
                    crate::store::Backend::Postgres => format!(
                        "(CASE WHEN jsonb_typeof((facts::jsonb) -> '{name}') = 'number' \
                         THEN ((facts::jsonb) ->> '{name}')::numeric END {op} {p})"
                    ),
                });
            }
            // only facts hold numbers
            _ => out.sql.push_str("1 = 0"),
        },
        Cond::Present(column) => match sql_column(column, backend) {
            Some(c) => out.sql.push_str(&format!("{c} IS NOT NULL")),
            None => out.sql.push_str("1 = 0"),
        },
        // two-valued already; as written here it can use a partial index
        Cond::Not(inner) if matches!(**inner, Cond::Present(_)) => {
            let Cond::Present(column) = &**inner else {
                unreachable!()
            };
            match sql_column(column, backend) {
                Some(c) => out.sql.push_str(&format!("{c} IS NULL")),
                None => out.sql.push_str("1 = 1"),
            }
        }
        Cond::Not(inner) => {
            // SQL's NULL (a comparison with a missing value) is false here
            out.sql.push_str("NOT COALESCE(");
            sql_cond(inner, backend, first, out);
            out.sql.push_str(", FALSE)");
        }
        Cond::All(parts) | Cond::Any(parts) => {
            let (join, empty) = match cond {
                Cond::All(_) => (" AND ", "1 = 1"),
                _ => (" OR ", "1 = 0"),
            };
            if parts.is_empty() {
                out.sql.push_str(empty);
                return;
            }
            out.sql.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.sql.push_str(join);
                }
                sql_cond(part, backend, first, out);
            }
            out.sql.push(')');
        }
    }
}

fn mongo_path(column: &Column) -> String {
    match column {
        Column::Requester => "requester".to_owned(),
        Column::Host => "host_id".to_owned(),
        Column::OrderType => "type".to_owned(),
        // MongoDB documents keep the facts nested by category
        // (`facts.resource.admin`; see `super::document::MongoDocument`)
        Column::Fact(name) => format!("facts.{name}"),
        Column::Facts => "facts".to_owned(),
    }
}

fn mongo_value(value: &Value) -> mongodb::bson::Bson {
    mongodb::bson::Bson::try_from(value.clone()).unwrap_or(mongodb::bson::Bson::Null)
}

fn mongo_cond(cond: &Cond) -> mongodb::bson::Document {
    use mongodb::bson::{Bson, doc};
    match cond {
        Cond::Eq(column, value) => doc! { mongo_path(column): mongo_value(value) },
        Cond::In(column, values) => {
            let values: Vec<Bson> = values.iter().map(mongo_value).collect();
            doc! { mongo_path(column): { "$in": values } }
        }
        Cond::Cmp(column, op, value) => {
            let op = match op {
                Order::Lt => "$lt",
                Order::Le => "$lte",
                Order::Gt => "$gt",
                Order::Ge => "$gte",
            };
            // MongoDB's queries compare numbers with numbers only
            doc! { mongo_path(column): { op: mongo_value(value) } }
        }
        // `$ne: null` also refuses a missing field
        Cond::Present(column) => doc! { mongo_path(column): { "$ne": Bson::Null } },
        Cond::Not(inner) => doc! { "$nor": [mongo_cond(inner)] },
        Cond::All(parts) if parts.is_empty() => doc! {},
        Cond::Any(parts) if parts.is_empty() => doc! { "_id": { "$lt": 0 } },
        Cond::All(parts) => doc! { "$and": parts.iter().map(mongo_cond).collect::<Vec<_>>() },
        Cond::Any(parts) => doc! { "$or": parts.iter().map(mongo_cond).collect::<Vec<_>>() },
    }
}

/// Creates, for each attribute marked `record="yes"`, an index on that fact
/// of `auftrag_orders` unless it exists (`auftrag_orders_fact_NAME`, on
/// the expression the access conditions use, see [`fact_sql`]), so that
/// "the orders about device X / of admin Y" is an index lookup; and one
/// on the orders without facts (`auftrag_orders_undecided`). Run at
/// start-up after the migrations: the recorded attributes are the
/// deployment's, not the engine's.
pub async fn index_facts(
    store: &crate::store::Store,
    defs: &'static crate::workflow::defs::Definitions,
) -> Result<(), crate::error::EngineError> {
    let Some(auth) = defs.authorization else {
        return Ok(());
    };
    let mut indexes: Vec<(String, String)> = auth
        .attributes
        .iter()
        .filter(|a| a.recorded)
        .filter_map(|def| {
            let expr = fact_sql(def.name, store.backend)?;
            Some((
                format!("auftrag_orders_fact_{}", def.name.replace('.', "_")),
                format!("({expr})"),
            ))
        })
        .collect();
    if !indexes.is_empty() {
        // the orders not decided yet, which lists decide one by one
        indexes.push((
            "auftrag_orders_undecided".to_owned(),
            "(id) WHERE facts IS NULL".to_owned(),
        ));
    }
    for (index, on) in indexes {
        let sql = format!("CREATE INDEX IF NOT EXISTS {index} ON auftrag_orders {on}");
        if let Err(e) = sqlx::query(&sql).execute(&store.pool).await {
            // two instances starting at once: PostgreSQL may refuse the
            // second CREATE although it says IF NOT EXISTS
            let exists = match store.backend {
                crate::store::Backend::Sqlite => {
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = $1"
                }
                crate::store::Backend::Postgres => "SELECT 1 FROM pg_indexes WHERE indexname = $1",
            };
            if sqlx::query(exists)
                .bind(&index)
                .fetch_optional(&store.pool)
                .await?
                .is_none()
            {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// The order type of the open order partial evaluation resolves the
/// subject's attributes with: resolvers of subject, action and environment
/// attributes do not read the order (see
/// [`crate::pdp::pip::depends_on_order`]).
static OPEN_ORDER: crate::workflow::defs::OrderTypeDef = crate::workflow::defs::OrderTypeDef {
    name: "",
    description: "no order: the resource is left open",
    workflow: 0,
    key_field: None,
    fields: &[],
};

/// What `person` may read: the `read_order` policy evaluated for them with
/// the order left open ([`crate::pdp::partial`]), their attributes
/// resolved by the PIP as for a decision. Without policies: staff
/// everything, others their own orders (as [`crate::pdp::may_read`]).
pub async fn access_for(
    conn: &mut sqlx::AnyConnection,
    defs: &'static crate::workflow::defs::Definitions,
    person: &str,
) -> Result<Access, crate::error::EngineError> {
    use crate::pdp::pip;
    let Some(auth) = defs.authorization else {
        return Ok(if crate::store::is_staff(conn, person).await? {
            Access::Everything
        } else {
            Access::Only(Cond::Eq(
                Column::Requester,
                Value::String(person.to_owned()),
            ))
        });
    };
    let order = OrderData {
        id: None,
        order_type: &OPEN_ORDER,
        requester: String::new(),
        fields: Default::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        accepted: Vec::new(),
        changes: Default::default(),
        facts: None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut ctx = pip::PipCtx::new(conn, &order, person);
    let request = pip::resolve_some(
        &mut ctx,
        auth.attributes,
        auth.sources,
        crate::pdp::READ_ORDER,
        now,
        |def, source| !pip::depends_on_order(def, source),
    )
    .await;
    Ok(crate::pdp::partial::access(auth, defs, &request))
}

/// How long an access condition is used without asking again when no
/// write transaction of this server ended meanwhile (writes of other
/// processes: another `auftrag serve` on the same PostgreSQL, a direct
/// edit of the domain's tables). The same as a token's person is trusted
/// for ([`crate::http::auth::SUBJECT_CHECK_TTL`]); a policy that reads
/// the clock is evaluated anew at least this often.
pub const ACCESS_TTL: std::time::Duration = crate::http::auth::SUBJECT_CHECK_TTL;

/// At most this many persons' conditions are remembered; when full, the
/// memory starts over.
const ACCESS_CACHE_MAX: usize = 4096;

/// The access conditions of the persons who asked recently: a list or
/// search does not resolve the person's attributes and evaluate the
/// policy again for every page. An entry holds while no write
/// transaction of the store has ended since it was computed
/// ([`crate::store::Store::commits`]: an order that names a deputy or
/// moves a device changes what people may read) and for at most
/// [`ACCESS_TTL`].
#[derive(Debug, Default)]
pub struct AccessCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Remembered>>,
}

#[derive(Debug)]
struct Remembered {
    commits: u64,
    at: std::time::Instant,
    access: Access,
}

impl AccessCache {
    /// What `person` may read ([`access_for`]), remembered.
    pub async fn get(
        &self,
        store: &crate::store::Store,
        defs: &'static crate::workflow::defs::Definitions,
        person: &str,
    ) -> Result<Access, crate::error::EngineError> {
        // counted before reading: a write that ends while the condition is
        // computed makes the entry stale at once
        let commits = store.commits();
        if let Some(access) = self.remembered(person, commits) {
            return Ok(access);
        }
        let mut conn = store.acquire().await?;
        let access = access_for(&mut conn, defs, person).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= ACCESS_CACHE_MAX {
            entries.clear();
        }
        entries.insert(
            person.to_owned(),
            Remembered {
                commits,
                at: std::time::Instant::now(),
                access: access.clone(),
            },
        );
        Ok(access)
    }

    fn remembered(&self, person: &str, commits: u64) -> Option<Access> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(person)
            .filter(|r| r.commits == commits && r.at.elapsed() < ACCESS_TTL)
            .map(|r| r.access.clone())
    }

    /// Forgets every condition (after a change the store's counter does
    /// not see, e.g. staff added or removed by the CLI of this process).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A page of the orders `person` may read that meet `filter` (newest
/// first, at most `filter.limit`), and the cursor of the next page (`None`
/// on the last). The access condition goes into the query; when it is
/// [`Access::Verify`], the candidates the query returns are decided one by
/// one (those meeting `sure` without asking), and further candidates are
/// read until the page is full.
pub async fn readable_page(
    engine: &crate::Engine,
    person: &str,
    filter: &crate::store::OrderFilter,
) -> Result<(Vec<crate::store::StoredOrder>, Option<i64>), crate::error::EngineError> {
    let (pool, defs) = (&engine.store.pool, engine.defs);
    let access = engine.access.get(&engine.store, defs, person).await?;
    let limit = filter.limit.max(1);
    if access == Access::Nothing {
        return Ok((Vec::new(), None));
    }
    let Access::Verify { sure, candidates } = access else {
        let page = crate::store::list_orders(
            pool,
            defs,
            &crate::store::OrderFilter {
                access: Some(access),
                ..filter.clone()
            },
        )
        .await?;
        let next = (page.len() as i64 == limit)
            .then(|| page.last().and_then(|o| o.data.id))
            .flatten();
        return Ok((page, next));
    };
    let mut conn = pool.acquire().await?;
    let mut out = Vec::new();
    let mut before = filter.before_id;
    loop {
        let batch = crate::store::list_orders(
            pool,
            defs,
            &crate::store::OrderFilter {
                access: Some(Access::Only(candidates.clone())),
                before_id: before,
                ..filter.clone()
            },
        )
        .await?;
        let last_batch = (batch.len() as i64) < limit;
        before = batch.last().and_then(|o| o.data.id);
        for order in batch {
            if sure.holds(&order.data)
                || crate::pdp::may_read(&mut conn, defs, &order.data, person).await?
            {
                out.push(order);
                if out.len() as i64 == limit {
                    let next = out.last().and_then(|o| o.data.id);
                    return Ok((out, next));
                }
            }
        }
        if last_batch || before.is_none() {
            return Ok((out, None));
        }
    }
}

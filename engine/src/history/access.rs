//! Which orders a person may read, as a condition on the stored order.
//!
//! The `read_order` policy decides one order at a time
//! ([`crate::pdp::may_read`]). Lists and searches cannot ask it for every
//! order in the store; instead the policy is evaluated for the person with
//! the order left open (partial evaluation, as Cedar and OPA do it for data
//! filtering): what remains is a condition on the order's stored columns —
//! its requester, host, type, and the facts recorded when it was decided —
//! which [`Access::sql`] and [`Access::mongo`] turn into a query.

use serde_json::Value;

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
}

/// A condition on a stored order.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The column holds this value (strings, integers or booleans).
    Eq(Column, Value),
    /// The column holds one of these values (an empty list holds for none).
    In(Column, Vec<Value>),
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
}

/// A condition as SQL: the text (placeholders `$n` numbered from the
/// `first` given to [`Access::sql`]) and the values to bind, in order.
#[derive(Debug, Clone, Default)]
pub struct SqlCond {
    pub sql: String,
    pub args: Vec<crate::store::writes::Arg>,
}

/// A fact's name (an attribute's, `resource.admin`) as it may appear in a
/// JSON path: the compiler only lets names of letters, digits, `_` and the
/// category's `.` through; anything else is refused here rather than
/// spliced into SQL.
fn fact_name(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
    .then_some(name)
}

impl Access {
    /// The condition as a SQL boolean expression over `auftrag_orders`.
    pub fn sql(&self, backend: crate::store::Backend, first: usize) -> SqlCond {
        let mut out = SqlCond::default();
        match self {
            Access::Everything => out.sql.push_str("1 = 1"),
            Access::Nothing => out.sql.push_str("1 = 0"),
            Access::Only(cond) => sql_cond(cond, backend, first, &mut out),
        }
        out
    }

    /// The condition as a MongoDB query filter on the history documents.
    pub fn mongo(&self) -> mongodb::bson::Document {
        use mongodb::bson::doc;
        match self {
            Access::Everything => doc! {},
            // `_id` is the order's id, never below 1
            Access::Nothing => doc! { "_id": { "$lt": 0 } },
            Access::Only(cond) => mongo_cond(cond),
        }
    }
}

fn sql_column(column: &Column, backend: crate::store::Backend) -> Option<String> {
    use crate::store::Backend;
    Some(match column {
        Column::Requester => "requester".to_owned(),
        Column::Host => "host".to_owned(),
        Column::OrderType => "order_type".to_owned(),
        Column::Fact(name) => {
            let name = fact_name(name)?;
            match backend {
                // the stored object's keys are whole names (`resource.admin`)
                Backend::Sqlite => format!("json_extract(facts, '$.\"{name}\"')"),
                Backend::Postgres => format!("((facts::jsonb) ->> '{name}')"),
            }
        }
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
    }
}

fn mongo_value(value: &Value) -> mongodb::bson::Bson {
    mongodb::bson::Bson::try_from(value.clone()).unwrap_or(mongodb::bson::Bson::Null)
}

fn mongo_cond(cond: &Cond) -> mongodb::bson::Document {
    use mongodb::bson::{Bson, doc};
    match cond {
        Cond::Eq(column, value) => doc! { mongo_path(column): mongo_value(value) },
        Cond::In(column, values) => doc! {
            mongo_path(column): { "$in": values.iter().map(mongo_value).collect::<Vec<Bson>>() }
        },
        Cond::All(parts) if parts.is_empty() => doc! {},
        Cond::Any(parts) if parts.is_empty() => doc! { "_id": { "$lt": 0 } },
        Cond::All(parts) => doc! { "$and": parts.iter().map(mongo_cond).collect::<Vec<_>>() },
        Cond::Any(parts) => doc! { "$or": parts.iter().map(mongo_cond).collect::<Vec<_>>() },
    }
}

/// What `person` may read. (For now: staff everything, others their own
/// orders — the partial evaluation of `read_order` replaces this.)
pub async fn access_for(
    conn: &mut sqlx::AnyConnection,
    _defs: &'static crate::workflow::defs::Definitions,
    person: &str,
) -> Result<Access, crate::error::EngineError> {
    Ok(if crate::store::is_staff(conn, person).await? {
        Access::Everything
    } else {
        Access::Only(Cond::Eq(
            Column::Requester,
            Value::String(person.to_owned()),
        ))
    })
}

//! Several writes in one round trip: on PostgreSQL one statement (the writes
//! as data-modifying `WITH` parts: they see the rows as they were before
//! the statement, and references between the rows they write are checked
//! at its end), on SQLite one batch of statements run in the order given
//! (references are checked per statement there, so rows come before the
//! rows that refer to them). Parameters are numbered across the whole batch
//! (`$n`), which both accept.
//!
//! The engine writes an order's row this way, with its decisions and jobs,
//! and with the writes its actions deferred
//! ([`crate::workflow::context::ActionCtx::defer`]): one round trip at the end of the
//! order's transaction.

use std::fmt::Write as _;

use sqlx::AnyConnection;

/// A value for a `$n` parameter.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    /// An integer or NULL.
    OptInt(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

impl Arg {
    /// Binds the value as the query's next parameter.
    pub fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Bytes(v) => query.bind(v),
        }
    }
}

/// Writes to run together; none of them may return rows.
#[derive(Debug, Default)]
pub struct Writes {
    statements: Vec<String>,
    args: Vec<Arg>,
}

impl Writes {
    /// A parameter for `value`: its `$n`.
    pub fn arg(&mut self, value: impl Into<Arg>) -> String {
        let mut placeholder = String::with_capacity(5);
        self.push_arg(&mut placeholder, value.into());
        placeholder
    }

    /// Adds `value` as the next parameter and its `$n` to `sql`, without a
    /// `String` for each (an order's final write has dozens).
    fn push_arg(&mut self, sql: &mut String, value: Arg) {
        self.args.push(value);
        sql.push('$');
        sql.push_str(itoa::Buffer::new().format(self.args.len()));
    }

    /// A multi-row `INSERT INTO {head} VALUES …`, one tuple per row.
    pub fn insert(&mut self, head: &str, rows: Vec<Vec<Arg>>) {
        if rows.is_empty() {
            return;
        }
        let mut sql = String::with_capacity(head.len() + 32 + 6 * rows.len() * rows[0].len());
        sql.push_str("INSERT INTO ");
        sql.push_str(head);
        sql.push_str(" VALUES ");
        for (r, row) in rows.into_iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (i, v) in row.into_iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                self.push_arg(&mut sql, v);
            }
            sql.push(')');
        }
        self.statements.push(sql);
    }

    /// A statement whose parameters were made with [`Writes::arg`].
    pub fn push(&mut self, sql: String) {
        self.statements.push(sql);
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the writes (nothing when there are none).
    pub async fn run(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let Some((last, parts)) = self.statements.split_last() else {
            return Ok(());
        };
        let sql = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            if parts.is_empty() {
                last.clone()
            } else {
                let len = self.statements.iter().map(|s| s.len() + 12).sum();
                let mut sql = String::with_capacity(len);
                sql.push_str("WITH ");
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(sql, "w{i} AS ({part})");
                }
                sql.push(' ');
                sql.push_str(last);
                sql
            }
        } else {
            self.statements.join("; ")
        };
        let mut query = sqlx::query(&sql);
        for arg in self.args {
            query = arg.bind(query);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_across_the_writes() {
        let mut w = Writes::default();
        let a = w.arg(7);
        w.push(format!("UPDATE t SET a = {a}"));
        w.insert(
            "u (x, y)",
            vec![
                vec![Arg::from("p"), Arg::from(1)],
                vec![Arg::from("q"), Arg::from(None::<String>)],
            ],
        );
        for _ in 0..7 {
            w.arg(0);
        }
        assert_eq!(w.arg("last"), "$13");
        assert_eq!(
            w.statements,
            [
                "UPDATE t SET a = $1",
                "INSERT INTO u (x, y) VALUES ($2, $3), ($4, $5)"
            ]
        );
        assert_eq!(w.args.len(), 13);
    }
}

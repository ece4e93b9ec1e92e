//! What sqlx's `Any` driver costs on PostgreSQL, per statement, next to the
//! native `PgConnection` in the same run: the engine talks to both backends
//! through `AnyConnection`, and the orders benchmark's profiles put part of
//! the order path's CPU time in `Any`'s conversions of arguments and rows.
//!
//! Three statements of the shapes the order path sends — a point read, a
//! read of a few rows of five columns (the shape of the JuNet resolvers'
//! UNIONs) and an insert with many arguments (the shape of the final write)
//! — each run `BENCH_STATEMENTS` times one after the other on one
//! connection, through `Any` and natively, in turn, `BENCH_ROUNDS` times.
//! Reported: the CPU time of this process per statement (the client's
//! side: what the driver costs; PostgreSQL's side is the same for both)
//! and the wall time per statement.
//!
//!     cargo bench --manifest-path bench/Cargo.toml --bench driver
//!
//! Environment: BENCH_STATEMENTS (5000), BENCH_ROUNDS (3),
//! AUFTRAG_TEST_POSTGRES=URL (an existing server instead of a throwaway one).

use std::time::Instant;

use sqlx::{Connection, Row};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this process so far, µs (user + system).
fn cpu_us() -> f64 {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only
    // writes into the one it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

const READ_ONE: &str = "SELECT name, org, email FROM bench_person WHERE id = $1";
/// Four arms of five columns, as the resolvers' UNIONs have.
const READ_ARMS: &str = "SELECT 'pers', org, email, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) \
     FROM bench_person WHERE id = $1 \
     UNION ALL SELECT 'org', org, NULL, id, NULL FROM bench_person WHERE org = $2 AND id < $1 + 3 AND id >= $1 \
     UNION ALL SELECT 'mail', NULL, email, NULL, id FROM bench_person WHERE email = $3";
const COLUMNS: usize = 24;

fn insert_sql() -> String {
    let columns: Vec<String> = (0..COLUMNS).map(|i| format!("c{i}")).collect();
    let values: Vec<String> = (1..=COLUMNS).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO bench_wide ({}) VALUES ({})",
        columns.join(", "),
        values.join(", ")
    )
}

#[derive(Clone, Copy)]
enum Shape {
    ReadOne,
    ReadArms,
    Insert,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::ReadOne => "point read (1 row, 3 columns)",
            Shape::ReadArms => "UNION read (4 rows, 5 columns)",
            Shape::Insert => "insert (24 text arguments)",
        }
    }
}

/// `$name(conn, shape, n, insert)`: runs `n` statements of `shape` one
/// after the other on a connection of type `$conn`; returns the CPU time
/// and the wall time per statement, µs. The same code for both drivers,
/// so that only the driver differs.
macro_rules! statements {
    ($name:ident, $conn:ty) => {
        async fn $name(conn: &mut $conn, shape: Shape, n: usize, insert: &str) -> (f64, f64) {
            let (cpu, wall) = (cpu_us(), Instant::now());
            for i in 0..n {
                let id = (i % 1000) as i64;
                match shape {
                    Shape::ReadOne => {
                        let row = sqlx::query(READ_ONE)
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await
                            .expect("read");
                        let _: Option<String> = row.try_get(2).expect("column");
                    }
                    Shape::ReadArms => {
                        let rows = sqlx::query(READ_ARMS)
                            .bind(id)
                            .bind(format!("org{}", id % 50))
                            .bind(format!("p{id}@example.org"))
                            .fetch_all(&mut *conn)
                            .await
                            .expect("read");
                        assert!(!rows.is_empty());
                    }
                    Shape::Insert => {
                        let mut q = sqlx::query(insert);
                        for c in 0..COLUMNS {
                            q = q.bind(format!("value {c} of {i}"));
                        }
                        q.execute(&mut *conn).await.expect("insert");
                    }
                }
            }
            (
                (cpu_us() - cpu) / n as f64,
                wall.elapsed().as_secs_f64() * 1e6 / n as f64,
            )
        }
    };
}

statements!(through_any, sqlx::AnyConnection);
statements!(native, sqlx::PgConnection);

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = env("BENCH_STATEMENTS", 5000);
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let url = auftrag_testkit::fresh_postgres_database().await;
        let mut pg = sqlx::PgConnection::connect(&url).await.expect("connect");
        let columns: Vec<String> = (0..COLUMNS).map(|i| format!("c{i} TEXT")).collect();
        for sql in [
            "CREATE TABLE bench_person (id BIGINT PRIMARY KEY, name TEXT, org TEXT, email TEXT)".to_owned(),
            "CREATE INDEX ON bench_person (org)".to_owned(),
            "CREATE INDEX ON bench_person (email)".to_owned(),
            "INSERT INTO bench_person SELECT i, 'person ' || i, 'org' || (i % 50), 'p' || i || '@example.org' \
             FROM generate_series(0, 999) AS i"
                .to_owned(),
            format!("CREATE UNLOGGED TABLE bench_wide ({})", columns.join(", ")),
            "ANALYZE".to_owned(),
        ] {
            sqlx::query(&sql).execute(&mut pg).await.expect("schema");
        }
        let mut any = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let insert = insert_sql();
        println!("| statement | Any: CPU / wall per statement | native: CPU / wall | Any − native, CPU |");
        println!("|---|---|---|---|");
        for shape in [Shape::ReadOne, Shape::ReadArms, Shape::Insert] {
            // warm-up: statements prepared and cached on both connections
            through_any(&mut any, shape, 200, &insert).await;
            native(&mut pg, shape, 200, &insert).await;
            let (mut a, mut p) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                a.push(through_any(&mut any, shape, n, &insert).await);
                p.push(native(&mut pg, shape, n, &insert).await);
            }
            let median = |v: &mut Vec<(f64, f64)>| {
                v.sort_by(|x, y| x.0.total_cmp(&y.0));
                v[v.len() / 2]
            };
            let (a, p) = (median(&mut a), median(&mut p));
            println!(
                "| {} | {:.1} / {:.1} µs | {:.1} / {:.1} µs | {:+.1} µs ({:+.0} %) |",
                shape.name(),
                a.0,
                a.1,
                p.0,
                p.1,
                a.0 - p.0,
                100.0 * (a.0 - p.0) / p.0
            );
        }
    });
}

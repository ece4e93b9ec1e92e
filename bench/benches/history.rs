//! Searching and counting a large order history (issue 19): the API
//! (`GET /api/v1/history`, `GET /api/v1/stats` over HTTP, as staff: token
//! check, the read policy's access condition, the query, the documents as
//! JSON) on SQLite, on PostgreSQL and on MongoDB (SecantusDB), each next to
//! its floor measured in the same run: the same question written directly
//! against that store (sqlx or the MongoDB driver, in this process), rows
//! or documents fetched, nothing else.
//!
//! The history is generated in bulk (`auftrag demo-data --devices 10000
//! --orders N`: `Network::generate` and `junet::history::insert`); MongoDB is
//! filled from the SQLite database by the exporter's `export_all`.
//!
//!     cargo bench --manifest-path bench/Cargo.toml --bench history
//!
//! Environment: BENCH_HISTORY_ORDERS (1000000), BENCH_DEVICES (10000),
//! BENCH_RUNS (30 timed runs per query and side), BENCH_WARMUP (3 untimed
//! runs before), BENCH_SKIP_SQLITE=1 (SQLite is still loaded: MongoDB is
//! filled from it), BENCH_SKIP_POSTGRES=1, BENCH_SKIP_MONGODB=1,
//! BENCH_QUESTIONS (comma-separated words: only the questions whose names
//! hold one, e.g. `host,requester,date`), BENCH_SQLITE_FILE (keep the
//! loaded SQLite database in this file; a later run with the same file
//! uses it instead of loading again).

use std::sync::Arc;
use std::time::{Duration, Instant};

use auftrag::junet::generate::Network;
use auftrag_engine::Engine;
use auftrag_engine::history::mongo::HistoryDb;
use auftrag_engine::store::Backend;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use sqlx::Row;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The person the questions are asked as: staff of the generated network.
const STAFF: &str = "100000";

/// The columns the API reads for a history document.
const COLUMNS: &str = "id, order_type, requester, state, closed, created_at, updated_at, \
     fields, changes, states, errors, warnings, accepted, facts, host";

/// What a query asks, for both sides.
struct Question {
    name: &'static str,
    /// The API's path and query.
    api: String,
    /// The floor, as SQL with its text parameters (per backend) …
    sql: fn(Backend) -> Vec<&'static str>,
    binds: Vec<String>,
    /// … and as MongoDB: a find filter (sorted by `_id` descending, 51
    /// documents) or an aggregation pipeline.
    mongo: Mongo,
}

enum Mongo {
    Find(Document),
    Aggregate(Vec<Vec<Document>>),
}

/// The questions, about values of the generated history.
fn questions(sample: &Sample) -> Vec<Question> {
    let host = sample.host.clone();
    let requester = sample.requester.clone();
    let mac = sample.mac.clone();
    let (since, until) = (sample.since.clone(), sample.until.clone());
    vec![
        Question {
            name: "by host",
            api: format!("/api/v1/history?host={host}"),
            sql: |_| {
                vec![
                    "SELECT {COLUMNS} FROM auftrag_orders WHERE host = $1 ORDER BY id DESC LIMIT 51",
                ]
            },
            binds: vec![host.clone()],
            mongo: Mongo::Find(doc! { "host_id": &host }),
        },
        Question {
            name: "by requester",
            api: format!("/api/v1/history?requester={requester}"),
            sql: |_| {
                vec![
                    "SELECT {COLUMNS} FROM auftrag_orders WHERE requester = $1 ORDER BY id DESC LIMIT 51",
                ]
            },
            binds: vec![requester.clone()],
            mongo: Mongo::Find(doc! { "requester": &requester }),
        },
        Question {
            name: "changed field = value (hwa set to a MAC)",
            api: format!("/api/v1/history?field=hwa&new={mac}"),
            sql: |b| match b {
                Backend::Sqlite => vec![
                    "SELECT {COLUMNS} FROM auftrag_orders WHERE EXISTS (SELECT 1 FROM json_each(changes) \
                     WHERE key = 'hwa' AND json_extract(value, '$[1]') = $1) \
                     ORDER BY id DESC LIMIT 51",
                ],
                Backend::Postgres => vec![
                    "SELECT {COLUMNS} FROM auftrag_orders \
                     WHERE changes::jsonb @> jsonb_build_object('hwa', jsonb_build_array($1::text)) \
                     AND changes::jsonb -> 'hwa' ->> 1 = $1 ORDER BY id DESC LIMIT 51",
                ],
            },
            binds: vec![mac.clone()],
            mongo: Mongo::Find(doc! { "changed.hwa.1": &mac }),
        },
        Question {
            name: "date range (one week)",
            api: format!("/api/v1/history?since={since}&until={until}"),
            sql: |_| {
                vec![
                    "SELECT {COLUMNS} FROM auftrag_orders WHERE created_at >= $1 AND created_at < $2 \
                     ORDER BY id DESC LIMIT 51",
                ]
            },
            binds: vec![since.clone(), until.clone()],
            mongo: Mongo::Find(doc! { "created_at": { "$gte": &since, "$lt": &until } }),
        },
        Question {
            name: "statistics by type (all orders)",
            api: "/api/v1/stats?by=type".to_owned(),
            // what the API answers: counts per type and state; spread of
            // processing and waiting time per type and over all orders;
            // per type, check and severity the orders it reported on
            // (errors; warnings, accepted or not)
            sql: |b| {
                let mut q = vec![
                    "SELECT order_type, state, COUNT(*), CAST(SUM(closed) AS BIGINT), \
                     CAST(SUM(CASE WHEN closed = 1 AND COALESCE(waited, 0) = 0 THEN 1 ELSE 0 END) AS BIGINT), \
                     CAST(SUM(CASE WHEN waited = 1 THEN 1 ELSE 0 END) AS BIGINT), \
                     CAST(SUM(COALESCE(waiting_ms, 0)) AS BIGINT) \
                     FROM auftrag_orders GROUP BY order_type, state",
                ];
                q.extend(match b {
                    Backend::Sqlite => [
                        "WITH i AS (SELECT order_type AS k, duration_ms AS v FROM auftrag_orders \
                         WHERE closed = 1 AND duration_ms IS NOT NULL) \
                         SELECT k, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
                         MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM \
                         (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS r, \
                          COUNT(*) OVER (PARTITION BY k) AS n FROM i) GROUP BY k, n \
                         UNION ALL SELECT NULL, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
                         MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM \
                         (SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS r, COUNT(*) OVER () AS n FROM i) \
                         GROUP BY n",
                        "WITH i AS (SELECT order_type AS k, waiting_ms AS v FROM auftrag_orders \
                         WHERE waited = 1 AND waiting_ms IS NOT NULL) \
                         SELECT k, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
                         MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM \
                         (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS r, \
                          COUNT(*) OVER (PARTITION BY k) AS n FROM i) GROUP BY k, n \
                         UNION ALL SELECT NULL, n, MAX(CASE WHEN r = (n + 1) / 2 THEN v END), \
                         MAX(CASE WHEN r = (9 * n + 9) / 10 THEN v END), MAX(v) FROM \
                         (SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS r, COUNT(*) OVER () AS n FROM i) \
                         GROUP BY n",
                        "SELECT k, c, s, COUNT(DISTINCT id) FROM ( \
                         SELECT o.order_type AS k, o.id, json_extract(f.value, '$.check') AS c, 'error' AS s \
                         FROM auftrag_orders o, json_each(o.errors) f \
                         UNION ALL SELECT o.order_type, o.id, json_extract(f.value, '$.check'), 'warning' \
                         FROM auftrag_orders o, json_each(o.warnings) f \
                         UNION ALL SELECT o.order_type, o.id, json_extract(f.value, '$.check'), 'warning' \
                         FROM auftrag_orders o, json_each(o.accepted) f) x \
                         WHERE c IS NOT NULL GROUP BY k, c, s",
                    ],
                    Backend::Postgres => [
                        "SELECT order_type, COUNT(*), MAX(duration_ms), \
                         percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms), \
                         percentile_disc(0.9) WITHIN GROUP (ORDER BY duration_ms) \
                         FROM auftrag_orders WHERE closed = 1 AND duration_ms IS NOT NULL \
                         GROUP BY GROUPING SETS ((order_type), ())",
                        "SELECT order_type, COUNT(*), MAX(waiting_ms), \
                         percentile_disc(0.5) WITHIN GROUP (ORDER BY waiting_ms), \
                         percentile_disc(0.9) WITHIN GROUP (ORDER BY waiting_ms) \
                         FROM auftrag_orders WHERE waited = 1 AND waiting_ms IS NOT NULL \
                         GROUP BY GROUPING SETS ((order_type), ())",
                        "SELECT order_type, c, s, COUNT(DISTINCT id) FROM auftrag_orders, LATERAL ( \
                         SELECT x ->> 'check' AS c, 'error' AS s FROM jsonb_array_elements(errors::jsonb) x \
                         UNION ALL SELECT x ->> 'check', 'warning' FROM jsonb_array_elements(warnings::jsonb) x \
                         UNION ALL SELECT x ->> 'check', 'warning' FROM jsonb_array_elements(accepted::jsonb) x) f \
                         WHERE c IS NOT NULL GROUP BY order_type, c, s",
                    ],
                });
                q
            },
            binds: Vec::new(),
            mongo: Mongo::Aggregate(vec![{
                let spread = |field: &str, only: Document, grouped: bool| {
                    vec![
                        doc! { "$match": { "$and": [only, { field: { "$ne": null } }] } },
                        doc! { "$group": {
                            "_id": if grouped { Bson::String("$type".into()) } else { Bson::Null },
                            "n": { "$sum": 1 },
                            "p": { "$percentile": { "input": format!("${field}"), "p": [0.5, 0.9], "method": "approximate" } },
                            "max": { "$max": format!("${field}") },
                        } },
                    ]
                };
                let checks = |list: &str| doc! { "$map": { "input": { "$ifNull": [list, []] }, "in": "$$this.check" } };
                vec![
                    doc! { "$project": {
                        "type": 1, "state": 1, "closed": 1, "waited": 1, "waiting_ms": 1, "duration_ms": 1,
                        "e": { "$setUnion": [checks("$errors")] },
                        "w": { "$setUnion": [checks("$warnings"), checks("$accepted_warnings")] },
                    } },
                    doc! { "$facet": {
                        "counts": [doc! { "$group": {
                            "_id": { "type": "$type", "state": "$state" },
                            "n": { "$sum": 1 },
                            "closed": { "$sum": { "$cond": ["$closed", 1, 0] } },
                            "automated": { "$sum": { "$cond": [
                                { "$and": ["$closed", { "$not": ["$waited"] }] }, 1, 0] } },
                            "waited": { "$sum": { "$cond": ["$waited", 1, 0] } },
                            "waiting": { "$sum": { "$ifNull": ["$waiting_ms", 0] } },
                        } }],
                        "durations": spread("duration_ms", doc! { "closed": true }, true),
                        "duration_total": spread("duration_ms", doc! { "closed": true }, false),
                        "waits": spread("waiting_ms", doc! { "waited": true }, true),
                        "wait_total": spread("waiting_ms", doc! { "waited": true }, false),
                        "checks": [
                            doc! { "$project": { "type": 1, "f": { "$concatArrays": [
                                { "$map": { "input": "$e", "as": "c", "in": { "c": "$$c", "s": "error" } } },
                                { "$map": { "input": "$w", "as": "c", "in": { "c": "$$c", "s": "warning" } } },
                            ] } } },
                            doc! { "$unwind": "$f" },
                            doc! { "$group": { "_id": { "type": "$type", "c": "$f.c", "s": "$f.s" }, "n": { "$sum": 1 } } },
                        ],
                    } },
                ]
            }]),
        },
    ]
}

/// Values of the generated history the questions ask about.
struct Sample {
    host: String,
    requester: String,
    mac: String,
    since: String,
    until: String,
}

async fn sample(store: &auftrag_engine::store::Store) -> Sample {
    let mut conn = store.acquire().await.unwrap();
    let max: i64 = sqlx::query_scalar("SELECT MAX(id) FROM auftrag_orders")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    // an order in the middle that changed a MAC
    let row = sqlx::query(
        "SELECT host, requester, changes, created_at FROM auftrag_orders \
         WHERE id >= $1 AND order_type = 'change_device' AND state = 'COMPLETED' \
         AND changes LIKE '%\"hwa\"%' ORDER BY id LIMIT 1",
    )
    .bind(max / 2)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let changes: serde_json::Value =
        serde_json::from_str(&row.try_get::<String, _>(2).unwrap()).unwrap();
    let created: String = row.try_get(3).unwrap();
    let at = time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
        .unwrap();
    let fmt = auftrag_engine::store::history::format_instant;
    Sample {
        host: row.try_get(0).unwrap(),
        requester: row.try_get(1).unwrap(),
        mac: changes["hwa"][1].as_str().unwrap().to_owned(),
        since: fmt(at - time::Duration::days(3)),
        until: fmt(at + time::Duration::days(4)),
    }
}

/// `runs` timings of `f` after `BENCH_WARMUP` (3) untimed ones, sorted.
async fn time_it<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..env_usize("BENCH_WARMUP", 3) {
        f().await;
    }
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

async fn floor_sql(store: &auftrag_engine::store::Store, q: &Question) {
    let mut conn = store.acquire().await.unwrap();
    for sql in (q.sql)(store.backend) {
        let sql = sql.replace("{COLUMNS}", COLUMNS);
        let mut query = sqlx::query(&sql);
        for b in &q.binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&mut *conn).await.unwrap();
        // read every value, as a client of the store would
        for row in &rows {
            for i in 0..row.len() {
                let text = row.try_get::<Option<String>, _>(i);
                if text.is_err() {
                    let n = row.try_get::<Option<i64>, _>(i);
                    if n.is_err() {
                        std::hint::black_box(row.try_get::<Option<f64>, _>(i).unwrap());
                    }
                    std::hint::black_box(n.ok());
                }
                std::hint::black_box(text.ok());
            }
        }
    }
}

async fn floor_mongo(history: &HistoryDb, q: &Question) {
    match &q.mongo {
        Mongo::Find(filter) => {
            let docs: Vec<Document> = history
                .orders
                .find(filter.clone())
                .sort(doc! { "_id": -1 })
                .limit(51)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            std::hint::black_box(docs);
        }
        Mongo::Aggregate(pipelines) => {
            for p in pipelines {
                let docs: Vec<Document> = history
                    .orders
                    .aggregate(p.clone())
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                std::hint::black_box(docs);
            }
        }
    }
}

/// Serves `engine` on a free port; returns its base URL.
async fn serve(engine: Arc<Engine>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(auftrag_engine::http::server::serve_with(
        engine,
        listener,
        std::future::pending(),
        auftrag_engine::http::server::Limits::default(),
    ));
    base
}

struct Row_ {
    store: &'static str,
    question: &'static str,
    api: (Duration, Duration),
    /// The API's work without HTTP: the search or statistics called in
    /// this process, the answer written as JSON.
    inproc: (Duration, Duration),
    floor: (Duration, Duration),
    hits: usize,
}

/// The API's work for `api` (a path with its query) without HTTP: what
/// the handler calls, as staff person `person`, and the answer as JSON.
async fn in_process(engine: &Engine, person: &str, api: &str) -> Vec<u8> {
    let (path, query) = api.split_once('?').unwrap_or((api, ""));
    let params: std::collections::HashMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if path.ends_with("/stats") {
        let q = auftrag_engine::history::stats::StatsQuery::parse(engine.defs, &params).unwrap();
        let stats = auftrag_engine::history::stats::stats(engine, Some(person), &q)
            .await
            .unwrap();
        serde_json::to_vec(&stats).unwrap()
    } else {
        let q = auftrag_engine::history::search::SearchQuery::parse(engine.defs, &params).unwrap();
        let page = auftrag_engine::history::search::search_json(engine, Some(person), &q)
            .await
            .unwrap();
        serde_json::to_vec(&page).unwrap()
    }
}

async fn run_store(
    label: &'static str,
    engine: Arc<Engine>,
    history: Option<HistoryDb>,
    questions: &[Question],
    runs: usize,
    out: &mut Vec<Row_>,
) {
    let base = serve(engine.clone()).await;
    let staff = engine
        .issue_token(STAFF, time::Duration::hours(2))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for q in questions {
        let url = format!("{base}{}", q.api);
        let probe: serde_json::Value = http
            .get(&url)
            .bearer_auth(&staff)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hits = probe["orders"].as_array().map_or(0, Vec::len);
        assert!(probe.get("status").is_none(), "{label} {}: {probe}", q.name);
        let api = time_it(runs, || {
            let (http, url, staff) = (&http, &url, &staff);
            async move {
                let resp = http.get(url).bearer_auth(staff).send().await.unwrap();
                assert!(resp.status().is_success());
                std::hint::black_box(resp.bytes().await.unwrap());
            }
        })
        .await;
        let inproc = time_it(runs, || {
            let (engine, api) = (&engine, &q.api);
            async move {
                std::hint::black_box(in_process(engine, STAFF, api).await);
            }
        })
        .await;
        let floor = match &history {
            Some(h) => time_it(runs, || floor_mongo(h, q)).await,
            None => time_it(runs, || floor_sql(&engine.store, q)).await,
        };
        println!(
            "{label:<10} {:<42} API p50 {:>9} p99 {:>9} ms | in process p50 {:>9} ms | floor p50 {:>9} p99 {:>9} ms | {:.2}x ({hits} hits)",
            q.name,
            ms(percentile(&api, 0.5)),
            ms(percentile(&api, 0.99)),
            ms(percentile(&inproc, 0.5)),
            ms(percentile(&floor, 0.5)),
            ms(percentile(&floor, 0.99)),
            percentile(&api, 0.5).as_secs_f64() / percentile(&floor, 0.5).as_secs_f64()
        );
        out.push(Row_ {
            store: label,
            question: q.name,
            api: (percentile(&api, 0.5), percentile(&api, 0.99)),
            inproc: (percentile(&inproc, 0.5), percentile(&inproc, 0.99)),
            floor: (percentile(&floor, 0.5), percentile(&floor, 0.99)),
            hits,
        });
    }
}

/// A database with the generated network and `orders` generated orders.
async fn load(url: &str, devices: usize, orders: usize) -> Engine {
    let engine = Engine::open(url, auftrag::domain()).await.unwrap();
    let network = Network::generate(devices, 1);
    let t = Instant::now();
    let mut tx = engine.store.pool.begin().await.unwrap();
    network.insert(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    auftrag::junet::history::insert(&engine.store, engine.defs, &network, orders, 1, |done| {
        if done % 200_000 == 0 {
            eprintln!("  {done} orders written");
        }
    })
    .await
    .unwrap();
    engine.store.analyze().await.unwrap();
    eprintln!(
        "loaded {orders} orders into {} in {:.0} s",
        url.split(':').next().unwrap_or(""),
        t.elapsed().as_secs_f64()
    );
    engine
}

fn main() {
    let orders = env_usize("BENCH_HISTORY_ORDERS", 1_000_000);
    let devices = env_usize("BENCH_DEVICES", 10_000);
    let runs = env_usize("BENCH_RUNS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        // BENCH_SQLITE_FILE: keep the loaded SQLite database there and use
        // it again when it exists (loading a million orders takes minutes)
        let file = match std::env::var("BENCH_SQLITE_FILE") {
            Ok(file) => std::path::PathBuf::from(file),
            Err(_) => dir.path().join("history.db"),
        };
        let sqlite_url = format!("sqlite://{}", file.display());
        let sqlite = if file.exists() {
            eprintln!("using the orders loaded before in {}", file.display());
            Arc::new(Engine::open(&sqlite_url, auftrag::domain()).await.unwrap())
        } else {
            Arc::new(load(&sqlite_url, devices, orders).await)
        };
        let sample = sample(&sqlite.store).await;
        // BENCH_QUESTIONS: only the questions whose names contain one of
        // these comma-separated words
        let only = std::env::var("BENCH_QUESTIONS").ok();
        let questions: Vec<Question> = questions(&sample)
            .into_iter()
            .filter(|q| {
                only.as_deref()
                    .is_none_or(|only| only.split(',').any(|w| q.name.contains(w.trim())))
            })
            .collect();
        if std::env::var("BENCH_SKIP_SQLITE").is_err() {
            run_store("SQLite", sqlite.clone(), None, &questions, runs, &mut rows).await;
        }
        if std::env::var("BENCH_SKIP_POSTGRES").is_err() {
            let url = auftrag_testkit::fresh_postgres_database().await;
            let pg = Arc::new(load(&url, devices, orders).await);
            run_store("PostgreSQL", pg, None, &questions, runs, &mut rows).await;
        }
        if std::env::var("BENCH_SKIP_MONGODB").is_err() {
            let mongo = auftrag_testkit::tools::secantusdb();
            let url = format!(
                "mongodb://127.0.0.1:{}/history?directConnection=true",
                mongo.port()
            );
            let history = HistoryDb::connect(&url).await.unwrap();
            history
                .ensure(sqlite.defs, auftrag_engine::history::mongo_indexes())
                .await
                .unwrap();
            let t = Instant::now();
            let (read, _) = auftrag_engine::history::exporter::export_all(
                &sqlite.store,
                sqlite.defs,
                &history,
                |read, _| {
                    if read % 100_000 == 0 {
                        eprintln!("  {read} documents exported");
                    }
                },
            )
            .await
            .unwrap();
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "exported {read} documents to SecantusDB in {secs:.0} s ({:.0}/s)",
                read as f64 / secs
            );
            // a second engine on the same SQLite database that answers
            // from MongoDB
            let mut engine = Engine::open(&sqlite_url, auftrag::domain()).await.unwrap();
            engine.history = Some(history.clone());
            run_store("MongoDB", Arc::new(engine), Some(history), &questions, runs, &mut rows)
                .await;
        }
        println!("\n| store | query | API p50 | API p99 | in process p50 | floor p50 | floor p99 | API / floor (p50) | hits |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {} ms | {} ms | {} ms | {} ms | {} ms | {:.2}× | {} |",
                r.store,
                r.question,
                ms(r.api.0),
                ms(r.api.1),
                ms(r.inproc.0),
                ms(r.floor.0),
                ms(r.floor.1),
                r.api.0.as_secs_f64() / r.floor.0.as_secs_f64(),
                r.hits
            );
        }
    });
}

//! Job benchmarks (BENCHMARKS.md, "Jobs and the agency").
//!
//! 1. Pickup latency: job created (`POST /api/v1/jobs` sent) → script
//!    started (the script's first command prints the clock), with the real
//!    `auftrag-agency` binary, long-polling versus the original's plain
//!    polling every 5 s.
//! 2. Lease + complete throughput: jobs leased in batches and each result
//!    recorded, by concurrent workers, through the engine's job store and
//!    through the HTTP agency API (a fresh token per request), on SQLite
//!    and on PostgreSQL.
//!
//! `cargo bench -p auftrag-agency --bench jobs`; environment:
//! `BENCH_PICKUPS` (long-poll jobs, default 100), `BENCH_POLL_PICKUPS`
//! (5 s polling jobs, default 20), `BENCH_JOBS` (throughput jobs, default
//! 5000), `BENCH_SKIP_POSTGRES=1`, `AUFTRAG_TEST_POSTGRES` (see testkit).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auftrag_engine::Engine;
use auftrag_engine::jobs::db::{self, Outcome};
use auftrag_engine::jobs::{JobState, token};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

const SECRET: &str = "benchmark secret 0123456789";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Served {
    base: String,
    engine: Arc<Engine>,
    staff: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(database: &str) -> Served {
    let engine = Engine::open(database, auftrag::domain())
        .await
        .expect("open engine");
    let people = engine.seed_demo().await.expect("demo");
    let staff = people
        .iter()
        .find(|p| p.staff)
        .expect("staff")
        .person
        .clone();
    let staff = engine
        .issue_token(&staff, time::Duration::hours(2))
        .await
        .unwrap();
    let mut conn = engine.store.pool.acquire().await.unwrap();
    token::set_secret(&mut conn, SECRET).await.unwrap();
    drop(conn);
    let engine = Arc::new(engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(auftrag_engine::http::server::serve(
        engine.clone(),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    Served {
        base,
        engine,
        staff,
        _stop: tx,
    }
}

/// Pickup latencies (ms) of `n` jobs with an agency configured by `extra`.
async fn pickups(dir: &Path, label: &str, extra: &str, n: usize, spread: Duration) -> Vec<f64> {
    let db = dir.join(format!("{label}.db"));
    let served = serve(db.to_str().unwrap()).await;
    let script = dir.join("clock.sh");
    std::fs::write(&script, "#!/bin/sh\nexec date +%s%N\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let config = dir.join(format!("{label}.toml"));
    std::fs::write(
        &config,
        format!(
            "node = \"{}\"\nsecret_file = \"{}\"\nqueues = [\"compute\"]\nscript = \"{}\"\n{extra}\n",
            served.base,
            secret.display(),
            script.display()
        ),
    )
    .unwrap();
    let mut agency = tokio::process::Command::new(env!("CARGO_BIN_EXE_auftrag-agency"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("agency");
    let client = reqwest::Client::new();
    // Let the agency connect first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = Vec::new();
    for i in 0..n {
        // A random moment relative to the agency's polling cycle.
        let pause = spread.mul_f64(rand::random::<f64>());
        tokio::time::sleep(pause).await;
        let created = now_ns();
        let resp: Value = client
            .post(format!("{}/api/v1/jobs", served.base))
            .bearer_auth(&served.staff)
            .json(&json!({"queue": "compute", "data": format!("job {i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = resp["id"].as_i64().unwrap();
        let started: i128 = loop {
            let job: Value = client
                .get(format!("{}/api/v1/jobs/{id}", served.base))
                .bearer_auth(&served.staff)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if job["state"] == "COMPLETED" {
                break job["output"].as_str().unwrap().trim().parse().unwrap();
            }
            assert_ne!(job["state"], "FAILED", "{job}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        out.push((started - created) as f64 / 1e6);
    }
    let _ = agency.kill().await;
    out
}

fn report(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "pickup {label}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or_default()
    );
}

async fn enqueue_many(engine: &Engine, n: usize) {
    let mut tx = engine.store.begin_write().await.unwrap();
    for i in 0..n {
        db::enqueue(
            &mut tx,
            engine.defs,
            "compute",
            format!("job {i}").as_bytes(),
            "bench",
            None,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Lease + complete through the job store: `workers` loops of lease(batch)
/// then one recorded result per job.
async fn store_throughput(engine: Arc<Engine>, n: usize, workers: usize, batch: usize) -> f64 {
    enqueue_many(&engine, n).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let leases = db::lease(&engine.store, &format!("w{w}"), &["compute"], batch)
                    .await
                    .unwrap();
                if leases.is_empty() {
                    break done;
                }
                for l in leases {
                    let outcome = Outcome {
                        state: JobState::Completed,
                        output: b"ok".to_vec(),
                        exit_code: Some(0),
                        error: None,
                    };
                    db::finish(&engine.store, l.job.id, &l.token, &outcome)
                        .await
                        .unwrap();
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn agency_token() -> String {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let nonce = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    token::make_token(SECRET, at, &nonce)
}

/// Lease + complete through the HTTP agency API.
async fn http_throughput(served: &Served, n: usize, workers: usize, batch: usize) -> f64 {
    enqueue_many(&served.engine, n).await;
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client.clone();
        let base = served.base.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let answer: Value = client
                    .post(format!("{base}/api/v1/agency/poll"))
                    .header("Authorization", format!("Agency {}", agency_token()))
                    .json(&json!({"agency": format!("w{w}"), "queues": ["compute"], "max_jobs": batch}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let jobs = answer["jobs"].as_array().unwrap();
                if jobs.is_empty() {
                    break done;
                }
                for j in jobs {
                    let resp = client
                        .post(format!("{base}/api/v1/agency/jobs/{}", j["id"]))
                        .header("Authorization", format!("Agency {}", agency_token()))
                        .json(&json!({"lease": j["lease"], "status": "COMPLETED",
                                      "output_base64": B64.encode("ok"), "exit_code": 0}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, n);
    n as f64 / start.elapsed().as_secs_f64()
}

async fn throughput(label: &str, database: &str) {
    let n = env_usize("BENCH_JOBS", 5000);
    let served = serve(database).await;
    for (workers, batch) in [(4, 20)] {
        let rate = store_throughput(served.engine.clone(), n, workers, batch).await;
        println!(
            "throughput {label} store: {n} jobs, {workers} workers, lease batch {batch}: {rate:.0} jobs/s"
        );
        let rate = http_throughput(&served, n, workers, batch).await;
        println!(
            "throughput {label} http: {n} jobs, {workers} workers, lease batch {batch}: {rate:.0} jobs/s"
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let dir = tempfile::tempdir().unwrap();
    let long_poll = pickups(
        dir.path(),
        "longpoll",
        "long_poll_secs = 25",
        env_usize("BENCH_PICKUPS", 100),
        Duration::from_millis(200),
    )
    .await;
    report("long-poll (25 s)", long_poll);
    let polling = pickups(
        dir.path(),
        "polling",
        "long_poll_secs = 0\npoll_interval_secs = 5",
        env_usize("BENCH_POLL_PICKUPS", 20),
        Duration::from_secs(5),
    )
    .await;
    report("plain polling every 5 s (the original)", polling);

    let sqlite = dir.path().join("throughput.db");
    throughput("sqlite", sqlite.to_str().unwrap()).await;
    if std::env::var("BENCH_SKIP_POSTGRES").is_err() {
        let url = auftrag_testkit::fresh_postgres_database().await;
        throughput("postgres", &url).await;
    }
}

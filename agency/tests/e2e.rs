//! Jobs end to end: a real auftrag server (the engine with the shipped
//! definitions, on a random port over a real SQLite file), the real
//! `auftrag-agency` binary, real shell scripts as child processes. Tokens of
//! the agency protocol are computed here with this file's own HMAC code.
//!
//! No assertion depends on timing; waits have generous limits so a broken
//! build fails instead of hanging. Where a test needs a short lease, it sets
//! the job's `lease_secs` in the database before any agency sees the job (the
//! shipped queues lease for minutes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use auftrag_engine::Engine;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tempfile::TempDir;
use tokio::process::{Child, Command};

const AGENCY: &str = env!("CARGO_BIN_EXE_auftrag-agency");
const SECRET: &str = "correct horse battery staple";
/// How long a wait may take before the test fails (a guard, not a measure).
const PATIENCE: Duration = Duration::from_secs(180);

fn agent_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/agent.sh")
}

// ------------------------------------------------------------------ server

struct Server {
    base: String,
    db_path: PathBuf,
    dir: TempDir,
    client: reqwest::Client,
    staff: String,
    employee: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn start_server() -> Server {
    start_server_on(None).await
}

/// A server on `database` (a URL), or on a fresh SQLite file.
async fn start_server_on(database: Option<&str>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("auftrag.db");
    let url = database.map_or_else(
        || db_path.to_str().expect("utf-8").to_owned(),
        str::to_owned,
    );
    let engine = Engine::open(&url, auftrag::domain())
        .await
        .expect("open engine");
    let people = engine.seed_demo().await.expect("seed demo");
    let token_of = |role: &str| {
        people
            .iter()
            .find(|p| p.role == role)
            .expect("demo role")
            .person
            .clone()
    };
    let staff = engine
        .issue_token(&token_of("staff"), time::Duration::hours(2))
        .await
        .expect("token");
    let employee = engine
        .issue_token(&token_of("employee"), time::Duration::hours(2))
        .await
        .expect("token");
    {
        let mut conn = engine.store.pool.acquire().await.expect("conn");
        auftrag_engine::jobs::token::set_secret(&mut conn, SECRET)
            .await
            .expect("set secret");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(auftrag_engine::http::server::serve(
        Arc::new(engine),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    Server {
        base,
        db_path,
        dir,
        client: reqwest::Client::new(),
        staff,
        employee,
        shutdown: Some(tx),
    }
}

impl Server {
    async fn db(&self) -> SqlitePool {
        SqlitePool::connect_with(SqliteConnectOptions::new().filename(&self.db_path))
            .await
            .expect("open database file")
    }

    async fn create_job(&self, queue: &str, data: &str) -> i64 {
        let resp = self
            .client
            .post(format!("{}/api/v1/jobs", self.base))
            .bearer_auth(&self.employee)
            .json(&json!({"queue": queue, "data": data}))
            .send()
            .await
            .expect("create job");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        // PENDING, unless an agency (on another instance) took it already.
        assert!(
            ["PENDING", "BUSY", "COMPLETED"].contains(&body["state"].as_str().unwrap()),
            "{body}"
        );
        body["id"].as_i64().expect("id")
    }

    async fn job(&self, id: i64) -> Value {
        let resp = self
            .client
            .get(format!("{}/api/v1/jobs/{id}", self.base))
            .bearer_auth(&self.employee)
            .send()
            .await
            .expect("get job");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }

    /// Waits until job `id` is in `state`; returns it.
    async fn wait_state(&self, id: i64, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let job = self.job(id).await;
            if job["state"] == state {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} did not become {state}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Shortens the lease of a job no agency has seen yet.
    async fn set_lease_secs(&self, id: i64, secs: i64) {
        sqlx::query("UPDATE auftrag_jobs SET lease_secs = ? WHERE id = ? AND state = 'PENDING'")
            .bind(secs)
            .bind(id)
            .execute(&self.db().await)
            .await
            .expect("set lease");
    }

    async fn lease_token(&self, id: i64) -> String {
        sqlx::query_scalar("SELECT lease_token FROM auftrag_jobs WHERE id = ?")
            .bind(id)
            .fetch_one(&self.db().await)
            .await
            .expect("lease token")
    }

    async fn agency_post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Agency {token}"))
            .json(&body)
            .send()
            .await
            .expect("agency request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn print(&self, xml: String) -> (u16, String) {
        let resp = self
            .client
            .post(format!("{}/ui/rest/print", self.base))
            .header("Content-Type", "application/xml")
            .body(xml)
            .send()
            .await
            .expect("print request");
        (resp.status().as_u16(), resp.text().await.expect("text"))
    }
}

// ------------------------------------------------------------------ tokens

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// CRIMSy's token, computed independently of the server's code.
fn token_at(secret: &str, at_ms: i64) -> String {
    let ts = format!("{at_ms:x}");
    let nonce = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let key = Sha256::digest(secret.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{ts}#{nonce}#").as_bytes());
    format!("{ts}#{nonce}#{}", hex::encode(mac.finalize().into_bytes()))
}

fn token() -> String {
    token_at(SECRET, now_ms())
}

// ------------------------------------------------------------------ agency

struct Agency {
    child: Child,
    log: PathBuf,
}

impl Agency {
    async fn start(server: &Server, name: &str, extra: &str) -> Self {
        let dir = server.dir.path();
        let secret_file = dir.join("secret");
        std::fs::write(&secret_file, format!("# agency secret\n{SECRET}\n")).unwrap();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "node = \"{}\"\nsecret_file = \"{}\"\nname = \"{name}\"\nmax_backoff_secs = 1\n{extra}\n",
                server.base,
                secret_file.display(),
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(AGENCY)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "auftrag_agency=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start auftrag-agency");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn terminate(mut self) -> String {
        let pid = self.child.id().expect("running") as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("agency stops on SIGTERM")
            .unwrap();
        assert!(status.success(), "agency exit {status}: {}", self.log());
        self.log()
    }
}

fn script(server: &Server, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = server.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn output_text(job: &Value) -> String {
    String::from_utf8(
        B64.decode(job["output_base64"].as_str().unwrap_or_default())
            .unwrap(),
    )
    .unwrap_or_default()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread")]
async fn job_runs_with_the_shipped_script_and_its_output_comes_back() {
    let server = start_server().await;
    let id = server.create_job("compute", "hello agency\n").await;
    let agency = Agency::start(
        &server,
        "a1",
        &format!(
            "queues = [\"compute\", \"labels\"]\nscript = \"{}\"\nlong_poll_secs = 5",
            agent_sh().display()
        ),
    )
    .await;
    let job = server.wait_state(id, "COMPLETED").await;
    let expected = format!(
        "job {id} bytes 13 sha256 {}\n",
        hex::encode(Sha256::digest(b"hello agency\n"))
    );
    // The job id reached the script, the input went in on stdin, the output came back.
    assert_eq!(job["output"], expected, "{job}");
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["attempts"], 1);

    // A failing script: exit code and the tail of stderr are reported.
    let id = server.create_job("labels", "label data").await;
    let job = server.wait_state(id, "FAILED").await;
    let log = agency.terminate().await;
    // agent.sh runs `lp` for PRINT; without CUPS here it fails, with its
    // message in the error. (With CUPS it would print.)
    assert!(job["exit_code"].as_i64().unwrap() != 0, "{job} {log}");
    assert!(
        job["error"].as_str().unwrap().contains("exited with code"),
        "{job}"
    );

    // Other persons may not read the job; staff may.
    let resp = server
        .client
        .get(format!("{}/api/v1/jobs/{id}", server.base))
        .bearer_auth(&server.staff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_script_reports_exit_code_and_stderr_tail() {
    let server = start_server().await;
    let s = script(
        &server,
        "fail.sh",
        "cat >/dev/null; i=0; while [ $i -lt 2000 ]; do echo \"noise $i\" >&2; i=$((i+1)); done\n\
         echo 'the printer is on fire' >&2; echo partial; exit 3",
    );
    let agency = Agency::start(
        &server,
        "fail",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"\nstderr_tail_bytes = 200",
            s.display()
        ),
    )
    .await;
    let id = server.create_job("compute", "x").await;
    let job = server.wait_state(id, "FAILED").await;
    agency.terminate().await;
    assert_eq!(job["exit_code"], 3, "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.ends_with("the printer is on fire"), "{error}");
    assert!(!error.contains("noise 0\n"), "only the tail: {error}");
    assert_eq!(job["output"], "partial\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn short_jobs_complete_while_a_long_job_stays_busy_with_heartbeats() {
    let long_secs: u64 = std::env::var("AUFTRAG_TEST_LONG_JOB_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let server = start_server().await;
    let s = script(
        &server,
        "work.sh",
        &format!(
            "data=$(cat)\nif [ \"$data\" = long ]; then sleep {long_secs}; echo long-done; else echo \"short $3\"; fi"
        ),
    );
    let long = server.create_job("compute", "long").await;
    // A lease of 3 s: without heartbeats the long job would be handed out
    // again ten times over.
    server.set_lease_secs(long, 3).await;
    let agency = Agency::start(
        &server,
        "busy",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"\nmax_jobs = 3\nlong_poll_secs = 10",
            s.display()
        ),
    )
    .await;
    let first = server.wait_state(long, "BUSY").await;
    let mut shorts = Vec::new();
    for i in 0..20 {
        shorts.push(server.create_job("compute", &format!("short {i}")).await);
    }
    for id in &shorts {
        let job = server.wait_state(*id, "COMPLETED").await;
        assert_eq!(output_text(&job), format!("short {id}\n"));
    }
    let during = server.job(long).await;
    assert_eq!(
        during["state"], "BUSY",
        "the long job is still running: {during}"
    );
    // Wait for at least one heartbeat past the first lease's end.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = server.job(long).await;
        if now["state"] != "BUSY" || now["lease_expires_at"] != first["lease_expires_at"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no heartbeat");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = server.wait_state(long, "COMPLETED").await;
    assert_eq!(done["output"], "long-done\n");
    assert_eq!(
        done["attempts"], 1,
        "heartbeats kept the lease: never handed out again"
    );
    let log = agency.terminate().await;
    assert!(log.contains("heartbeat"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn job_of_a_killed_agency_is_leased_again_and_the_late_result_refused() {
    let server = start_server().await;
    let marks = server.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let hang = script(
        &server,
        "hang.sh",
        &format!("echo $$ > {}/started-$3\nexec sleep 600", marks.display()),
    );
    let quick = script(
        &server,
        "quick.sh",
        "cat >/dev/null; echo \"second agency did $3\"",
    );
    let id = server.create_job("compute", "work").await;
    server.set_lease_secs(id, 2).await;
    let mut first = Agency::start(
        &server,
        "first",
        &format!("queues = [\"compute\"]\nscript = \"{}\"", hang.display()),
    )
    .await;
    let started = marks.join(format!("started-{id}"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !started.exists() || std::fs::read_to_string(&started).unwrap().trim().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "script did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stale_lease = server.lease_token(id).await;
    first.child.kill().await.expect("SIGKILL the first agency");
    let orphan: i32 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(orphan, libc::SIGKILL) };

    let second = Agency::start(
        &server,
        "second",
        &format!("queues = [\"compute\"]\nscript = \"{}\"", quick.display()),
    )
    .await;
    let job = server.wait_state(id, "COMPLETED").await;
    second.terminate().await;
    assert_eq!(job["output"], format!("second agency did {id}\n"));
    assert_eq!(job["attempts"], 2, "{job}");

    // The first agency's result arrives late: refused, the result stays.
    for status in ["COMPLETED", "BUSY"] {
        let (code, body) = server
            .agency_post(
                &format!("/api/v1/agency/jobs/{id}"),
                &token(),
                json!({"lease": stale_lease, "status": status, "output_base64": B64.encode("late")}),
            )
            .await;
        assert_eq!(code, 409, "{body}");
    }
    assert_eq!(
        server.job(id).await["output"],
        format!("second agency did {id}\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_flood_of_100_mb_does_not_hang() {
    let server = start_server().await;
    let flood = script(
        &server,
        "flood.sh",
        "head -c 10000000 /dev/zero >&2 &\nhead -c 100000000 /dev/zero | tr '\\0' 'x'\nwait",
    );
    let agency = Agency::start(
        &server,
        "flood",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"\noutput_limit_bytes = 1048576",
            flood.display()
        ),
    )
    .await;
    let id = server.create_job("compute", "").await;
    let job = server.wait_state(id, "COMPLETED").await;
    agency.terminate().await;
    let out = B64.decode(job["output_base64"].as_str().unwrap()).unwrap();
    assert_eq!(out.len(), 1_048_576);
    assert!(out.iter().all(|b| *b == b'x'));
    assert!(
        job["error"].as_str().unwrap().contains("output cut"),
        "{job}"
    );
}

/// Whether a process is gone (or a zombie waiting to be reaped by init).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .map(|rest| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_the_whole_process_group() {
    let server = start_server().await;
    let marks = server.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let s = script(
        &server,
        "slow.sh",
        &format!(
            "sh -c 'sleep 600' &\necho $! > {}/grandchild-$3\necho started\nwait",
            marks.display()
        ),
    );
    let agency = Agency::start(
        &server,
        "slow",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"\njob_timeout_secs = 2",
            s.display()
        ),
    )
    .await;
    let id = server.create_job("compute", "").await;
    let job = server.wait_state(id, "FAILED").await;
    agency.terminate().await;
    assert!(
        job["error"].as_str().unwrap().contains("longer than 2 s"),
        "{job}"
    );
    assert_eq!(job["output"], "started\n");
    let grandchild: i32 = std::fs::read_to_string(marks.join(format!("grandchild-{id}")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !process_gone(grandchild) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "grandchild {grandchild} survived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agency_tokens_wrong_secret_replay_and_skew_are_refused() {
    let server = start_server().await;
    let poll = json!({"queues": ["compute"], "wait_secs": 0});
    let good = token();
    let (code, body) = server
        .agency_post("/api/v1/agency/poll", &good, poll.clone())
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["jobs"], json!([]));

    let mut refusals = Vec::new();
    for (what, t) in [
        ("replayed", good.clone()),
        ("wrong secret", token_at("another secret", now_ms())),
        ("200 s old", token_at(SECRET, now_ms() - 200_000)),
        ("200 s ahead", token_at(SECRET, now_ms() + 200_000)),
        ("garbage", "not-a-token".to_owned()),
    ] {
        let (code, body) = server
            .agency_post("/api/v1/agency/poll", &t, poll.clone())
            .await;
        assert_eq!(code, 401, "{what}: {body}");
        let mut body = body;
        // each answer names its own request; the rest must be the same
        body.as_object_mut().map(|b| b.remove("request_id"));
        refusals.push(body);
    }
    // Every refusal says the same: nothing tells which part failed.
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:?}");
    // Inside the window, a skew of 90 s passes.
    let (code, _) = server
        .agency_post(
            "/api/v1/agency/poll",
            &token_at(SECRET, now_ms() - 90_000),
            poll.clone(),
        )
        .await;
    assert_eq!(code, 200);
    // No token at all, and a bearer token, are refused too.
    let resp = server
        .client
        .post(format!("{}/api/v1/agency/poll", server.base))
        .bearer_auth(&server.staff)
        .json(&poll)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The secret: staff rotate it; the old one stops working at once.
    let resp = server
        .client
        .post(format!("{}/api/v1/agency/secret/rotate", server.base))
        .bearer_auth(&server.employee)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = server
        .client
        .put(format!("{}/api/v1/agency/secret", server.base))
        .bearer_auth(&server.staff)
        .json(&json!({"secret": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = server
        .client
        .post(format!("{}/api/v1/agency/secret/rotate", server.base))
        .bearer_auth(&server.staff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_eq!(new_secret.len(), 64, "32 random bytes in hex");
    let (code, _) = server
        .agency_post("/api/v1/agency/poll", &token(), poll.clone())
        .await;
    assert_eq!(code, 401, "the old secret is refused after rotation");
    let (code, _) = server
        .agency_post(
            "/api/v1/agency/poll",
            &token_at(new_secret, now_ms()),
            poll.clone(),
        )
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_answers_when_a_job_arrives() {
    let server = start_server().await;
    let poller = {
        let base = server.base.clone();
        let client = server.client.clone();
        tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/agency/poll"))
                .header("Authorization", format!("Agency {}", token()))
                .json(&json!({"job_types": ["COMPUTE"], "wait_secs": 60, "agency": "lp"}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = server.create_job("compute", "now").await;
    let answer = tokio::time::timeout(PATIENCE, poller)
        .await
        .expect("answered")
        .unwrap();
    let jobs = answer["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{answer}");
    assert_eq!(jobs[0]["id"], id);
    assert_eq!(jobs[0]["queue"], "compute");
    assert_eq!(
        B64.decode(jobs[0]["input_base64"].as_str().unwrap())
            .unwrap(),
        b"now"
    );
    assert_eq!(server.job(id).await["state"], "BUSY");

    // The lease holder's heartbeat and result are taken; the result once.
    let lease = jobs[0]["lease"].as_str().unwrap();
    let path = format!("/api/v1/agency/jobs/{id}");
    let (code, body) = server
        .agency_post(&path, &token(), json!({"lease": lease, "status": "BUSY"}))
        .await;
    assert_eq!(code, 200, "{body}");
    let result = json!({"lease": lease, "status": "COMPLETED", "output_base64": B64.encode("ok"), "exit_code": 0});
    let (code, body) = server.agency_post(&path, &token(), result.clone()).await;
    assert_eq!(code, 200, "{body}");
    // A repeated delivery (the agency missed the answer) is answered alike...
    let (code, _) = server.agency_post(&path, &token(), result).await;
    assert_eq!(code, 200);
    // ...a different result is not recorded.
    let (code, _) = server
        .agency_post(
            &path,
            &token(),
            json!({"lease": lease, "status": "FAILED", "exit_code": 1}),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(server.job(id).await["output"], "ok");
}

fn netjob(fields: &[(&str, &str)], token: &str) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><netJob>");
    for (k, v) in fields {
        xml.push_str(&format!("<{k}>{v}</{k}>"));
    }
    xml.push_str(&format!("<token>{token}</token></netJob>"));
    xml
}

/// The text of the first `<tag>` in `xml`.
fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

#[tokio::test(flavor = "multi_thread")]
async fn netjob_query_and_update_round_trip() {
    let server = start_server().await;
    let id = server.create_job("labels", "^XA^FDzam2212^FS^XZ").await;

    // A CRIMSy agency asks for pending PRINT work in `labels`: it gets the job.
    let (code, answer) = server
        .print(netjob(
            &[
                ("requesttype", "QUERY"),
                ("jobtype", "PRINT"),
                ("queue", "labels"),
                ("status", "PENDING"),
            ],
            &token(),
        ))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("<joblist><job>"), "{answer}");
    assert_eq!(xml_field(&answer, "jobid"), Some(id.to_string().as_str()));
    assert_eq!(xml_field(&answer, "jobtype"), Some("PRINT"));
    assert_eq!(xml_field(&answer, "queue"), Some("labels"));
    assert_eq!(xml_field(&answer, "status"), Some("BUSY"));
    assert_eq!(
        B64.decode(xml_field(&answer, "input").unwrap()).unwrap(),
        b"^XA^FDzam2212^FS^XZ"
    );
    // Asked again, nothing is pending.
    let (_, again) = server
        .print(netjob(
            &[
                ("requesttype", "QUERY"),
                ("queue", "labels"),
                ("status", "PENDING"),
            ],
            &token(),
        ))
        .await;
    assert!(xml_field(&again, "jobid").is_none(), "{again}");

    // UPDATE with the result.
    let output = B64.encode("request id is labels-42 (1 file(s))");
    let (code, answer) = server
        .print(netjob(
            &[
                ("requesttype", "UPDATE"),
                ("jobid", &id.to_string()),
                ("status", "COMPLETED"),
                ("output", &output),
            ],
            &token(),
        ))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(xml_field(&answer, "status"), Some("COMPLETED"));
    let job = server.job(id).await;
    assert_eq!(job["state"], "COMPLETED");
    assert_eq!(job["output"], "request id is labels-42 (1 file(s))");

    // QUERY by id shows it; a second UPDATE is refused; a bad token is 401.
    let (_, answer) = server
        .print(netjob(
            &[("requesttype", "QUERY"), ("jobid", &id.to_string())],
            &token(),
        ))
        .await;
    assert_eq!(xml_field(&answer, "status"), Some("COMPLETED"));
    assert_eq!(xml_field(&answer, "output"), Some(output.as_str()));
    let (code, _) = server
        .print(netjob(
            &[
                ("requesttype", "UPDATE"),
                ("jobid", &id.to_string()),
                ("status", "FAILED"),
            ],
            &token(),
        ))
        .await;
    assert_eq!(code, 409);
    let replay = token();
    let (code, _) = server
        .print(netjob(&[("requesttype", "QUERY")], &replay))
        .await;
    assert_eq!(code, 200);
    let (code, _) = server
        .print(netjob(&[("requesttype", "QUERY")], &replay))
        .await;
    assert_eq!(code, 401, "replayed token");
    let (code, _) = server
        .print(netjob(
            &[("requesttype", "QUERY")],
            &token_at("wrong secret!", now_ms()),
        ))
        .await;
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn agency_in_crimsy_mode_runs_jobs_through_ui_rest_print() {
    let server = start_server().await;
    let agency = Agency::start(
        &server,
        "crimsy",
        &format!(
            "protocol = \"crimsy\"\njob_types = [\"COMPUTE\"]\nscript = \"{}\"\npoll_interval_secs = 0.2",
            agent_sh().display()
        ),
    )
    .await;
    let a = server.create_job("compute", "first").await;
    let b = server.create_job("compute", "second").await;
    for (id, data) in [(a, "first"), (b, "second")] {
        let job = server.wait_state(id, "COMPLETED").await;
        assert_eq!(
            job["output"],
            format!(
                "job {id} bytes {} sha256 {}\n",
                data.len(),
                hex::encode(Sha256::digest(data.as_bytes()))
            )
        );
    }
    agency.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agency_survives_the_node_being_down_and_delivers_later() {
    // The agency starts before the node listens; it backs off and retries.
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = start_server().await;
    let id = server.create_job("compute", "later").await;
    // Point an agency at a port nobody listens on yet, then serve there.
    let real_base = server.base.clone();
    server.base = format!("http://127.0.0.1:{port}");
    let agency = Agency::start(
        &server,
        "patient",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"",
            agent_sh().display()
        ),
    )
    .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !agency.log().contains("poll failed") {
        assert!(tokio::time::Instant::now() < deadline, "{}", agency.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A proxy on the agency's port forwards to the server: the node is "up".
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let target = real_base.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                break;
            };
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    server.base = real_base;
    let job = server.wait_state(id, "COMPLETED").await;
    assert!(
        job["output"]
            .as_str()
            .unwrap()
            .starts_with(&format!("job {id} "))
    );
    agency.terminate().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_waits_for_running_jobs_then_reports_the_rest_failed() {
    let server = start_server().await;
    let flag = server.dir.path().join("go");
    let s = script(
        &server,
        "mixed.sh",
        &format!(
            "data=$(cat)\nif [ \"$data\" = forever ]; then echo begun; exec sleep 600; fi\n\
             while [ ! -e {flag} ]; do sleep 0.1; done; echo \"finished $3\"",
            flag = flag.display()
        ),
    );
    let mut agency = Agency::start(
        &server,
        "stopping",
        &format!(
            "queues = [\"compute\"]\nscript = \"{}\"\nshutdown_grace_secs = 10\nmax_jobs = 2",
            s.display()
        ),
    )
    .await;
    let forever = server.create_job("compute", "forever").await;
    server.wait_state(forever, "BUSY").await;
    let soon = server.create_job("compute", "soon").await;
    server.wait_state(soon, "BUSY").await;
    let pid = agency.child.id().expect("running") as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // After the stop request: no new job is taken...
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !agency.log().contains("stopping: no more polling") {
        assert!(tokio::time::Instant::now() < deadline, "{}", agency.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let late = server.create_job("compute", "late").await;
    // ...and the running job may still finish.
    std::fs::write(&flag, "").unwrap();
    let status = tokio::time::timeout(PATIENCE, agency.child.wait())
        .await
        .expect("agency stops")
        .unwrap();
    assert!(status.success(), "{}", agency.log());
    let done = server.job(soon).await;
    assert_eq!(
        done["state"], "COMPLETED",
        "finished within the grace: {done}"
    );
    assert_eq!(done["output"], format!("finished {soon}\n"));
    let killed = server.job(forever).await;
    assert_eq!(killed["state"], "FAILED", "{killed}");
    assert!(
        killed["error"].as_str().unwrap().contains("agency stopped"),
        "{killed}"
    );
    assert_eq!(killed["output"], "begun\n");
    assert_eq!(server.job(late).await["state"], "PENDING");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engines_on_postgres_hand_each_job_to_one_agency() {
    let url = auftrag_testkit::fresh_postgres_database().await;
    let a = start_server_on(Some(&url)).await;
    let b = start_server_on(Some(&url)).await;
    let s = script(&a, "pg.sh", "cat >/dev/null; sleep 0.1; echo \"done $3\"");
    let extra = format!(
        "queues = [\"compute\"]\nscript = \"{}\"\nmax_jobs = 4\nlong_poll_secs = 2",
        s.display()
    );
    let agency_a = Agency::start(&a, "pg-a", &extra).await;
    let agency_b = Agency::start(&b, "pg-b", &extra).await;
    let mut ids = Vec::new();
    for i in 0..15 {
        ids.push(a.create_job("compute", &format!("a{i}")).await);
        ids.push(b.create_job("compute", &format!("b{i}")).await);
    }
    for id in &ids {
        let job = a.wait_state(*id, "COMPLETED").await;
        assert_eq!(job["output"], format!("done {id}\n"));
        assert_eq!(job["attempts"], 1, "leased once: {job}");
    }
    let log_a = agency_a.terminate().await;
    let log_b = agency_b.terminate().await;
    // Every job ran once in all: no lease was handed to both agencies.
    let runs = log_a.matches("job started").count() + log_b.matches("job started").count();
    assert_eq!(runs, ids.len(), "{log_a}\n{log_b}");
}

//! Mail notifications through a real SMTP server (aiosmtpd, from the test
//! venv `cargo xtask test` makes: `AUFTRAG_TEST_VENV`) and the real
//! `auftrag` binary: who gets which mail for submission, WAITING, staff
//! accept and abort, withdrawal and a deputy's change; an SMTP outage; a
//! permanent 550 for one recipient; SIGKILL mid-send; two instances on one
//! PostgreSQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Db, ZAM2212, ZAM2213_MAC, for_both_backends};

const BIN: &str = env!("CARGO_BIN_EXE_auftrag");
const STAFF_BOX: &str = "ipm@example.org";

/// The test venv's python (with aiosmtpd): see `auftrag_testkit::tools`.
fn python() -> PathBuf {
    // aiosmtpd sits next to the venv's python; its absence means no venv
    let aiosmtpd = auftrag_testkit::tools::python_tool("aiosmtpd");
    aiosmtpd.with_file_name("python")
}

fn free_port() -> u16 {
    auftrag_testkit::tools::free_port()
}

/// The SMTP server: stores what it accepts in `dir` (one JSON per message).
struct Smtp {
    child: Child,
}

impl Smtp {
    async fn start(port: u16, dir: &Path, reject: &[&str], hold: Option<&Path>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/mail_sink.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir);
        for r in reject {
            cmd.args(["--reject", r]);
        }
        if let Some(h) = hold {
            cmd.arg("--hold").arg(h);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("SMTP server ready in time")
            .unwrap();
        assert_eq!(line.as_deref(), Some("ready"));
        Smtp { child }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What the SMTP server received.
#[derive(Debug, Clone)]
struct Mail {
    to: Vec<String>,
    subject: String,
    body: String,
    headers: BTreeMap<String, String>,
}

fn received(dir: &Path) -> Vec<Mail> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            out.push(Mail {
                to: serde_json::from_value(v["rcpt_tos"].clone()).unwrap(),
                subject: v["subject"].as_str().unwrap().to_owned(),
                body: v["body"].as_str().unwrap().to_owned(),
                headers: serde_json::from_value(v["headers"].clone()).unwrap(),
            });
        }
    }
    out
}

/// A running `auftrag serve --demo --smtp …`.
struct Server {
    child: Child,
    base: String,
    tokens: BTreeMap<String, String>,
    http: reqwest::Client,
}

async fn serve(db: &str, smtp_port: u16) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "--database",
            db,
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--smtp", &format!("smtp://127.0.0.1:{smtp_port}")])
        .args(["--smtp-timeout", "2", "--smtp-retry-max", "1"])
        .args([
            "--mail-staff",
            STAFF_BOX,
            "--mail-from",
            "auftrag@fz-juelich.de",
        ])
        .args(["--mail-link-base", "https://auftrag.example.org"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start auftrag");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut tokens = BTreeMap::new();
    while tokens.len() < 5 {
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("demo tokens in time")
            .unwrap()
            .expect("stdout open");
        let parts: Vec<&str> = line.split_whitespace().collect();
        tokens.insert(parts[1].to_owned(), parts[3].to_owned());
    }
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), stderr.next_line())
            .await
            .expect("listening in time")
            .unwrap()
            .expect("stderr open");
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    Server {
        child,
        base,
        tokens,
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn post(&self, role: &str, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[role])
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn order(&self, role: &str, fields: Value) -> i64 {
        let v = self
            .post(
                role,
                "/api/v1/orders",
                json!({"type": "change_device", "fields": fields}),
            )
            .await;
        v["id"].as_i64().unwrap()
    }

    async fn notifications(&self, id: i64) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/api/v1/orders/{id}", self.base))
            .bearer_auth(&self.tokens["staff"])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["notifications"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until no notification of `ids` is PENDING; returns them all.
    async fn settled(&self, ids: &[i64]) -> Vec<Value> {
        for _ in 0..600 {
            let mut all = Vec::new();
            for &id in ids {
                all.extend(self.notifications(id).await);
            }
            if all.iter().all(|n| n["status"] != "PENDING") {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("notifications still PENDING after a minute");
    }

    fn kill(&mut self) {
        self.child.start_kill().unwrap();
    }
}

async fn database(db: Db, dir: &tempfile::TempDir) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("auftrag.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    }
}

fn mails_to<'a>(mails: &'a [Mail], to: &str, subject_part: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to) && m.subject.contains(subject_part))
        .collect()
}

const ADMIN: &str = "j.schmidt@fz-juelich.de";
const DEPUTY: &str = "a.weber@fz-juelich.de";

async fn mails_follow_the_thesis(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    let port = free_port();
    let smtp = Smtp::start(port, &mails, &[], None).await;
    let url = database(db, &dir).await;
    let server = serve(&url, port).await;

    // 1: the admin's change completes; a notify address gets it too
    let done = server
        .order(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:91", "notify": ["boss@example.org"]}),
        )
        .await;
    // 2: waits (another device's MAC), staff accept: COMPLETED
    let accepted = server
        .order("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    server
        .post(
            "staff",
            &format!("/api/v1/orders/{accepted}/accept"),
            json!({}),
        )
        .await;
    // 3: waits, staff abort
    let aborted = server
        .order("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    server
        .post(
            "staff",
            &format!("/api/v1/orders/{aborted}/abort"),
            json!({"comment": "not this MAC"}),
        )
        .await;
    // 4: waits, the requester withdraws
    let withdrawn = server
        .order("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    server
        .post(
            "admin",
            &format!("/api/v1/orders/{withdrawn}/withdraw"),
            json!({}),
        )
        .await;
    // 5: the deputy changes the admin's device
    let deputy = server
        .order(
            "deputy",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:92"}),
        )
        .await;

    let ids = [done, accepted, aborted, withdrawn, deputy];
    let listed = server.settled(&ids).await;
    assert!(
        listed
            .iter()
            .all(|n| n["status"] == "SENT" && n["attempts"] == 1),
        "{listed:#?}"
    );
    let got = received(&mails);
    assert_eq!(got.len(), listed.len(), "one message per notification");

    // submission: requester and staff; the admin is the requester (one mail)
    let sub = format!("Auftrag {done} (change_device) eingegangen");
    assert_eq!(mails_to(&got, ADMIN, &sub).len(), 1);
    assert_eq!(mails_to(&got, STAFF_BOX, &sub).len(), 1);
    assert_eq!(mails_to(&got, "boss@example.org", &sub).len(), 1);
    let m = mails_to(&got, ADMIN, &sub)[0];
    assert!(m.body.contains("hwa: 00:1a:2b:3c:4d:91"), "{}", m.body);
    assert!(
        m.body
            .contains(&format!("https://auftrag.example.org/api/v1/orders/{done}"))
    );
    assert_eq!(m.headers["auto-submitted"], "auto-generated");
    assert_eq!(m.headers["from"], "auftrag@fz-juelich.de");
    assert!(m.headers["to"].contains("Jan Schmidt"), "{:?}", m.headers);
    assert!(
        m.headers["message-id"].starts_with(&format!("<auftrag.{done}.0.")),
        "{:?}",
        m.headers
    );
    let m = mails_to(&got, ADMIN, &format!("Auftrag {done} ausgeführt"));
    assert_eq!(m.len(), 1);
    assert!(
        m[0].body
            .contains("hwa: 00:1a:2b:3c:4d:01 -> 00:1a:2b:3c:4d:91"),
        "{}",
        m[0].body
    );
    assert_eq!(
        mails_to(
            &got,
            "boss@example.org",
            &format!("Auftrag {done} ausgeführt")
        )
        .len(),
        1
    );

    // WAITING: requester and staff, with the warning; accept → COMPLETED
    for id in [accepted, aborted, withdrawn] {
        let w = format!("Auftrag {id} wartet");
        assert_eq!(mails_to(&got, ADMIN, &w).len(), 1, "{id}");
        let s = mails_to(&got, STAFF_BOX, &w);
        assert_eq!(s.len(), 1, "{id}");
        assert!(s[0].body.contains("zam2213"), "{}", s[0].body);
    }
    assert_eq!(
        mails_to(&got, ADMIN, &format!("Auftrag {accepted} ausgeführt")).len(),
        1
    );
    // abort: the requester, with staff's comment
    let a = mails_to(
        &got,
        ADMIN,
        &format!("Auftrag {aborted} vom IP-Management abgebrochen"),
    );
    assert_eq!(a.len(), 1);
    assert!(a[0].body.contains("not this MAC"), "{}", a[0].body);
    // withdrawal: requester and staff
    let w = format!("Auftrag {withdrawn} zurückgezogen");
    assert_eq!(mails_to(&got, ADMIN, &w).len(), 1);
    assert_eq!(mails_to(&got, STAFF_BOX, &w).len(), 1);
    // the deputy: the admin hears of the submission and of the change
    let sub = format!("Auftrag {deputy} (change_device) eingegangen");
    assert_eq!(mails_to(&got, DEPUTY, &sub).len(), 1);
    assert_eq!(
        mails_to(&got, ADMIN, &sub).len(),
        1,
        "the admin, not the requester"
    );
    let d = mails_to(
        &got,
        ADMIN,
        &format!("Ihr Vertreter hat {ZAM2212} geändert"),
    );
    assert_eq!(d.len(), 1);
    assert!(d[0].body.contains("00:1a:2b:3c:4d:92"), "{}", d[0].body);
    assert_eq!(
        mails_to(&got, DEPUTY, &format!("Auftrag {deputy} ausgeführt")).len(),
        1
    );
    // no other mail
    // done 3 + 2, accepted 2 + 2 + 1, aborted 2 + 2 + 1, withdrawn 2 + 2 + 2,
    // deputy 3 + 1 + 1
    let expected = 5 + 5 + 5 + 6 + 5;
    assert_eq!(
        got.len(),
        expected,
        "{:#?}",
        got.iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
    );
    crate::cli::terminate(crate::cli::Served {
        child: server.child,
        base: server.base,
        tokens: Vec::new(),
    })
    .await;
    smtp.stop().await;
}
for_both_backends!(mails_follow_the_thesis);

/// Message-IDs received, with how often each came.
fn ids_received(dir: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for m in received(dir) {
        *ids.entry(m.headers["message-id"].clone()).or_insert(0) += 1;
    }
    ids
}

async fn smtp_down_then_up_every_mail_arrives_once_and_550_blocks_no_other(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    let port = free_port();
    let url = database(db, &dir).await;
    // no SMTP server yet
    let server = serve(&url, port).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            server
                .order(
                    "admin",
                    json!({"host": ZAM2212, "hwa": format!("00:1a:2b:3c:4d:a{i}")}),
                )
                .await,
        );
    }
    // the mails wait, tried and not lost
    for _ in 0..600 {
        let n = server.notifications(ids[0]).await;
        if n.iter().any(|n| n["attempts"].as_i64() >= Some(1)) {
            assert!(n.iter().all(|n| n["status"] == "PENDING"), "{n:#?}");
            assert!(n.iter().any(|n| n["last_error"].is_string()), "{n:#?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health: Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(health["mail"]["pending"].as_i64() >= Some(12), "{health}");
    // up, refusing the staff mailbox for good
    let smtp = Smtp::start(port, &mails, &[STAFF_BOX], None).await;
    let listed = server.settled(&ids).await;
    let (staff, others): (Vec<&Value>, Vec<&Value>) =
        listed.iter().partition(|n| n["to"] == "staff");
    assert_eq!(staff.len(), 4);
    for n in staff {
        assert_eq!(n["status"], "FAILED", "{n}");
        assert!(n["last_error"].as_str().unwrap().contains("550"), "{n}");
    }
    assert_eq!(others.len(), 8);
    assert!(others.iter().all(|n| n["status"] == "SENT"), "{others:#?}");
    let got = ids_received(&mails);
    assert_eq!(got.len(), 8);
    assert!(got.values().all(|&n| n == 1), "{got:#?}");
    drop(server);
    smtp.stop().await;
}
for_both_backends!(smtp_down_then_up_every_mail_arrives_once_and_550_blocks_no_other);

async fn killed_mid_send_every_mail_arrives_duplicates_share_the_message_id(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    let hold = dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let port = free_port();
    let smtp = Smtp::start(port, &mails, &[], Some(&hold)).await;
    let url = database(db, &dir).await;
    let mut server = serve(&url, port).await;
    let id = server
        .order(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:b1"}),
        )
        .await;
    // a message is with the SMTP server, unanswered: the send is in flight
    for _ in 0..600 {
        if !received(&mails).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received(&mails).len(), 1, "one send in flight");
    server.kill();
    let _ = server.child.wait().await;
    std::fs::remove_file(&hold).unwrap();
    let server = serve(&url, port).await;
    let listed = server.settled(&[id]).await;
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(listed.iter().all(|n| n["status"] == "SENT"), "{listed:#?}");
    let got = ids_received(&mails);
    let wanted: Vec<String> = listed
        .iter()
        .map(|n| n["message_id"].as_str().unwrap().to_owned())
        .collect();
    // every mail arrived; a copy only of the one in flight, with its Message-ID
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), {
        let mut w = wanted.clone();
        w.sort();
        w
    });
    assert!(got.values().sum::<usize>() <= 4, "{got:#?}");
    drop(server);
    smtp.stop().await;
}
for_both_backends!(killed_mid_send_every_mail_arrives_duplicates_share_the_message_id);

#[tokio::test]
async fn two_instances_on_one_postgres_send_each_mail_once() {
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    let port = free_port();
    let smtp = Smtp::start(port, &mails, &[], None).await;
    let url = auftrag_testkit::fresh_postgres_database().await;
    let a = serve(&url, port).await;
    let b = serve(&url, port).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        ids.push(
            s.order(
                "admin",
                json!({"host": ZAM2212, "hwa": format!("00:1a:2b:3c:4d:c{i}")}),
            )
            .await,
        );
    }
    let listed = a.settled(&ids).await;
    assert_eq!(listed.len(), 30);
    assert!(
        listed
            .iter()
            .all(|n| n["status"] == "SENT" && n["attempts"] == 1),
        "{listed:#?}"
    );
    let got = ids_received(&mails);
    assert_eq!(got.len(), 30);
    assert!(got.values().all(|&n| n == 1), "{got:#?}");
    drop((a, b));
    smtp.stop().await;
}

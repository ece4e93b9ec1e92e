//! The README's commands, run as a user runs them: the real `auftrag` binary.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_auftrag");

pub(crate) struct Served {
    pub child: Child,
    pub base: String,
    pub tokens: Vec<(String, String, String)>,
}

/// Starts `auftrag serve --demo` on a free port and waits until it listens.
pub(crate) async fn serve_demo(db: &str) -> Served {
    serve_demo_with(db, &[]).await
}

/// [`serve_demo`] with more arguments of `serve` (e.g. `--history URL`).
pub(crate) async fn serve_demo_with(db: &str, more: &[&str]) -> Served {
    let mut child = Command::new(BIN)
        .args([
            "--database",
            db,
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start auftrag");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut tokens = Vec::new();
    while tokens.len() < 5 {
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("demo-token lines in time")
            .unwrap()
            .expect("stdout open");
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts.len(), 4, "line {line:?}");
        assert_eq!(parts[0], "demo-token");
        tokens.push((
            parts[1].to_owned(),
            parts[2].to_owned(),
            parts[3].to_owned(),
        ));
    }
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), stderr.next_line())
            .await
            .expect("listening line in time")
            .unwrap()
            .expect("stderr open");
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    Served {
        child,
        base,
        tokens,
    }
}

pub(crate) fn token<'a>(served: &'a Served, role: &str) -> &'a str {
    &served.tokens.iter().find(|t| t.0 == role).expect("role").2
}

pub(crate) async fn terminate(mut served: Served) {
    let pid = served.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), served.child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}

#[tokio::test]
async fn serve_demo_walkthrough_and_token_issue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auftrag.db");
    let db = db.to_str().unwrap();
    let served = serve_demo(db).await;
    let roles: Vec<&str> = served.tokens.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(roles, ["employee", "admin", "deputy", "itb", "staff"]);

    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/v1/orders", served.base))
        .bearer_auth(token(&served, "admin"))
        .json(&json!({"type": "change_device", "fields": {"host": "zam2212.zam.kfa-juelich.de", "hwa": "00:1a:2b:3c:4d:99"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["state"], "COMPLETED", "{body}");
    terminate(served).await;

    // `token issue` on the same database; the token works on a restarted
    // server (the key is kept in the database), and --demo is idempotent.
    let out = std::process::Command::new(BIN)
        .args(["--database", db, "token", "issue", "--person", "1001"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(issued.split('.').count(), 3, "a JWT: {issued}");

    let out = std::process::Command::new(BIN)
        .args(["--database", db, "token", "issue", "--person", "99999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no person with key `99999`"));

    let served = serve_demo(db).await;
    let resp = client
        .get(format!("{}/api/v1/orders", served.base))
        .bearer_auth(&issued)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{}/api/v1/orders?requester=1002", served.base))
        .bearer_auth(token(&served, "staff"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["orders"].as_array().unwrap().len(),
        1,
        "the order survived the restart"
    );
    let devices: Value = client
        .get(format!("{}/api/v1/devices", served.base))
        .bearer_auth(token(&served, "staff"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        devices.as_array().unwrap().len(),
        4,
        "demo data loaded once: {devices}"
    );
    terminate(served).await;
}

/// `auftrag explain` and `auftrag agency-secret` on a demo database, as an
/// administrator runs them.
#[tokio::test]
async fn explain_and_agency_secret_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auftrag.db");
    let db = db.to_str().unwrap();
    terminate(serve_demo(db).await).await;
    let run = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(BIN)
            .args(["--database", db])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, out, err) = run(
        &[
            "explain",
            "--person",
            "1003",
            "--action",
            "change",
            "--host",
            "zam2212.zam.kfa-juelich.de",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Permit by policy `change_or_delete`, rule `deputy_device`"),
        "{out}"
    );
    assert!(out.contains("obligation notify_admin"), "{out}");
    let (ok, out, _) = run(
        &[
            "explain",
            "--person",
            "1001",
            "--action",
            "delete_device",
            "--host",
            "zam2212.zam.kfa-juelich.de",
        ],
        None,
    );
    assert!(ok);
    assert!(out.starts_with("Deny"), "{out}");
    let (ok, _, err) = run(&["explain", "--person", "1001", "--action", "format"], None);
    assert!(!ok);
    assert!(err.contains("unknown order type `format`"), "{err}");

    let (ok, _, err) = run(
        &["agency-secret", "set"],
        Some("# the secret of our agency\nshort\n"),
    );
    assert!(!ok, "a secret under 8 characters is refused");
    assert!(err.contains("8"), "{err}");
    let (ok, _, err) = run(
        &["agency-secret", "set"],
        Some("# the secret of our agency\nlong enough secret\n"),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["agency-secret", "rotate"], None);
    assert!(ok, "{err}");
    let secret = out.trim();
    assert_eq!(secret.len(), 64, "32 random bytes in hex: {secret}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        !err.contains(secret),
        "the secret is printed once, on stdout only"
    );
}

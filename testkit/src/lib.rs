//! Real servers and tools for the integration tests.
//!
//! [`postgres_url`] gives the URL of a PostgreSQL server: the one named by
//! `AUFTRAG_TEST_POSTGRES` (e.g. `postgres://auftrag@127.0.0.1:5432/postgres`),
//! or else a throwaway cluster this process starts with PostgreSQL's
//! `initdb`/`postgres` (from `AUFTRAG_TEST_PG_BIN`, else found on the
//! machine) on a free port and that stops when the process exits.
//!
//! The [`tools`] module finds the other programs the tests run — the Python
//! test servers (SecantusDB, aiosmtpd, schemathesis), Chromium and
//! ChromeDriver — from the variables `cargo xtask test` exports, and starts
//! servers on free ports ([`tools::Service`]).
//!
//! Without what they need, tests fail with a message saying what to install
//! (usually: run `cargo xtask test`): they never pass silently.

pub mod tools;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SERVER: OnceLock<String> = OnceLock::new();

/// The URL of the test server's maintenance database.
pub fn postgres_url() -> &'static str {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("AUFTRAG_TEST_POSTGRES") {
            return url;
        }
        start_cluster().unwrap_or_else(|e| {
            panic!(
                "PostgreSQL tests need a server: {e}.\n\
                 Run the tests with `cargo xtask test` (it installs PostgreSQL when missing), \
                 or install PostgreSQL (Debian: apt-get install postgresql) so that initdb is found, \
                 or set AUFTRAG_TEST_PG_BIN to the folder of initdb and postgres, \
                 or AUFTRAG_TEST_POSTGRES=postgres://USER@HOST:PORT/postgres"
            )
        })
    })
}

/// A new, empty database on the test server; returns its URL.
pub async fn fresh_postgres_database() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_url();
    let name = format!(
        "auftrag_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("AUFTRAG_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Ok(dir);
        }
        return Err(format!(
            "AUFTRAG_TEST_PG_BIN={} holds no initdb and postgres",
            dir.display()
        ));
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        && out.status.success()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // Debian's /usr/bin wrappers need a cluster config; use the real binaries.
        if let Ok(real) = std::fs::canonicalize(&path)
            && let Some(dir) = real.parent()
            && dir.join("postgres").exists()
        {
            return Ok(dir.to_owned());
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no initdb on PATH and no /usr/lib/postgresql".to_owned())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().ok_or_else(|| "no initdb found".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as a user PostgreSQL accepts (it refuses to run as root).
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Server options for durability. Tests run without fsync (fast, and a
/// crash of the test machine loses nothing of value);
/// `AUFTRAG_TEST_PG_DURABLE=1` keeps PostgreSQL's durable defaults (fsync,
/// synchronous commit), for benchmarks that compare against a durable floor.
fn durability_options() -> &'static str {
    if std::env::var("AUFTRAG_TEST_PG_DURABLE").is_ok_and(|v| v == "1") {
        ""
    } else {
        "-c fsync=off"
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("auftrag-test-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    let data = dir.join("data");
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err("cannot hand the data folder to the postgres user".into());
        }
    }
    let out = as_pg_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "auftrag", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    // The server lives as long as this process: the shell waits for the end
    // of its stdin (ours, closed when we exit), then stops the server and
    // removes the data.
    let script = r#"
        "$0" -D "$1/data" -p "$2" -k "$1" -c listen_addresses=127.0.0.1 $3 \
            -c max_connections=300 >"$1/log" 2>&1 &
        pid=$!
        cat >/dev/null
        kill -INT "$pid"; wait "$pid"; rm -rf "$1"
    "#;
    let mut child = as_pg_user(Path::new("sh"))
        .arg("-c")
        .arg(script)
        .arg(bin.join("postgres"))
        .arg(&dir)
        .arg(port.to_string())
        .arg(durability_options())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    // Kept open for the life of the process on purpose.
    std::mem::forget(stdin);
    std::mem::forget(child);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!("postgres did not start within 60 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::io::stderr().flush();
    Ok(format!("postgres://auftrag@127.0.0.1:{port}/postgres"))
}

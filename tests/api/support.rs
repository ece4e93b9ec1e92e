//! A test server: a fresh database (a SQLite file, or a new database on the
//! test PostgreSQL server) with the demo data, the engine serving on
//! 127.0.0.1:0, and a token per demo role.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use auftrag_engine::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use tempfile::TempDir;

/// Runs an async test body once per backend: `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($(#[doc = $doc:literal])* async fn $name:ident($s:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn body($s: TestServer) $body

            #[tokio::test]
            async fn sqlite() {
                body(TestServer::start_on(Db::Sqlite).await).await
            }

            #[tokio::test]
            async fn postgres() {
                body(TestServer::start_on(Db::Postgres).await).await
            }
        }
    };
}
pub(crate) use on_both_backends;

/// Runs `async fn name(db: Db)` once per backend, as `name::sqlite` and
/// `name::postgres`; the test attribute can be given (`#[tokio::test]` by
/// default).
macro_rules! for_both_backends {
    ($name:ident) => {
        $crate::support::for_both_backends!($name, #[tokio::test]);
    };
    ($name:ident, #[$test:meta]) => {
        mod $name {
            #[$test]
            async fn sqlite() {
                super::$name($crate::support::Db::Sqlite).await
            }
            #[$test]
            async fn postgres() {
                super::$name($crate::support::Db::Postgres).await
            }
        }
    };
}
pub(crate) use for_both_backends;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const ZAM2212: &str = "zam2212.zam.kfa-juelich.de";
pub const ZAM2212_MAC: &str = "00:1a:2b:3c:4d:01";
/// The MAC of zam2213, another device.
pub const ZAM2213_MAC: &str = "00:1a:2b:3c:4d:02";
/// The MAC of jsclab7, a third device.
pub const JSCLAB7_MAC: &str = "00:1a:2b:3c:4d:03";
pub const ZAM2212_PORT: i64 = 7001;

pub struct TestServer {
    pub base: String,
    /// The database URL the server uses.
    pub db_url: String,
    pub tokens: HashMap<String, String>,
    /// The engine the server runs (to issue or revoke tokens in tests).
    pub engine: Arc<Engine>,
    client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestServer {
    /// A server on a SQLite file.
    pub async fn start() -> Self {
        Self::start_on(Db::Sqlite).await
    }

    pub async fn start_on(db: Db) -> Self {
        Self::start_with(db, auftrag_engine::http::server::Limits::default()).await
    }

    /// A server whose connection and read-time limits are `limits`.
    pub async fn start_with(db: Db, limits: auftrag_engine::http::server::Limits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = match db {
            Db::Sqlite => {
                let path: PathBuf = dir.path().join("auftrag.db");
                format!("sqlite://{}", path.to_str().expect("utf-8 path"))
            }
            Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
        };
        let engine = Engine::open(&db_url, auftrag::domain())
            .await
            .expect("open engine");
        let mut tokens = HashMap::new();
        for person in engine.seed_demo().await.expect("seed demo") {
            let token = engine
                .issue_token(&person.person, time::Duration::hours(1))
                .await
                .expect("issue token");
            tokens.insert(person.role.to_owned(), token);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let engine = Arc::new(engine);
        tokio::spawn(auftrag_engine::http::server::serve_with(
            engine.clone(),
            listener,
            async {
                let _ = rx.await;
            },
            limits,
        ));
        Self {
            base,
            db_url,
            tokens,
            engine,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    pub fn token(&self, role: &str) -> &str {
        &self.tokens[role]
    }

    /// A request as `role` (`None`: no token) with an optional JSON body.
    pub async fn call(
        &self,
        role: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(role) = role {
            req = req.bearer_auth(self.token(role));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        reply(resp).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        reply(req.send().await.expect("request")).await
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn submit(&self, role: &str, fields: Value) -> Reply {
        self.call(
            Some(role),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": "change_device", "fields": fields})),
        )
        .await
    }

    pub async fn order(&self, id: i64) -> Value {
        let r = self
            .call(
                Some("staff"),
                Method::GET,
                &format!("/api/v1/orders/{id}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Opens the device database directly, as another program would.
    pub async fn db(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.db_url)
            .await
            .expect("open the database")
    }

    pub async fn hwa(&self, port: i64) -> Option<String> {
        sqlx::query_scalar("SELECT HARDW_ADDR FROM x_port WHERE PT_OBJ_ID = $1")
            .bind(port)
            .fetch_one(&self.db().await)
            .await
            .expect("read x_port")
    }
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

/// The state names of an order's history.
pub fn states(doc: &Value) -> Vec<String> {
    doc["states"]
        .as_array()
        .expect("states array")
        .iter()
        .map(|s| s["state"].as_str().expect("state name").to_owned())
        .collect()
}

pub fn assert_problem(r: &Reply, status: StatusCode, detail_contains: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.body);
    assert_eq!(r.body["status"], status.as_u16(), "{}", r.body);
    let detail = r.body["detail"].as_str().expect("detail");
    assert!(
        detail.contains(detail_contains),
        "detail {detail:?} should contain {detail_contains:?}"
    );
}

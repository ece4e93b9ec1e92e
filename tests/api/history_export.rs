//! The MongoDB history store (issue 19), against SecantusDB (MongoDB's wire
//! protocol; a mongod cannot be installed on the test machines): every
//! order's document arrives exactly once and equal to the SQL history, also
//! when MongoDB goes away mid-load and comes back, and when two `serve`
//! instances export from one PostgreSQL; the collection's validator, made
//! from the definitions, refuses malformed documents; `history export
//! --all` fills an empty store.

use std::collections::BTreeMap;
use std::time::Duration;

use auftrag_engine::history::mongo::HistoryDb;
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{Db, ZAM2212};

const BIN: &str = env!("CARGO_BIN_EXE_auftrag");

/// A running `auftrag serve --demo [--history URL]`.
struct Serve {
    _served: crate::cli::Served,
    base: String,
    tokens: BTreeMap<String, String>,
    http: reqwest::Client,
}

async fn serve(db: &str, history: Option<&str>) -> Serve {
    let more: Vec<&str> = history
        .map(|url| vec!["--history", url])
        .unwrap_or_default();
    let served = crate::cli::serve_demo_with(db, &more).await;
    Serve {
        base: served.base.clone(),
        tokens: served
            .tokens
            .iter()
            .map(|(role, _, token)| (role.clone(), token.clone()))
            .collect(),
        _served: served,
        http: reqwest::Client::new(),
    }
}

impl Serve {
    /// Places a change of zam2212's MAC (every tenth one malformed, so
    /// that some orders end with an error); returns its id.
    async fn order(&self, n: usize) -> i64 {
        let hwa = if n % 10 == 9 {
            format!("00:1a:2b:zz:{:02x}", n % 256)
        } else {
            format!("00:1a:2b:3c:{:02x}:{:02x}", 0x80 + n / 256, n % 256)
        };
        let resp = self
            .http
            .post(format!("{}/api/v1/orders", self.base))
            .bearer_auth(&self.tokens["admin"])
            .json(&json!({"type": "change_device", "fields": {"host": ZAM2212, "hwa": hwa}}))
            .send()
            .await
            .expect("POST /api/v1/orders");
        assert_eq!(resp.status(), 201, "order {n}");
        let v: Value = resp.json().await.unwrap();
        v["id"].as_i64().unwrap()
    }

    async fn health(&self) -> Value {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("GET /healthz")
            .json()
            .await
            .unwrap()
    }

    /// Waits until the history export has nothing pending.
    async fn exported(&self) -> Value {
        for _ in 0..600 {
            let h = self.health().await;
            if h["history"]["pending"] == 0 {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the export did not catch up: {}", self.health().await);
    }
}

fn mongo_url(mongo: &auftrag_testkit::tools::Service) -> String {
    format!(
        "mongodb://127.0.0.1:{}/history?directConnection=true",
        mongo.port()
    )
}

async fn database(db: Db, dir: &tempfile::TempDir) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("auftrag.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    }
}

/// Every order of the database as MongoDB should hold it, by id.
async fn expected_documents(db_url: &str) -> BTreeMap<i64, Document> {
    let defs = auftrag::domain().definitions();
    let store = auftrag_engine::store::Store::connect(db_url)
        .await
        .expect("connect");
    let mut conn = store.acquire().await.unwrap();
    let orders = auftrag_engine::store::orders_with_version(&mut conn, defs, &[], 0, 1_000_000)
        .await
        .expect("read orders");
    let documents = auftrag_engine::history::exporter::mongo_documents(&mut conn, defs, &orders)
        .await
        .expect("the documents");
    orders
        .iter()
        .map(|(order, _)| order.data.id.unwrap())
        .zip(documents)
        .collect()
}

/// The documents MongoDB holds, by id (asserting each id once).
async fn mongo_documents(url: &str) -> BTreeMap<i64, Document> {
    use futures::TryStreamExt;
    let history = HistoryDb::connect(url).await.unwrap();
    let all: Vec<Document> = history
        .orders
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut by_id = BTreeMap::new();
    for d in all {
        let id = d.get_i64("_id").expect("an _id of type long");
        assert!(by_id.insert(id, d).is_none(), "order {id} twice");
    }
    by_id
}

fn assert_same(expected: &BTreeMap<i64, Document>, actual: &BTreeMap<i64, Document>) {
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the orders in MongoDB are not those of the database"
    );
    for (id, e) in expected {
        assert_eq!(e, &actual[id], "order {id} differs from the SQL history");
    }
}

/// MongoDB is killed in the middle of a load and started again: orders keep
/// flowing meanwhile, `/healthz` tells the export is behind and why, and
/// afterwards MongoDB holds every order once, equal to the database.
async fn mongodb_going_away_loses_nothing(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let db_url = database(db, &dir).await;
    let mut mongo = auftrag_testkit::tools::secantusdb();
    let url = mongo_url(&mongo);
    let server = serve(&db_url, Some(&url)).await;
    for n in 0..20 {
        server.order(n).await;
    }
    server.exported().await;

    mongo.kill();
    for n in 20..40 {
        server.order(n).await;
    }
    let mut seen_error = false;
    for _ in 0..300 {
        let h = server.health().await;
        assert!(
            h["history"]["pending"].as_i64().unwrap() > 0,
            "orders are waiting to be exported: {h}"
        );
        if h["history"]["last_error"].is_string() {
            seen_error = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_error, "/healthz names the export's error");
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(&server.tokens["staff"])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pending: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("auftrag_history_export_pending "))
        .expect("the export's gauge")
        .parse()
        .unwrap();
    assert!(pending > 0, "{metrics}");

    mongo.restart();
    for n in 40..50 {
        server.order(n).await;
    }
    let health = server.exported().await;
    assert!(health["history"]["last_error"].is_null(), "{health}");
    let expected = expected_documents(&db_url).await;
    assert_eq!(expected.len(), 50);
    assert_same(&expected, &mongo_documents(&url).await);
}
crate::support::for_both_backends!(mongodb_going_away_loses_nothing);

/// Two instances on one PostgreSQL export at once, claiming different
/// outbox entries: no document lost, none replaced by an older version.
#[tokio::test]
async fn two_instances_export_from_one_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = database(Db::Postgres, &dir).await;
    let mongo = auftrag_testkit::tools::secantusdb();
    let url = mongo_url(&mongo);
    let a = std::sync::Arc::new(serve(&db_url, Some(&url)).await);
    let b = std::sync::Arc::new(serve(&db_url, Some(&url)).await);
    let mut tasks = Vec::new();
    for (k, server) in [a.clone(), b.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..30 {
                server.order(k * 100 + n).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.exported().await;
    b.exported().await;
    let expected = expected_documents(&db_url).await;
    assert_eq!(expected.len(), 60);
    assert_same(&expected, &mongo_documents(&url).await);
}

/// The validator made from the definitions refuses, with MongoDB's own
/// "Document failed validation", what is not a history document of them.
#[tokio::test]
async fn the_validator_refuses_malformed_documents() {
    let mongo = auftrag_testkit::tools::secantusdb();
    let history = HistoryDb::connect(&mongo_url(&mongo)).await.unwrap();
    let defs = auftrag::domain().definitions();
    history.ensure(defs, Vec::new()).await.expect("set up");
    let good = doc! {
        "_id": 1_i64, "version": 1_i64, "id": 1_i64, "host_id": ZAM2212, "requester": "1002",
        "type": "change_device", "state": "COMPLETED", "closed": true,
        "created_at": "2026-12-06T10:00:00.000Z", "updated_at": "2026-12-06T10:00:00.010Z",
        "fields": { "host": ZAM2212, "hwa": "00:1a:2b:3c:4d:99" },
        "changed": { "hwa": ["00:1a:2b:3c:4d:01", "00:1a:2b:3c:4d:99"] },
        "states": [
            { "state": "INSERTED", "at": "2026-12-06T10:00:00.000Z" },
            { "state": "COMPLETED", "at": "2026-12-06T10:00:00.010Z" },
        ],
        "errors": [], "warnings": [], "accepted_warnings": [],
        "closed_at": "2026-12-06T10:00:00.010Z", "duration_ms": 10_i64,
        "waiting_ms": 0_i64, "waited": false,
    };
    history
        .orders
        .insert_one(good.clone())
        .await
        .expect("a well-formed document is taken");
    type Breaks = Box<dyn Fn(&mut Document)>;
    let broken: Vec<(&str, Breaks)> = vec![
        (
            "an unknown order type",
            Box::new(|d| {
                d.insert("type", "change_devcie");
            }),
        ),
        (
            "an unknown state",
            Box::new(|d| {
                d.insert("state", "DONE");
            }),
        ),
        (
            "a field the order type does not have",
            Box::new(|d| {
                d.get_document_mut("fields")
                    .unwrap()
                    .insert("colour", "blue");
            }),
        ),
        (
            "a field of a wrong type",
            Box::new(|d| {
                d.get_document_mut("fields").unwrap().insert("hwa", 17_i64);
            }),
        ),
        (
            "a change that is not [old, new]",
            Box::new(|d| {
                d.insert("changed", doc! { "hwa": "00:1a:2b:3c:4d:99" });
            }),
        ),
        (
            "no states",
            Box::new(|d| {
                d.remove("states");
            }),
        ),
        (
            "a version that is text",
            Box::new(|d| {
                d.insert("version", "1");
            }),
        ),
    ];
    for (i, (what, breaks)) in broken.iter().enumerate() {
        let mut d = good.clone();
        d.insert("_id", 100 + i as i64);
        breaks(&mut d);
        let e = history
            .orders
            .insert_one(d)
            .await
            .expect_err(&format!("{what} is refused"));
        assert!(
            e.to_string().contains("Document failed validation"),
            "{what}: {e}"
        );
    }
}

/// `auftrag history export --all` fills an empty MongoDB from the database
/// of a server that ran without `--history`; a second run finds every
/// document up to date.
#[tokio::test]
async fn export_all_fills_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = database(Db::Sqlite, &dir).await;
    {
        let server = serve(&db_url, None).await;
        for n in 0..15 {
            server.order(n).await;
        }
    }
    let mongo = auftrag_testkit::tools::secantusdb();
    let url = mongo_url(&mongo);
    let export = |expect: &'static str| {
        let (db_url, url) = (db_url.clone(), url.clone());
        async move {
            let out = Command::new(BIN)
                .args(["--database", &db_url, "history", "export", "--all"])
                .args(["--history", &url])
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(expect), "{stdout}");
        }
    };
    export("exported 15 orders").await;
    assert_same(
        &expected_documents(&db_url).await,
        &mongo_documents(&url).await,
    );
    export("(0 documents written").await;
}

/// A rollback links both orders in their MongoDB documents too: the order
/// rolled back gets a new version with `links.rolled_back_by`.
#[tokio::test]
async fn rollback_links_reach_mongodb() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = database(Db::Sqlite, &dir).await;
    let mongo = auftrag_testkit::tools::secantusdb();
    let url = mongo_url(&mongo);
    let server = serve(&db_url, Some(&url)).await;
    let id = server.order(1).await;
    server.exported().await;
    let resp = server
        .http
        .post(format!("{}/api/v1/orders/{id}/rollback", server.base))
        .bearer_auth(&server.tokens["staff"])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let rollback = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    server.exported().await;
    let documents = mongo_documents(&url).await;
    let original = &documents[&id];
    assert_eq!(
        original.get_document("links").unwrap(),
        &doc! { "rolled_back_by": [rollback] },
        "{original}"
    );
    assert_eq!(
        documents[&rollback].get_document("links").unwrap(),
        &doc! { "rollback_of": id }
    );
    assert_same(&expected_documents(&db_url).await, &documents);
}

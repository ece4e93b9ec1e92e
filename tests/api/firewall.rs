//! The second domain of `examples/firewall/`: only XML and handler functions,
//! run through the unchanged engine over HTTP on a real SQLite file.

#[path = "../../examples/firewall/firewall.rs"]
#[allow(dead_code)]
mod domain;

use std::sync::Arc;

use auftrag_engine::Engine;
use serde_json::{Value, json};

struct Fw {
    base: String,
    requester: String,
    staff: String,
    db: std::path::PathBuf,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Fw {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fw.db");
        let engine = Engine::open(db.to_str().unwrap(), Arc::new(domain::Firewall))
            .await
            .expect("open engine");
        let mut tokens = std::collections::HashMap::new();
        for p in engine.seed_demo().await.unwrap() {
            let t = engine
                .issue_token(&p.person, time::Duration::hours(1))
                .await
                .unwrap();
            tokens.insert(p.role, t);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(auftrag_engine::http::server::serve(
            Arc::new(engine),
            listener,
            async {
                let _ = rx.await;
            },
        ));
        Fw {
            base,
            requester: tokens["requester"].clone(),
            staff: tokens["staff"].clone(),
            db,
            client: reqwest::Client::new(),
            _shutdown: tx,
            _dir: dir,
        }
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn unlock(&self, fields: Value) -> Value {
        let (status, body) = self
            .post(
                &self.requester,
                "/api/v1/orders",
                json!({"type": "unlock", "fields": fields}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The jobs in the database: queue, order, input.
    async fn jobs(&self) -> Vec<(String, i64, String)> {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.db.display()))
            .await
            .unwrap();
        let rows: Vec<(String, i64, Vec<u8>)> =
            sqlx::query_as("SELECT queue, order_id, input FROM auftrag_jobs ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(q, o, i)| (q, o, String::from_utf8(i).unwrap()))
            .collect()
    }

    async fn rules(&self) -> i64 {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.db.display()))
            .await
            .unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM fw_rule")
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}

fn https(dest: &str) -> Value {
    json!({"source": "134.94.0.0/16", "destination": dest, "port": 443, "protocol": "tcp", "duration": 8})
}

#[tokio::test]
async fn firewall_domain_runs_through_the_engine() {
    let fw = Fw::start().await;

    // low risk: opened at once (named condition + resulting-state map);
    // an e-mail and a URL field (issue 18, item 7) are taken as they are
    let mut fields = https("10.1.2.3");
    fields["contact"] = json!("Jane.Doe@Example.ORG");
    fields["ticket"] = json!("https://tickets.example.org/change/4711");
    let r = fw.unlock(fields).await;
    assert_eq!(r["state"], "OPEN", "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(fw.rules().await, 1);
    // the built-in check `authorization` enforced policies.xml: its
    // decision is in the order's history, which the requester and the
    // security team may read (read_order), nobody else
    let id = r["id"].as_i64().unwrap();
    let (status, doc) = fw.get(&fw.staff, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["decisions"][0]["decision"], "Permit", "{doc}");
    assert_eq!(
        doc["decisions"][0]["explanation"]["policy"], "unlock",
        "{doc}"
    );
    let (status, doc) = fw.get(&fw.requester, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(status, 200, "{doc}");
    // the action's job, in the queue its typed handle names (item 6)
    assert_eq!(
        fw.jobs().await,
        [(
            "rules".to_owned(),
            r["id"].as_i64().unwrap(),
            "134.94.0.0/16 -> 10.1.2.3:443/tcp".to_owned()
        )]
    );

    // malformed e-mail addresses and URLs are the order's errors, named
    for (contact, ticket) in [
        ("jane.doe", "tickets.example.org/4711"),
        ("jane@", "javascript:alert(1)"),
    ] {
        let mut fields = https("10.1.2.3");
        fields["contact"] = json!(contact);
        fields["ticket"] = json!(ticket);
        let r = fw.unlock(fields).await;
        assert_eq!(r["state"], "REJECTED", "{r}");
        let errors: Vec<(&str, &str)> = r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["check"].as_str().unwrap(), e["field"].as_str().unwrap()))
            .collect();
        assert_eq!(errors, [("syntax", "contact"), ("syntax", "ticket")], "{r}");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("is not an e-mail address"),
            "{r}"
        );
        assert!(
            r["errors"][1]["message"]
                .as_str()
                .unwrap()
                .contains("is not a URL"),
            "{r}"
        );
    }
    assert_eq!(fw.rules().await, 1);

    // bad values are recorded and rejected with the field named (parse at the edge)
    let r = fw
        .unlock(json!({"source": "134.94.0.0/33", "destination": "10.1.2.3", "port": 70000, "protocol": "icmp", "duration": 8}))
        .await;
    assert_eq!(r["state"], "REJECTED", "{r}");
    let fields: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["source", "port", "protocol"], "{r}");
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["check"] == "syntax")
    );

    // a domain check: telnet is never opened
    let r = fw
        .unlock(json!({"source": "134.94.0.0/16", "destination": "10.1.2.3", "port": 23, "protocol": "tcp", "duration": 1}))
        .await;
    assert_eq!(r["state"], "REJECTED");
    assert_eq!(r["errors"][0]["check"], "check_port_allowed");

    // not low risk: review by staff, then opened
    let r = fw
        .unlock(json!({"source": "134.94.0.0/16", "destination": "10.1.2.4", "port": 22, "protocol": "tcp", "duration": 48}))
        .await;
    assert_eq!(r["state"], "REVIEW", "{r}");
    let id = r["id"].as_i64().unwrap();
    let (status, r) = fw
        .post(&fw.staff, &format!("/api/v1/orders/{id}/accept"), json!({}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "OPEN", "{r}");
    assert_eq!(fw.rules().await, 2);

    // the resulting-state map's fallback: the host is full, so review
    let r = fw.unlock(https("10.1.2.3")).await;
    assert_eq!(r["state"], "OPEN");
    let r = fw.unlock(https("10.1.2.3")).await;
    assert_eq!(r["state"], "REVIEW", "{r}");
    assert_eq!(fw.rules().await, 3);

    // the definitions endpoint serves this domain's model
    let defs: Value = fw
        .client
        .get(format!("{}/api/v1/definitions", fw.base))
        .bearer_auth(&fw.requester)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(defs["workflows"][0]["name"], "freischaltung");
    assert_eq!(defs["order_types"][0]["fields"][2]["ty"], "integer");
}

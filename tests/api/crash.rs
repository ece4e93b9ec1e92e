//! Crash safety: the server is killed with SIGKILL in the middle of a load of
//! orders; after a restart every order is either fully applied and COMPLETED
//! or not applied at all, nothing is left half-way, and the device database
//! agrees with the history.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::cli::{serve_demo, terminate, token};
use crate::support::Db;

const PORTS: [(i64, &str, &str); 4] = [
    (7001, "zam2212.zam.kfa-juelich.de", "00:1a:2b:3c:4d:01"),
    (7002, "zam2213.zam.kfa-juelich.de", "00:1a:2b:3c:4d:02"),
    (7003, "jsclab7.jsc.kfa-juelich.de", "00:1a:2b:3c:4d:03"),
    (7004, "lblprn1.prn.kfa-juelich.de", "00:1a:2b:3c:4d:04"),
];

async fn crash_mid_load(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("auftrag.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    };
    let served = serve_demo(&url).await;
    let staff = token(&served, "staff").to_owned();
    let base = served.base.clone();

    // Four clients send orders without pause; each gives an interface a
    // fresh, unique MAC.
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let (base, staff, answered) = (base.clone(), staff.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut completed = Vec::new();
            for n in 0u64.. {
                let (_, host, _) = PORTS[(n as usize + client as usize) % PORTS.len()];
                let mac = format!("02:00:00:{client:02x}:{:02x}:{:02x}", n / 256, n % 256);
                let sent = http
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&staff)
                    .json(&json!({"type": "change_device", "fields": {"host": host, "hwa": mac}}))
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                let Ok(body) = resp.json::<Value>().await else {
                    break;
                };
                answered.fetch_add(1, Ordering::SeqCst);
                if body["state"] == "COMPLETED" {
                    completed.push(body["id"].as_i64().unwrap());
                }
            }
            completed
        }));
    }
    // Kill it while orders are in flight.
    while answered.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut served = served;
    served.child.start_kill().unwrap();
    served.child.wait().await.unwrap();
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 50,
        "the load ran: {}",
        acknowledged.len()
    );

    // Restart: unfinished orders are resumed.
    let served = serve_demo(&url).await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT id, state, closed, changes FROM auftrag_orders ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut by_id = HashMap::new();
    // old MAC → new MAC of every completed order; MACs are unique per order.
    let mut chain: HashMap<String, String> = HashMap::new();
    for row in &rows {
        let id: i64 = row.try_get(0).unwrap();
        let state: String = row.try_get(1).unwrap();
        assert!(
            ["COMPLETED", "ABORTED", "WAITING"].contains(&state.as_str()),
            "order {id} was left in {state} after the restart"
        );
        let changes: Value = serde_json::from_str(&row.try_get::<String, _>(3).unwrap()).unwrap();
        if state == "COMPLETED" {
            let [old, new] =
                [&changes["hwa"][0], &changes["hwa"][1]].map(|v| v.as_str().unwrap().to_owned());
            assert!(
                chain.insert(old.clone(), new).is_none(),
                "two completed orders changed {old}: an order was applied twice or read a stale value"
            );
        } else {
            assert_eq!(
                changes,
                json!({}),
                "order {id} in {state} changed something"
            );
        }
        by_id.insert(id, state);
    }
    for id in &acknowledged {
        assert_eq!(
            by_id.get(id).map(String::as_str),
            Some("COMPLETED"),
            "acknowledged order {id} is lost"
        );
    }
    // Each interface's MAC is the end of the chain of its completed orders,
    // and every completed order is on one chain.
    let mut on_chains = 0;
    for (port, _, initial) in PORTS {
        let mut mac = initial.to_owned();
        while let Some(next) = chain.get(&mac) {
            mac = next.clone();
            on_chains += 1;
        }
        let current: String =
            sqlx::query_scalar("SELECT HARDW_ADDR FROM x_port WHERE PT_OBJ_ID = $1")
                .bind(port)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(current, mac, "port {port} disagrees with its history");
    }
    assert_eq!(
        on_chains,
        chain.len(),
        "every completed order's change is in the database"
    );
    pool.close().await;
    terminate(served).await;
}

#[tokio::test]
async fn sigkill_mid_load_sqlite() {
    crash_mid_load(Db::Sqlite).await;
}

#[tokio::test]
async fn sigkill_mid_load_postgres() {
    crash_mid_load(Db::Postgres).await;
}

//! Crash safety: the server is killed with SIGKILL in the middle of a load of
//! orders; after a restart every order is either fully applied and COMPLETED
//! or not applied at all, nothing is left half-way, and the device database
//! agrees with the history. Two loads: changes of the same interfaces (each
//! order reads what the one before wrote), and devices registered, changed
//! and deleted (each order writes several tables).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use tokio::task::JoinHandle;

use crate::cli::{Served, serve_demo, terminate, token};
use crate::support::{Db, for_both_backends};

const PORTS: [(i64, &str, &str); 4] = [
    (7001, "zam2212.zam.kfa-juelich.de", "00:1a:2b:3c:4d:01"),
    (7002, "zam2213.zam.kfa-juelich.de", "00:1a:2b:3c:4d:02"),
    (7003, "jsclab7.jsc.kfa-juelich.de", "00:1a:2b:3c:4d:03"),
    (7004, "lblprn1.prn.kfa-juelich.de", "00:1a:2b:3c:4d:04"),
];

/// A database for one test: a SQLite file in `dir`, or a fresh PostgreSQL
/// database.
async fn database(db: Db, dir: &tempfile::TempDir) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("auftrag.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    }
}

/// A client of the load: sends orders as staff and counts the answers.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    staff: String,
    answered: Arc<AtomicUsize>,
}

impl Client {
    fn of(served: &Served, answered: &Arc<AtomicUsize>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: served.base.clone(),
            staff: token(served, "staff").to_owned(),
            answered: answered.clone(),
        }
    }

    /// Places an order; `None` once the server is gone.
    async fn order(&self, order_type: &str, fields: Value) -> Option<Value> {
        let resp = self
            .http
            .post(format!("{}/api/v1/orders", self.base))
            .bearer_auth(&self.staff)
            .json(&json!({"type": order_type, "fields": fields}))
            .send()
            .await
            .ok()?;
        let body = resp.json::<Value>().await.ok()?;
        self.answered.fetch_add(1, Ordering::SeqCst);
        Some(body)
    }
}

/// Starts the demo server on a fresh database of `db` (a SQLite file in
/// `dir`) with four clients that each run `client` (with their number)
/// until the server is gone and return the ids they were told were
/// COMPLETED; kills the server with SIGKILL once 60 orders came back, and
/// starts it again (it resumes unfinished orders). Returns the
/// acknowledged ids, the new server and a pool on the database.
async fn crash_under_load<F, Fut>(
    db: Db,
    dir: &tempfile::TempDir,
    client: F,
) -> (Vec<i64>, Served, AnyPool)
where
    F: Fn(Client, u64) -> Fut,
    Fut: std::future::Future<Output = Vec<i64>> + Send + 'static,
{
    let url = database(db, dir).await;
    let mut served = serve_demo(&url).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<JoinHandle<Vec<i64>>> = (0..4u64)
        .map(|n| tokio::spawn(client(Client::of(&served, &answered), n)))
        .collect();
    while answered.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
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
    let served = serve_demo(&url).await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    (acknowledged, served, pool)
}

/// An order as stored after the restart.
struct Stored {
    id: i64,
    order_type: String,
    state: String,
    fields: Value,
    changes: Value,
}

/// Every stored order, by id; asserts that none was left half-way (each is
/// COMPLETED, ABORTED or WAITING, and only a COMPLETED one changed
/// something) and that every acknowledged order is COMPLETED.
async fn stored_orders(pool: &AnyPool, acknowledged: &[i64]) -> Vec<Stored> {
    let rows = sqlx::query(
        "SELECT id, order_type, state, fields, changes FROM auftrag_orders ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let json = |row: &sqlx::any::AnyRow, i: usize| -> Value {
        serde_json::from_str(&row.try_get::<String, _>(i).unwrap()).unwrap()
    };
    let orders: Vec<Stored> = rows
        .iter()
        .map(|row| Stored {
            id: row.try_get(0).unwrap(),
            order_type: row.try_get(1).unwrap(),
            state: row.try_get(2).unwrap(),
            fields: json(row, 3),
            changes: json(row, 4),
        })
        .collect();
    for o in &orders {
        assert!(
            ["COMPLETED", "ABORTED", "WAITING"].contains(&o.state.as_str()),
            "order {} was left in {} after the restart",
            o.id,
            o.state
        );
        if o.state != "COMPLETED" {
            assert_eq!(
                o.changes,
                json!({}),
                "order {} in {} changed something",
                o.id,
                o.state
            );
        }
    }
    let states: HashMap<i64, &str> = orders.iter().map(|o| (o.id, o.state.as_str())).collect();
    for id in acknowledged {
        assert_eq!(
            states.get(id).copied(),
            Some("COMPLETED"),
            "acknowledged order {id} is lost"
        );
    }
    orders
}

async fn crash_mid_load(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    // Each client gives an interface a fresh, unique MAC, again and again.
    let (acknowledged, served, pool) = crash_under_load(db, &dir, |c, client| async move {
        let mut completed = Vec::new();
        for n in 0u64.. {
            let (_, host, _) = PORTS[(n as usize + client as usize) % PORTS.len()];
            let mac = format!("02:00:00:{client:02x}:{:02x}:{:02x}", n / 256, n % 256);
            let Some(body) = c
                .order("change_device", json!({"host": host, "hwa": mac}))
                .await
            else {
                break;
            };
            if body["state"] == "COMPLETED" {
                completed.push(body["id"].as_i64().unwrap());
            }
        }
        completed
    })
    .await;
    let orders = stored_orders(&pool, &acknowledged).await;

    // old MAC → new MAC of every completed order; MACs are unique per order.
    let mut chain: HashMap<String, String> = HashMap::new();
    for o in orders.iter().filter(|o| o.state == "COMPLETED") {
        let [old, new] =
            [&o.changes["hwa"][0], &o.changes["hwa"][1]].map(|v| v.as_str().unwrap().to_owned());
        assert!(
            chain.insert(old.clone(), new).is_none(),
            "two completed orders changed {old}: an order was applied twice or read a stale value"
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

/// The device of the mixed load's cycle `n` of `client`: host, alias and
/// IPv4.
fn crash_device(client: u64, n: u64) -> (String, String, String) {
    let host = format!("crash-{client}-{n}");
    let alias = format!("{host}.crash.kfa-juelich.de");
    // unique per device (fewer than 250 cycles run before the kill)
    let ipv4 = format!("10.20.{}.{}", 100 + client, n % 250 + 1);
    (host, alias, ipv4)
}

/// The MAC of the device of cycle `n` of `client` as registered (`step` 1)
/// or changed (2).
fn crash_mac(client: u64, n: u64, step: u8) -> String {
    format!(
        "02:{step:02x}:00:{client:02x}:{:02x}:{:02x}",
        n / 256,
        n % 256
    )
}

/// What the history says a device of the mixed load should look like.
#[derive(Default, Debug)]
struct Expected {
    registered: bool,
    deleted: bool,
    ipv4: String,
    mac: String,
}

async fn count(pool: &AnyPool, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn crash_mid_mixed_load(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    // Each client registers a device, changes its MAC and deletes it, again
    // and again.
    let (acknowledged, served, pool) = crash_under_load(db, &dir, |c, client| async move {
        let mut completed = Vec::new();
        'load: for n in 0u64.. {
            let (host, alias, ipv4) = crash_device(client, n);
            let steps = [
                (
                    "register_device",
                    json!({"host": host, "dv_class": "PC", "geb": "16.3", "raum": "R 1",
                           "admin": "1002",
                           "interfaces": [{"net": "10.20.0.0/16", "ipv4": ipv4,
                                           "hwa": crash_mac(client, n, 1),
                                           "aliases": [{"name": alias, "canonical": "Y"}]}]}),
                ),
                (
                    "change_device",
                    json!({"host": alias, "hwa": crash_mac(client, n, 2)}),
                ),
                ("delete_device", json!({"host": alias})),
            ];
            for (order_type, fields) in steps {
                let Some(body) = c.order(order_type, fields).await else {
                    break 'load;
                };
                if body["state"] == "COMPLETED" {
                    completed.push(body["id"].as_i64().unwrap());
                }
            }
        }
        completed
    })
    .await;
    let orders = stored_orders(&pool, &acknowledged).await;

    // Replay the completed orders of the history, device by device, in the
    // order their client sent them (each after the answer to the one
    // before; their ids increase too, see
    // `postgres_order_ids_increase_across_blocks_taken_at_once`).
    let step = |order_type: &str| {
        ["register_device", "change_device", "delete_device"]
            .iter()
            .position(|t| *t == order_type)
            .unwrap_or_else(|| panic!("unexpected order type {order_type}"))
    };
    let label_of = |o: &Stored| {
        let host = o.fields["host"].as_str().unwrap();
        host.split('.').next().unwrap().to_owned()
    };
    let mut completed: Vec<&Stored> = orders.iter().filter(|o| o.state == "COMPLETED").collect();
    completed.sort_by_key(|o| (label_of(o), step(&o.order_type)));
    let mut devices: BTreeMap<String, Expected> = BTreeMap::new();
    for o in completed {
        let label = label_of(o);
        let device = devices.entry(label.clone()).or_default();
        match o.order_type.as_str() {
            "register_device" => {
                assert!(
                    !device.registered,
                    "{label} registered twice (order {})",
                    o.id
                );
                let interface = &o.fields["interfaces"][0];
                device.registered = true;
                device.ipv4 = interface["ipv4"].as_str().unwrap().to_owned();
                device.mac = interface["hwa"].as_str().unwrap().to_owned();
            }
            "change_device" => {
                assert!(
                    device.registered && !device.deleted,
                    "order {} changed {label}, which the history does not have",
                    o.id
                );
                assert_eq!(
                    o.changes["hwa"][0].as_str(),
                    Some(device.mac.as_str()),
                    "order {} read a MAC of {label} the history does not have",
                    o.id
                );
                device.mac = o.changes["hwa"][1].as_str().unwrap().to_owned();
            }
            "delete_device" => {
                assert!(
                    device.registered && !device.deleted,
                    "order {} deleted {label}, which the history does not have",
                    o.id
                );
                device.deleted = true;
            }
            _ => unreachable!("sorted by step"),
        }
    }
    assert!(
        devices.values().any(|d| d.deleted) && devices.values().any(|d| d.mac.starts_with("02:02")),
        "the load changed and deleted devices before the kill: {devices:?}"
    );

    // The device database agrees with the history, device by device.
    for (label, expected) in &devices {
        let live = expected.registered && !expected.deleted;
        let n = count(
            &pool,
            "SELECT COUNT(*) FROM x_device WHERE DV_LABEL = $1",
            label,
        )
        .await;
        assert_eq!(n, i64::from(live), "{label}: {expected:?}, {n} devices");
        let ports: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.PT_DEV_ADDR, p.HARDW_ADDR FROM x_port p \
             JOIN x_link l ON l.CLASS_L = 'PORT' AND l.OBJ_ID_L = p.PT_OBJ_ID \
             JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H WHERE d.DV_LABEL = $1",
        )
        .bind(label)
        .fetch_all(&pool)
        .await
        .unwrap();
        let aliases = count(
            &pool,
            "SELECT COUNT(*) FROM n_devname WHERE DN_NAME = $1 AND CANONICAL = 'Y'",
            label,
        )
        .await;
        let at_address = count(
            &pool,
            "SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR = $1",
            &expected.ipv4,
        )
        .await;
        if live {
            assert_eq!(
                ports,
                [(expected.ipv4.clone(), expected.mac.clone())],
                "{label}: its interface disagrees with the history"
            );
            assert_eq!(aliases, 1, "{label}: one canonical alias");
            let admins = count(
                &pool,
                "SELECT COUNT(*) FROM x_link l JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H \
                 WHERE l.CLASS_L = 'ADMIN' AND d.DV_LABEL = $1",
                label,
            )
            .await;
            assert_eq!(admins, 1, "{label}: one ADMIN link");
        } else {
            assert!(ports.is_empty(), "{label} left ports: {ports:?}");
            assert_eq!(aliases, 0, "{label} left its alias");
            assert_eq!(at_address, 0, "{label} left a port at {}", expected.ipv4);
        }
    }
    let unknown: Vec<String> =
        sqlx::query_scalar("SELECT DV_LABEL FROM x_device WHERE DV_LABEL LIKE 'crash-%'")
            .fetch_all(&pool)
            .await
            .unwrap();
    for label in unknown {
        assert!(
            devices
                .get(&label)
                .is_some_and(|d| d.registered && !d.deleted),
            "{label} is in the database but no completed order left it there"
        );
    }

    // Nothing half-written anywhere: no port without its device's link, no
    // alias without its port, no link to a device that is gone; every
    // device keeps one ADMIN and at least one PORT link.
    for (what, sql) in [
        (
            "ports without a PORT link",
            "SELECT COUNT(*) FROM x_port p WHERE NOT EXISTS \
             (SELECT 1 FROM x_link l WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_L = p.PT_OBJ_ID)",
        ),
        (
            "aliases without a port",
            "SELECT COUNT(*) FROM n_devname n WHERE NOT EXISTS \
             (SELECT 1 FROM x_port p WHERE p.PT_OBJ_ID = n.PT_OBJ_ID)",
        ),
        (
            "links of a device that is gone",
            "SELECT COUNT(*) FROM x_link l WHERE NOT EXISTS \
             (SELECT 1 FROM x_device d WHERE d.DV_OBJ_ID = l.OBJ_ID_H)",
        ),
        (
            "devices without one ADMIN and a PORT link",
            "SELECT COUNT(*) FROM x_device d WHERE \
             (SELECT COUNT(*) FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'ADMIN') <> 1 \
             OR NOT EXISTS (SELECT 1 FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'PORT')",
        ),
    ] {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 0, "{what}: {n}");
    }
    pool.close().await;
    terminate(served).await;
}

// SIGKILL mid-load, once per backend
for_both_backends!(crash_mid_load);
for_both_backends!(crash_mid_mixed_load);

//! Rolling orders back (issue 19): `POST /api/v1/orders/{id}/rollback` on
//! both backends — each JuNet order type is undone and leaves the device
//! database as before, a later change of the same field is refused with
//! that order named, an IPv4 address taken meanwhile fails the rollback
//! order's checks instead of being overwritten, only staff may, and both
//! histories link the two orders.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::support::*;

/// The demo subnet with IPv6 on.
const V6_NET: &str = "134.94.16.0/24";
/// A demo subnet with IPv6 off.
const LAB_NET: &str = "134.94.32.0/24";

async fn place(s: &TestServer, role: &str, order_type: &str, fields: Value) -> Value {
    let r = s
        .call(
            Some(role),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": order_type, "fields": fields})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn completed(s: &TestServer, role: &str, order_type: &str, fields: Value) -> i64 {
    let body = place(s, role, order_type, fields).await;
    assert_eq!(body["state"], "COMPLETED", "{body}");
    body["id"].as_i64().unwrap()
}

async fn rollback(s: &TestServer, role: &str, id: i64) -> Reply {
    s.call(
        Some(role),
        Method::POST,
        &format!("/api/v1/orders/{id}/rollback"),
        None,
    )
    .await
}

/// Rolls `id` back as staff; the rollback order must complete. Returns its id.
async fn rolled_back(s: &TestServer, id: i64) -> i64 {
    let r = rollback(s, "staff", id).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(r.body["closed"], true, "{}", r.body);
    let rid = r.body["id"].as_i64().unwrap();
    assert!(rid > id);
    // both histories link the two orders
    assert_eq!(s.order(rid).await["links"], json!({"rollback_of": id}));
    let links = &s.order(id).await["links"];
    assert!(
        links["rolled_back_by"]
            .as_array()
            .is_some_and(|l| l.contains(&json!(rid))),
        "{links}"
    );
    rid
}

fn register_fields(host: &str, ipv4: &str, hwa: &str) -> Value {
    json!({"host": host, "dv_class": "PC", "dv_type": "Workstation", "serial": "SN-1",
    "geb": "16.3", "raum": "R 227", "persdata": "N", "admin": "1002",
    "users": ["1003", "1001"], "arrival": "2026-01-15",
    "interfaces": [
        {"net": V6_NET, "ipv4": ipv4, "hwa": hwa, "ssh": "N",
         "aliases": [{"name": format!("{host}.zam.kfa-juelich.de"), "canonical": "Y"},
                     {"name": format!("{host}-alt.zam.kfa-juelich.de")}]},
        {"net": LAB_NET, "ipv4": "134.94.32.77", "hwa": "00:1a:2b:3c:5e:77", "ssh": "Y",
         "aliases": [{"name": format!("{host}-lab.jsc.kfa-juelich.de")}]}
    ]})
}

/// Everything the device database holds about the device labelled
/// `label`, without object ids: its row, admin, users, deputyships, and its
/// interfaces with their aliases. `Value::Null` when there is no such device.
async fn snapshot(pool: &AnyPool, label: &str) -> Value {
    let Some(device) = sqlx::query(
        "SELECT DV_OBJ_ID, DV_LABEL, DV_CLASS, TYPE, SERIAL, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA, ARRIVAL \
         FROM x_device WHERE DV_LABEL = $1",
    )
    .bind(label)
    .fetch_optional(pool)
    .await
    .unwrap() else {
        return Value::Null;
    };
    let id: i64 = device.try_get(0).unwrap();
    let row: Vec<Option<String>> = (1..10).map(|i| device.try_get(i).unwrap()).collect();
    let links: Vec<(String, String)> = sqlx::query(
        "SELECT CLASS_H, CLASS_L, CAST(OBJ_ID_L AS TEXT) FROM x_link \
         WHERE OBJ_ID_H = $1 AND CLASS_L IN ('ADMIN', 'USER') ORDER BY CLASS_L, OBJ_ID_L",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get::<String, _>(1).unwrap(),
            r.try_get::<String, _>(2).unwrap(),
        )
    })
    .collect();
    let deputies: Vec<(String, Option<String>)> = sqlx::query(
        "SELECT CAST(DEPUTY AS TEXT), UNTIL FROM auftrag_deputies WHERE DEVICE = $1 ORDER BY DEPUTY",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap()))
    .collect();
    let ports = sqlx::query(
        "SELECT p.PT_OBJ_ID, p.PT_DEV_ADDR, CAST(p.NET_OBJ_ID AS TEXT), p.HARDW_ADDR, p.SSH, p.INET6_ADDR_TYPE, p.LLA, p.GUA \
         FROM x_link l JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L \
         WHERE l.OBJ_ID_H = $1 AND l.CLASS_L = 'PORT' ORDER BY p.PT_DEV_ADDR",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut interfaces = Vec::new();
    for p in &ports {
        let port: i64 = p.try_get(0).unwrap();
        let values: Vec<Option<String>> = (1..8).map(|i| p.try_get(i).unwrap()).collect();
        let aliases: Vec<(String, String, String)> = sqlx::query(
            "SELECT DN_NAME, DOMAIN, CANONICAL FROM n_devname WHERE PT_OBJ_ID = $1 ORDER BY DN_NAME, DOMAIN",
        )
        .bind(port)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap(), r.try_get(2).unwrap()))
        .collect();
        interfaces.push(json!({"port": values, "aliases": aliases}));
    }
    json!({"device": row, "links": links, "deputies": deputies, "interfaces": interfaces})
}

async fn deputyships(pool: &AnyPool, deputy: i64) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM auftrag_deputies WHERE DEPUTY = $1")
        .bind(deputy)
        .fetch_one(pool)
        .await
        .unwrap()
}

on_both_backends! {
/// Every order type rolled back leaves the device database as before.
async fn each_order_type_is_undone(s) {
    let pool = s.db().await;

    // register → its rollback deletes the device again
    let before = snapshot(&pool, "rbnew").await;
    assert_eq!(before, Value::Null);
    let reg = completed(&s, "staff", "register_device", register_fields("rbnew", "134.94.16.70", "00:1a:2b:3c:5e:70")).await;
    assert_ne!(snapshot(&pool, "rbnew").await, Value::Null);
    let rid = rolled_back(&s, reg).await;
    assert_eq!(s.order(rid).await["type"], "delete_device");
    assert_eq!(snapshot(&pool, "rbnew").await, Value::Null, "the registration is undone");
    crate::junet_orders::assert_invariants(&pool).await;

    // delete → its rollback registers the device with what the deletion recorded
    completed(&s, "staff", "register_device", register_fields("rbdel", "134.94.16.71", "00:1a:2b:3c:5e:71")).await;
    let registered = snapshot(&pool, "rbdel").await;
    let del = completed(&s, "admin", "delete_device", json!({"host": "rbdel.zam.kfa-juelich.de", "reason": "scrapped"})).await;
    assert_eq!(snapshot(&pool, "rbdel").await, Value::Null);
    // the deletion's history keeps the removed device's data
    let changed = &s.order(del).await["changed"];
    assert_eq!(changed["admin"], json!(["1002", null]), "{changed}");
    assert_eq!(changed["users"], json!([["1001", "1003"], null]), "{changed}");
    assert_eq!(changed["interfaces"][0].as_array().map(Vec::len), Some(2), "{changed}");
    assert_eq!(changed["interfaces"][0][0]["aliases"].as_array().map(Vec::len), Some(2), "{changed}");
    let rid = rolled_back(&s, del).await;
    assert_eq!(s.order(rid).await["type"], "register_device");
    assert_eq!(snapshot(&pool, "rbdel").await, registered, "the deletion is undone");
    crate::junet_orders::assert_invariants(&pool).await;

    // change (device data, users, the interface's addresses and aliases, a
    // new interface) → its rollback changes it back
    let before = snapshot(&pool, "rbdel").await;
    let change = completed(&s, "staff", "change_device", json!({
        "host": "rbdel.zam.kfa-juelich.de",
        "ipv4": "134.94.16.72", "hwa": "00:1a:2b:3c:5e:72", "ssh": "Y",
        "raum": "R 300", "serial": "SN-2", "dv_class": "SERVER", "users": ["1004"],
        "add_aliases": [{"name": "rbdel-new.zam.kfa-juelich.de"}],
        "remove_aliases": ["rbdel-alt.zam.kfa-juelich.de"],
        "add_interfaces": [{"net": "10.20.0.0/16", "ipv4": "10.20.1.72", "hwa": "00:1a:2b:3c:5e:73",
                            "aliases": [{"name": "rbdel-prn.prn.kfa-juelich.de", "canonical": "Y"}]}],
    })).await;
    assert_ne!(snapshot(&pool, "rbdel").await, before);
    let rid = rolled_back(&s, change).await;
    assert_eq!(s.order(rid).await["type"], "change_device");
    assert_eq!(snapshot(&pool, "rbdel").await, before, "the change is undone");
    crate::junet_orders::assert_invariants(&pool).await;

    // name_deputy → end_deputy; end_deputy → name_deputy with the end it had
    let named = completed(&s, "admin", "name_deputy", json!({"host": "rbdel.zam.kfa-juelich.de", "deputy": "1004", "until": "2030-06-30"})).await;
    assert_eq!(deputyships(&pool, 1004).await, 1);
    let rid = rolled_back(&s, named).await;
    assert_eq!(s.order(rid).await["type"], "end_deputy");
    assert_eq!(deputyships(&pool, 1004).await, 0, "the deputyship is ended again");
    completed(&s, "admin", "name_deputy", json!({"host": "rbdel.zam.kfa-juelich.de", "deputy": "1004", "until": "2030-06-30"})).await;
    let before = snapshot(&pool, "rbdel").await;
    let ended = completed(&s, "admin", "end_deputy", json!({"host": "rbdel.zam.kfa-juelich.de", "deputy": "1004"})).await;
    assert_eq!(deputyships(&pool, 1004).await, 0);
    let rid = rolled_back(&s, ended).await;
    assert_eq!(s.order(rid).await["type"], "name_deputy");
    assert_eq!(snapshot(&pool, "rbdel").await, before, "the deputyship is back, with its end");
}
}

on_both_backends! {
/// A later order that changed the same field stands in the way, named;
/// one that changed other fields does not; a rollback is done once.
async fn a_later_change_of_the_same_field_is_refused(s) {
    let first = completed(&s, "staff", "change_device", json!({"host": ZAM2212, "ipv4": "134.94.16.80"})).await;
    let raum = completed(&s, "staff", "change_device", json!({"host": ZAM2212, "raum": "R 301"})).await;
    let second = completed(&s, "staff", "change_device", json!({"host": ZAM2212, "ipv4": "134.94.16.81", "ssh": "Y"})).await;
    let r = rollback(&s, "staff", first).await;
    assert_problem(&r, StatusCode::CONFLICT, &format!("order {second} (ipv4)"));
    assert_eq!(r.body["orders"], json!([second]), "{}", r.body);
    assert!(!r.body["detail"].as_str().unwrap().contains(&format!("order {raum} ")), "{}", r.body);
    // nothing was placed
    let pool = s.db().await;
    let ipv4: Option<String> = sqlx::query_scalar("SELECT PT_DEV_ADDR FROM x_port WHERE PT_OBJ_ID = $1")
        .bind(ZAM2212_PORT).fetch_one(&pool).await.unwrap();
    assert_eq!(ipv4.as_deref(), Some("134.94.16.81"));
    assert!(s.order(first).await.get("links").is_none());

    // the room's change is not in the way of anything but a later room change
    rolled_back(&s, raum).await;
    // the newest first: then the first is free again
    rolled_back(&s, second).await;
    let back = rollback(&s, "staff", first).await;
    // the rollback of `second` set ipv4 too: still in the way, and named
    assert_eq!(back.status, StatusCode::CONFLICT, "{}", back.body);
    let again = rollback(&s, "staff", second).await;
    assert_problem(&again, StatusCode::CONFLICT, &format!("order {second} was rolled back already"));
}
}

on_both_backends! {
/// The rollback order is checked like any order: an IPv4 address another
/// device took meanwhile is an error of it, and nothing is overwritten.
async fn an_ipv4_taken_meanwhile_fails_the_rollback(s) {
    let pool = s.db().await;
    let change = completed(&s, "staff", "change_device", json!({"host": ZAM2212, "ipv4": "134.94.16.90"})).await;
    let old = s.order(change).await["changed"]["ipv4"][0].as_str().unwrap().to_owned();
    // another device takes the old address
    completed(&s, "staff", "register_device", json!({
        "host": "taker", "dv_class": "PC", "geb": "16.3", "raum": "R 1", "admin": "1002",
        "interfaces": [{"net": V6_NET, "ipv4": old, "hwa": "00:1a:2b:3c:5e:90",
                        "aliases": [{"name": "taker.zam.kfa-juelich.de"}]}]})).await;
    let r = rollback(&s, "staff", change).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert!(
        r.body["errors"].as_array().unwrap().iter().any(|e| e["check"] == "check_ipv4_free" && e["field"] == "ipv4"),
        "{}", r.body
    );
    let ipv4: Option<String> = sqlx::query_scalar("SELECT PT_DEV_ADDR FROM x_port WHERE PT_OBJ_ID = $1")
        .bind(ZAM2212_PORT).fetch_one(&pool).await.unwrap();
    assert_eq!(ipv4.as_deref(), Some("134.94.16.90"), "not rolled back");
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR = $1")
        .bind(&old).fetch_one(&pool).await.unwrap();
    assert_eq!(taken, 1, "the other device keeps the address");
    // the failed rollback is linked too; once the address is free, another may follow
    let rid = r.body["id"].as_i64().unwrap();
    assert_eq!(s.order(rid).await["links"], json!({"rollback_of": change}));
    assert_eq!(s.order(change).await["links"], json!({"rolled_back_by": [rid]}));
}
}

on_both_backends! {
/// Who may roll back, and which orders can be.
async fn only_staff_roll_closed_orders_back(s) {
    // the admin placed it and may read it, but may not roll it back
    let change = completed(&s, "admin", "change_device", json!({"host": ZAM2212, "raum": "R 302"})).await;
    let r = rollback(&s, "admin", change).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "rollbacks are for staff");
    // one who may not read it learns nothing of it
    let r = rollback(&s, "employee", change).await;
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("no order {change}"));
    let r = rollback(&s, "staff", 999_999).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no order 999999");
    // an order that changed nothing (aborted)
    let aborted = place(&s, "admin", "change_device", json!({"host": ZAM2212, "hwa": "00:1a:2b:zz"})).await;
    assert_eq!(aborted["state"], "ABORTED", "{aborted}");
    let r = rollback(&s, "staff", aborted["id"].as_i64().unwrap()).await;
    assert_problem(&r, StatusCode::CONFLICT, "changed nothing");
    // an open one
    let waiting = place(&s, "admin", "change_device", json!({"host": ZAM2212, "hwa": ZAM2213_MAC})).await;
    assert_eq!(waiting["state"], "WAITING", "{waiting}");
    let r = rollback(&s, "staff", waiting["id"].as_i64().unwrap()).await;
    assert_problem(&r, StatusCode::CONFLICT, "not closed");
    // nothing was placed by the refusals
    let pool = s.db().await;
    let rollbacks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auftrag_rollbacks").fetch_one(&pool).await.unwrap();
    assert_eq!(rollbacks, 0);
    rolled_back(&s, change).await;
}
}

on_both_backends! {
/// Rollbacks of one order sent at the same moment: one is placed, the
/// others are refused (409) — each request's own look found no rollback
/// yet, the rollback order's transaction looks again — and the device is
/// as before the order, once.
async fn rollbacks_sent_at_once_are_placed_once(s) {
    let change = completed(&s, "staff", "change_device", json!({"host": ZAM2212, "raum": "R 777"})).await;
    let replies = futures::future::join_all((0..6).map(|_| rollback(&s, "staff", change))).await;
    let placed: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert_eq!(placed.len(), 1, "{:#?}", replies.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    assert_eq!(placed[0].body["state"], "COMPLETED", "{}", placed[0].body);
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_problem(r, StatusCode::CONFLICT, &format!("order {change}"));
    }
    let links = &s.order(change).await["links"];
    assert_eq!(links["rolled_back_by"].as_array().map(Vec::len), Some(1), "{links}");
}
}

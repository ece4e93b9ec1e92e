//! The seven rules, tried against what they mean (issue 17): deputyships
//! end with their admin's tenure and by an order; reads are decided on what
//! an order was about when it was decided, not on what its host name means
//! today; the admin field is a transfer, not a change; person keys have one
//! spelling; an unknown device is no resource of anyone's org unit; the
//! three deputyship scopes are explicit; the device list shows what a
//! person may change, and why.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::support::*;

const ZAM2213: &str = "zam2213.zam.kfa-juelich.de";

async fn place(s: &TestServer, role: &str, order_type: &str, fields: Value) -> Value {
    let r = s
        .call(
            Some(role),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": order_type, "fields": fields})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{order_type}: {}", r.body);
    r.body
}

async fn explain(s: &TestServer, person: &str, action: &str, host: &str) -> Value {
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            &format!("/api/v1/explain?person={person}&action={action}&host={host}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn checks_of(body: &Value, kind: &str) -> Vec<(String, String)> {
    body[kind]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["check"].as_str().unwrap_or_default().to_owned(),
                        f["field"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_error(body: &Value, check: &str, field: &str) -> bool {
    checks_of(body, "errors")
        .iter()
        .any(|(c, f)| c == check && f == field)
}

async fn deputyships(s: &TestServer, deputy: i64, device: i64) -> Vec<Option<String>> {
    sqlx::query("SELECT UNTIL FROM auftrag_deputies WHERE DEPUTY = $1 AND DEVICE = $2 ORDER BY ID")
        .bind(deputy)
        .bind(device)
        .fetch_all(&s.db().await)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<Option<String>, _>(0).unwrap())
        .collect()
}

fn tomorrow() -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(1)).to_string()
}

on_both_backends! {
/// Case 1: a deputyship a device's admin named hands on that admin's
/// rights, and ends when the device gets another admin — for good, not
/// again when the admin comes back.
async fn a_deputyship_ends_with_its_admins_tenure(s) {
    let r = place(&s, "admin", "name_deputy", json!({"host": ZAM2213, "deputy": "1001"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let e = explain(&s, "1001", "change", ZAM2213).await;
    assert_eq!(e["decision"], "Permit", "{e}");
    assert_eq!(e["explanation"]["rule"], "deputy_device", "{e}");

    let r = place(&s, "staff", "change_device", json!({"host": ZAM2213, "admin": "1004"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let e = explain(&s, "1001", "change", ZAM2213).await;
    assert_eq!(e["decision"], "Deny", "the deputyship outlived its admin: {e}");
    let r = place(&s, "employee", "change_device", json!({"host": ZAM2213, "hwa": "00:1a:2b:3c:4d:71"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "authorization", ""), "{r}");

    // the admin comes back: the deputyship stays ended
    let r = place(&s, "staff", "change_device", json!({"host": ZAM2213, "admin": "1002"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let e = explain(&s, "1001", "change", ZAM2213).await;
    assert_eq!(e["decision"], "Deny", "{e}");
}
}

on_both_backends! {
/// Case 1: naming a deputy again moves the end of the one deputyship
/// (whoever named it first); `end_deputy` shortens or ends it, placed by
/// those the policies let name it, or by the deputy themselves.
async fn a_deputyship_is_named_again_shortened_and_ended_by_orders(s) {
    let r = place(&s, "staff", "name_deputy", json!({"host": ZAM2213, "deputy": "1001"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let until = tomorrow();
    let r = place(&s, "admin", "name_deputy", json!({"host": ZAM2213, "deputy": "1001", "until": "2099-06-30"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(deputyships(&s, 1001, 5002).await, [Some("2099-06-30T23:59:59.000Z".to_owned())]);

    // shortened by the admin
    let r = place(&s, "admin", "end_deputy", json!({"host": ZAM2213, "deputy": "1001", "until": until})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(deputyships(&s, 1001, 5002).await, [Some(format!("{until}T23:59:59.000Z"))]);
    // not lengthened by end_deputy
    let r = place(&s, "admin", "end_deputy", json!({"host": ZAM2213, "deputy": "1001", "until": "2099-01-01"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "check_deputyship", "until"), "{r}");

    // not ended by someone without a say: 1003 deputises for another device
    let r = place(&s, "deputy", "end_deputy", json!({"host": ZAM2213, "deputy": "1001"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "authorization", ""), "{r}");
    // the deputy may give it up
    let r = place(&s, "employee", "end_deputy", json!({"host": ZAM2213, "deputy": "1001"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(deputyships(&s, 1001, 5002).await.is_empty());
    let e = explain(&s, "1001", "change", ZAM2213).await;
    assert_eq!(e["decision"], "Deny", "{e}");
    // what is not there cannot be ended
    let r = place(&s, "admin", "end_deputy", json!({"host": ZAM2213, "deputy": "1001"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "check_deputyship", "deputy"), "{r}");

    // the admin ends the demo deputyship of 1003 for zam2212 at once
    let r = place(&s, "admin", "end_deputy", json!({"host": ZAM2212, "deputy": "1003"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let e = explain(&s, "1003", "change", ZAM2212).await;
    assert_eq!(e["decision"], "Deny", "{e}");
}
}

on_both_backends! {
/// Case 2: who may read an order is decided on the device it was about
/// when it was decided: its id, admin and org unit then.
async fn reads_follow_the_device_the_order_was_about(s) {
    let changed = place(&s, "staff", "change_device", json!({"host": ZAM2213, "ssh": "Y"})).await;
    assert_eq!(changed["state"], "COMPLETED", "{changed}");
    let changed = changed["id"].as_i64().unwrap();
    let facts = &s.order(changed).await["facts"];
    assert_eq!(*facts, json!({"resource.admin": "1002", "resource.device": 5002, "resource.org": "JSC"}));
    let r = place(&s, "admin", "delete_device", json!({"host": ZAM2213, "reason": "scrapped"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    // an employee registers a new device under the old name
    let r = place(&s, "employee", "register_device", json!({
        "host": "zam2213", "dv_class": "PC", "geb": "16.3", "raum": "R 1",
        "interfaces": [{"net": "134.94.16.0/24", "ipv4": "134.94.16.13", "hwa": "00:1a:2b:3c:4d:72",
                        "aliases": [{"name": ZAM2213, "canonical": "Y"}]}]})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let registered = r["id"].as_i64().unwrap();

    let read = |role: &'static str, id: i64| {
        let s = &s;
        async move { s.call(Some(role), Method::GET, &format!("/api/v1/orders/{id}"), None).await }
    };
    // the old device's history is its old admin's, not the new device's
    assert_eq!(read("admin", changed).await.status, StatusCode::OK);
    let r = read("employee", changed).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the new device's admin read the old one's history: {}", r.body);
    // the IT officer of the org unit the device was in reads it too
    assert_eq!(read("itb", changed).await.status, StatusCode::OK);
    // the registration is the new device's
    assert_eq!(read("employee", registered).await.status, StatusCode::OK);
    assert_eq!(read("admin", registered).await.status, StatusCode::NOT_FOUND);

    // a registration refused for a taken name is no order about the device
    // that has the name
    let r = place(&s, "employee", "register_device", json!({
        "host": "zam2212", "dv_class": "PC", "geb": "16.3", "raum": "R 1",
        "interfaces": [{"net": "134.94.16.0/24", "ipv4": "134.94.16.77", "hwa": "00:1a:2b:3c:4d:73",
                        "aliases": [{"name": "zam2212b.zam.kfa-juelich.de", "canonical": "Y"}]}]})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    let refused = r["id"].as_i64().unwrap();
    let r = read("admin", refused).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the taken name's admin read a stranger's refused registration: {}", r.body);
    assert_eq!(read("employee", refused).await.status, StatusCode::OK);
}
}

on_both_backends! {
/// Case 3: changing the admin is a transfer of the device: its admin, the
/// IT officer of its org unit and staff may, a deputy may not.
async fn a_deputy_cannot_make_themselves_admin(s) {
    let r = place(&s, "deputy", "change_device", json!({"host": ZAM2212, "admin": "1003"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "authorization", ""), "{r}");
    let pool = s.db().await;
    let admin: i64 = sqlx::query_scalar("SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = 5001 AND CLASS_L = 'ADMIN'")
        .fetch_one(&pool).await.unwrap();
    assert_eq!(admin, 1002);
    // the deputy's other changes stay permitted
    let r = place(&s, "deputy", "change_device", json!({"host": ZAM2212, "ssh": "Y"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    // the IT officer of JSC may hand the device on
    let r = place(&s, "itb", "change_device", json!({"host": ZAM2212, "admin": "1003"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
}
}

on_both_backends! {
/// Case 4: a person key has one spelling; others are refused wherever a
/// key enters (tokens, order fields, deputies).
async fn person_keys_have_one_spelling(s) {
    let engine = auftrag_engine::Engine::open(&s.db_url, auftrag::domain()).await.unwrap();
    let e = engine.issue_token("01004", time::Duration::hours(1)).await;
    assert!(e.is_err(), "a token for 01004 was issued");
    assert!(engine.issue_token("1004", time::Duration::hours(1)).await.is_ok());

    let r = place(&s, "admin", "change_device", json!({"host": ZAM2212, "admin": "01004"})).await;
    assert_ne!(r["state"], "COMPLETED", "{r}");
    assert!(checks_of(&r, "errors").iter().any(|(_, f)| f == "admin"), "{r}");
    let r = place(&s, "admin", "name_deputy", json!({"host": ZAM2212, "deputy": "01001"})).await;
    assert_ne!(r["state"], "COMPLETED", "{r}");
    assert!(checks_of(&r, "errors").iter().any(|(_, f)| f == "deputy"), "{r}");
}
}

on_both_backends! {
/// Case 5: a change of a host that does not exist is about no device, so
/// about no org unit — not the org the order names.
async fn an_unknown_device_is_no_resource_of_an_org(s) {
    let r = place(&s, "itb", "change_device", json!({"host": "nosuch.zam.kfa-juelich.de", "org": "JSC", "ssh": "Y"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    let doc = s.order(r["id"].as_i64().unwrap()).await;
    assert_ne!(doc["decisions"][0]["decision"], "Permit", "{doc}");
}
}

on_both_backends! {
/// Case 6: one device, all devices I administer, my org unit — the three
/// forms are explicit (`scope`), and an org of only spaces is no org.
async fn deputyship_scopes_are_explicit_and_trimmed(s) {
    let pool = s.db().await;
    // neither host nor org: ambiguous, refused with the forms to choose from
    let r = place(&s, "itb", "name_deputy", json!({"deputy": "1001"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "check_deputyship", "scope"), "{r}");
    // an org of only spaces is no org: the same
    let r = place(&s, "itb", "name_deputy", json!({"org": "   ", "deputy": "1001"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "check_deputyship", "scope"), "{r}");
    // a scope that does not fit the fields
    let r = place(&s, "itb", "name_deputy", json!({"scope": "device", "deputy": "1001"})).await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert!(has_error(&r, "check_deputyship", "host"), "{r}");
    // explicit: all devices 1004 administers; their org unit, trimmed
    let r = place(&s, "itb", "name_deputy", json!({"scope": "my_devices", "deputy": "1001"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auftrag_deputies WHERE DEPUTY = 1001 AND NAMED_BY = 1004 AND DEVICE IS NULL AND ORG IS NULL")
        .fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
    let r = place(&s, "itb", "name_deputy", json!({"scope": "org", "org": " JSC ", "deputy": "1001"})).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auftrag_deputies WHERE DEPUTY = 1001 AND ORG = 'JSC'")
        .fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
}
}

/// The devices of `GET /api/v1/devices` as host → reasons.
async fn listed(s: &TestServer, role: &str) -> Vec<(String, Vec<Value>)> {
    let r = s
        .call(Some(role), Method::GET, "/api/v1/devices", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| {
            (
                d["host"].as_str().unwrap().to_owned(),
                d["reasons"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

on_both_backends! {
/// Case 7: the device list shows a person the devices they may change,
/// each with why: admin, deputy until …, IT officer of org ….
async fn the_device_list_shows_what_a_person_may_change_and_why(s) {
    let deputy = listed(&s, "deputy").await;
    assert_eq!(deputy.len(), 1, "{deputy:?}");
    assert_eq!(deputy[0].0, "zam2212");
    assert_eq!(deputy[0].1, [json!({"role": "deputy", "until": "2027-12-31T23:59:59.000Z"})]);

    let itb = listed(&s, "itb").await;
    let hosts: Vec<&str> = itb.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["zam2212", "zam2213", "jsclab7"], "{itb:?}");
    assert_eq!(itb[0].1, [json!({"role": "it_officer", "org": "JSC"})]);
    assert_eq!(itb[2].1, [json!({"role": "admin"}), json!({"role": "it_officer", "org": "JSC"})]);

    let admin = listed(&s, "admin").await;
    let hosts: Vec<&str> = admin.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["zam2212", "zam2213"], "{admin:?}");
    assert_eq!(admin[0].1, [json!({"role": "admin"})]);
    // admin=me keeps to the devices one administers
    let r = s.call(Some("itb"), Method::GET, "/api/v1/devices?admin=me", None).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.body);
    // an employee with no tie to a device sees none
    assert!(listed(&s, "employee").await.is_empty());
}
}

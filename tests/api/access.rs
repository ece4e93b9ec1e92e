//! A person sees exactly what the `read_history` policy lets them read
//! (issue 19): `GET /api/v1/orders` carries the policy, partially evaluated
//! for the person, in its query. On a generated data set — people in every
//! demo role and more (deputies for a device, for all devices of an admin,
//! for an org unit, an expired one, a second IT officer, unrelated
//! employees), orders of every type by them, some stored without facts —
//! the orders each person lists, page by page, are exactly those whose
//! `GET /api/v1/orders/{id}` answers 200 for them.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const ZAM2213: &str = "zam2213.zam.kfa-juelich.de";
const JSCLAB7: &str = "jsclab7.jsc.kfa-juelich.de";
const LBLPRN1: &str = "lblprn1.prn.kfa-juelich.de";

/// People besides the demo ones: (key, org unit).
const MORE: &[(i64, &str)] = &[
    (2001, "JSC"),     // deputy for all devices of 1002
    (2002, "ZEA-2"),   // deputy for org unit JSC
    (2003, "JSC"),     // deputy for zam2213, expired
    (2004, "ZEA-2"),   // unrelated employee
    (2005, "JSC-IPM"), // IT officer of JSC-IPM
    (2006, "ZEA-2"),   // registers a device
];

async fn place(s: &TestServer, who: &str, order_type: &str, fields: Value) -> i64 {
    let r = s
        .call(
            Some(who),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": order_type, "fields": fields})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{who} {order_type}: {}",
        r.body
    );
    r.body["id"].as_i64().expect("an id")
}

fn registration(host: &str, ipv4: &str, mac: &str) -> Value {
    json!({
        "host": host, "dv_class": "PC", "geb": "16.3", "raum": "R 1",
        "interfaces": [{"net": "134.94.16.0/24", "ipv4": ipv4, "hwa": mac,
                        "aliases": [{"name": format!("{host}.zam.kfa-juelich.de"), "canonical": "Y"}]}]
    })
}

/// Every order `who` lists, paging through with small pages.
async fn listed(s: &TestServer, who: &str) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let mut path = "/api/v1/orders?limit=2".to_owned();
    for _ in 0..200 {
        let r = s.call(Some(who), Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.body);
        for o in r.body["orders"].as_array().expect("orders") {
            assert!(
                ids.insert(o["id"].as_i64().expect("id")),
                "{who}: listed twice: {o}"
            );
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/orders?limit=2&cursor={c}"),
            None => return ids,
        }
    }
    panic!("{who}: more pages than orders");
}

/// Every order `who` finds in the history search (`GET /api/v1/history`,
/// no filter), paging through with small pages.
async fn searched(s: &TestServer, who: &str) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let mut path = "/api/v1/history?limit=2".to_owned();
    for _ in 0..200 {
        let r = s.call(Some(who), Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.body);
        for o in r.body["orders"].as_array().expect("orders") {
            assert!(
                ids.insert(o["id"].as_i64().expect("id")),
                "{who}: found twice: {o}"
            );
        }
        match r.body["next"].as_str() {
            Some(c) => path = format!("/api/v1/history?limit=2&cursor={c}"),
            None => return ids,
        }
    }
    panic!("{who}: more pages than orders");
}

/// Every order `who` may read, asked one by one.
async fn readable(s: &TestServer, who: &str, all: &BTreeSet<i64>) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    for id in all {
        let r = s
            .call(
                Some(who),
                Method::GET,
                &format!("/api/v1/orders/{id}"),
                None,
            )
            .await;
        match r.status {
            StatusCode::OK => {
                ids.insert(*id);
            }
            StatusCode::NOT_FOUND => {}
            other => panic!("{who} reading {id}: {other} {}", r.body),
        }
    }
    ids
}

async fn lists_show_what_the_policy_lets_read(db: Db) {
    let mut s = TestServer::start_on(db).await;
    let pool = s.db().await;
    for (key, org) in MORE {
        sqlx::query(
            "INSERT INTO d_pers (PERS_KEY, NAME, VORNAME, SEX, TITEL, ORG, EMAIL, VORWAHL, TEL) \
             VALUES ($1, 'Test', 'Person', 'Frau', NULL, $2, NULL, '02461', '61-0000')",
        )
        .bind(key)
        .bind(*org)
        .execute(&pool)
        .await
        .expect("insert person");
    }
    // a second IT officer, and an expired deputyship
    sqlx::query("INSERT INTO auftrag_it_officers (PERS_KEY, ORG) VALUES (2005, 'JSC-IPM')")
        .execute(&pool)
        .await
        .expect("it officer");
    sqlx::query(
        "INSERT INTO auftrag_deputies (DEPUTY, NAMED_BY, DEVICE, ORG, UNTIL, CREATED_AT, ADMIN) \
         VALUES (2003, 1002, 5002, NULL, '2020-06-30T23:59:59.000Z', '2020-01-01T00:00:00.000Z', 1002)",
    )
    .execute(&pool)
    .await
    .expect("expired deputyship");
    let mut people: Vec<String> = ["1001", "1002", "1003", "1004", "1005"]
        .map(str::to_owned)
        .to_vec();
    for (key, _) in MORE {
        let token = s
            .engine
            .issue_token(&key.to_string(), time::Duration::hours(1))
            .await
            .expect("token");
        s.tokens.insert(key.to_string(), token);
        people.push(key.to_string());
    }
    for (role, key) in [
        ("employee", "1001"),
        ("admin", "1002"),
        ("deputy", "1003"),
        ("itb", "1004"),
        ("staff", "1005"),
    ] {
        let token = s.tokens[role].clone();
        s.tokens.insert(key.to_owned(), token);
    }

    // deputyships by order: for all devices of 1002, for the org unit JSC,
    // for zam2213 (then ended)
    place(
        &s,
        "1002",
        "name_deputy",
        json!({"scope": "my_devices", "deputy": "2001"}),
    )
    .await;
    place(
        &s,
        "1004",
        "name_deputy",
        json!({"scope": "org", "org": "JSC", "deputy": "2002"}),
    )
    .await;
    place(
        &s,
        "1002",
        "name_deputy",
        json!({"host": ZAM2213, "deputy": "1001"}),
    )
    .await;
    place(
        &s,
        "1002",
        "end_deputy",
        json!({"host": ZAM2213, "deputy": "1001"}),
    )
    .await;
    // changes by admins, deputies, IT officers, staff, and refused ones
    place(
        &s,
        "1002",
        "change_device",
        json!({"host": ZAM2212, "ssh": "Y"}),
    )
    .await;
    place(
        &s,
        "1002",
        "change_device",
        json!({"host": ZAM2213, "ssh": "Y"}),
    )
    .await;
    place(
        &s,
        "1003",
        "change_device",
        json!({"host": ZAM2212, "ssh": "N"}),
    )
    .await;
    place(
        &s,
        "2001",
        "change_device",
        json!({"host": ZAM2213, "ssh": "N"}),
    )
    .await;
    place(
        &s,
        "1004",
        "change_device",
        json!({"host": JSCLAB7, "ssh": "Y"}),
    )
    .await;
    place(
        &s,
        "1005",
        "change_device",
        json!({"host": LBLPRN1, "ssh": "Y"}),
    )
    .await;
    place(
        &s,
        "1001",
        "change_device",
        json!({"host": ZAM2212, "ssh": "Y"}),
    )
    .await;
    place(
        &s,
        "2004",
        "change_device",
        json!({"host": LBLPRN1, "ssh": "N"}),
    )
    .await;
    place(
        &s,
        "2003",
        "change_device",
        json!({"host": ZAM2213, "ssh": "Y"}),
    )
    .await;
    // registrations by employees, one refused
    place(
        &s,
        "2006",
        "register_device",
        registration("zea0815", "134.94.16.81", "00:1a:2b:3c:4d:81"),
    )
    .await;
    place(
        &s,
        "1001",
        "register_device",
        registration("zea0816", "134.94.16.82", "00:1a:2b:3c:4d:82"),
    )
    .await;
    place(
        &s,
        "2004",
        "register_device",
        registration("zea0817", "134.94.16.81", "00:1a:2b:3c:4d:83"),
    )
    .await;
    // a deletion
    place(
        &s,
        "1005",
        "delete_device",
        json!({"host": LBLPRN1, "reason": "scrapped"}),
    )
    .await;

    // two orders as stored before facts were kept: decided on live values
    let all: BTreeSet<i64> = listed(&s, "1005").await;
    assert!(all.len() >= 17, "staff list every order: {all:?}");
    let without_facts: Vec<i64> = all.iter().copied().filter(|id| id % 5 == 2).collect();
    for id in &without_facts {
        sqlx::query("UPDATE auftrag_orders SET facts = NULL WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .expect("drop facts");
    }

    let mut beyond_own = 0;
    for who in &people {
        let list = listed(&s, who).await;
        let read = readable(&s, who, &all).await;
        assert_eq!(list, read, "person {who}: listed vs readable one by one");
        let found = searched(&s, who).await;
        assert_eq!(
            found, read,
            "person {who}: history search vs readable one by one"
        );
        let own: BTreeSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT id FROM auftrag_orders WHERE requester = $1")
                .bind(who)
                .fetch_all(&pool)
                .await
                .expect("own orders")
                .into_iter()
                .collect();
        assert!(
            own.is_subset(&list),
            "person {who} does not list their own orders"
        );
        if list.len() > own.len() {
            beyond_own += 1;
        }
    }
    // admins, deputies (device, all devices, org unit), IT officers and
    // staff read more than their own orders
    assert!(
        beyond_own >= 6,
        "only {beyond_own} people read beyond their own orders"
    );
    // the all-devices deputy reads the admin's devices' orders; the expired
    // deputy and the unrelated employee only their own
    let of = |who: &str| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM auftrag_orders WHERE requester = $1")
            .bind(who.to_owned())
    };
    for who in ["2003", "2004"] {
        let n = of(who).fetch_one(&pool).await.expect("count");
        assert_eq!(
            listed(&s, who).await.len() as i64,
            n,
            "{who} reads only their own"
        );
    }
}
for_both_backends!(lists_show_what_the_policy_lets_read);

/// The recorded facts have expression indexes, created at start-up.
async fn recorded_facts_are_indexed(db: Db) {
    let s = TestServer::start_on(db).await;
    let pool = s.db().await;
    let sql = match db {
        Db::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND (name LIKE 'auftrag_orders_fact_%' OR name = 'auftrag_orders_undecided') ORDER BY name"
        }
        Db::Postgres => {
            "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE indexname LIKE 'auftrag_orders_fact_%' OR indexname = 'auftrag_orders_undecided' ORDER BY indexname"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(&pool)
        .await
        .expect("indexes");
    assert_eq!(
        names,
        [
            "auftrag_orders_fact_resource_admin",
            "auftrag_orders_fact_resource_device",
            "auftrag_orders_fact_resource_org",
            "auftrag_orders_undecided",
        ]
    );
    // a second start finds them
    drop(s);
}
for_both_backends!(recorded_facts_are_indexed);

/// The access condition a list or search computed is remembered
/// (`AccessCache`), but not past a change of what the person may read: a
/// deputy named by an order reads the device's orders in the very next
/// list and search, and no longer once the deputyship has ended.
async fn a_new_deputy_reads_at_once(db: Db) {
    const ZAM2212: &str = "zam2212.zam.kfa-juelich.de";
    let s = TestServer::start_on(db).await;
    let change = place(
        &s,
        "admin",
        "change_device",
        json!({"host": ZAM2212, "ssh": "Y"}),
    )
    .await;
    let all: BTreeSet<i64> = [change].into();
    // the employee (1001) lists and searches: the admin's order is not theirs
    assert!(!listed(&s, "employee").await.contains(&change));
    assert!(!searched(&s, "employee").await.contains(&change));
    assert!(readable(&s, "employee", &all).await.is_empty());

    place(
        &s,
        "admin",
        "name_deputy",
        json!({"host": ZAM2212, "deputy": "1001"}),
    )
    .await;
    assert!(readable(&s, "employee", &all).await.contains(&change));
    assert!(listed(&s, "employee").await.contains(&change));
    assert!(searched(&s, "employee").await.contains(&change));

    place(
        &s,
        "admin",
        "end_deputy",
        json!({"host": ZAM2212, "deputy": "1001"}),
    )
    .await;
    assert!(readable(&s, "employee", &all).await.is_empty());
    assert!(!listed(&s, "employee").await.contains(&change));
    assert!(!searched(&s, "employee").await.contains(&change));
}

for_both_backends!(a_new_deputy_reads_at_once);

//! Searching and counting the history (issue 19): `GET /api/v1/history`,
//! `GET /api/v1/stats` and `auftrag history search|stats`, on SQLite,
//! PostgreSQL and MongoDB (SecantusDB). A varied set of orders is placed
//! through the API; each filter's answer is checked against the same
//! filter worked out here from the history documents, and MongoDB's
//! answers against SQL's.

use std::collections::BTreeMap;

use auftrag_engine::history::access::{Access, Column, Cond};
use auftrag_engine::history::search::{self, SearchQuery};
use auftrag_engine::history::stats::{self, StatsQuery};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    Db, JSCLAB7_MAC, TestServer, ZAM2212, ZAM2212_MAC, ZAM2213_MAC, assert_problem,
};

const NEW_MAC: &str = "00:1a:2b:3c:4d:99";
const ZAM2299: &str = "zam2299.zam.kfa-juelich.de";

/// Places the orders the tests search: completed, aborted on an error,
/// accepted after a warning (with a comment), aborted by staff, left
/// waiting; a registration by another person and a change of its IPv4.
async fn place_orders(s: &TestServer) {
    let change = |fields: Value| json!({"type": "change_device", "fields": fields});
    let post = |role: &'static str, body: Value| async move {
        let r = s
            .call(Some(role), Method::POST, "/api/v1/orders", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (r.body["id"].as_i64().expect("id"), r.body)
    };
    let (_, r) = post("admin", change(json!({"host": ZAM2212, "hwa": NEW_MAC}))).await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let (_, r) = post(
        "admin",
        change(json!({"host": ZAM2212, "hwa": "00:1a:2b:zz"})),
    )
    .await;
    assert_eq!(r["state"], "ABORTED", "{r}");
    let (id, r) = post(
        "admin",
        change(json!({"host": ZAM2212, "hwa": ZAM2213_MAC})),
    )
    .await;
    assert_eq!(r["state"], "WAITING", "{r}");
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            Some(json!({"comment": "Checked with the OWNER: 50% sure_really"})),
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let (id, r) = post(
        "admin",
        change(json!({"host": ZAM2212, "hwa": JSCLAB7_MAC})),
    )
    .await;
    assert_eq!(r["state"], "WAITING", "{r}");
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/abort"),
            Some(json!({"comment": "Duplicate MAC refused"})),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    let (_, r) = post(
        "admin",
        change(json!({"host": ZAM2212, "hwa": JSCLAB7_MAC})),
    )
    .await;
    assert_eq!(r["state"], "WAITING", "{r}");
    let (_, r) = post(
        "employee",
        json!({"type": "register_device", "fields": {
            "host": "zam2299", "dv_class": "PC", "geb": "16.3", "raum": "R 227", "admin": "1002",
            "interfaces": [{"net": "134.94.16.0/24", "ipv4": "134.94.16.99", "hwa": "00:1a:2b:3c:4d:77",
                "aliases": [{"name": ZAM2299, "canonical": "Y"}, {"name": "scope.zam.kfa-juelich.de"}]}]}}),
    )
    .await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let (_, r) = post(
        "admin",
        change(json!({"host": ZAM2299, "ipv4": "134.94.16.98", "remove_aliases": ["scope.zam.kfa-juelich.de"]})),
    )
    .await;
    assert_eq!(r["state"], "COMPLETED", "{r}");
}

/// Every history document, oldest first (as staff, through the API).
async fn all_documents(s: &TestServer) -> Vec<Value> {
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            "/api/v1/orders?limit=1000",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut docs = r.body["orders"].as_array().expect("orders").clone();
    docs.reverse();
    docs
}

// ------------------------------------------------- the filters, worked out here

/// A value of `changed` matches a parameter: a string equal to it, a
/// number/boolean/null whose JSON text is it, or a list holding such.
fn value_matches(value: &Value, p: &str) -> bool {
    match value {
        Value::String(s) => s == p,
        Value::Number(_) | Value::Bool(_) | Value::Null => {
            serde_json::to_string(value).is_ok_and(|text| text == p)
        }
        Value::Array(items) => items.iter().any(|i| !i.is_array() && value_matches(i, p)),
        Value::Object(_) => false,
    }
}

fn matches(doc: &Value, query: &[(&str, &str)]) -> bool {
    let get = |k: &str| query.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let eq = |key: &str, param: &str| get(param).is_none_or(|v| doc[key] == v);
    let findings = |lists: &[&str]| -> Vec<String> {
        lists
            .iter()
            .flat_map(|l| doc[*l].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["check"].as_str().map(str::to_owned))
            .collect()
    };
    let created = doc["created_at"].as_str().unwrap();
    let changed = doc["changed"].as_object().unwrap();
    let changed_ok = if get("field").is_none() && get("old").is_none() && get("new").is_none() {
        true
    } else {
        changed.iter().any(|(k, pair)| {
            get("field").is_none_or(|f| f == k)
                && get("old").is_none_or(|o| value_matches(&pair[0], o))
                && get("new").is_none_or(|n| value_matches(&pair[1], n))
        })
    };
    let check_ok = get("check").is_none_or(|c| {
        let lists: &[&str] = match get("severity") {
            Some("error") => &["errors"],
            Some("warning") => &["warnings", "accepted_warnings"],
            _ => &["errors", "warnings", "accepted_warnings"],
        };
        findings(lists).iter().any(|f| f == c)
    });
    let text_ok = get("text").is_none_or(|t| {
        doc["states"].as_array().unwrap().iter().any(|s| {
            s["comment"]
                .as_str()
                .is_some_and(|c| c.to_lowercase().contains(&t.to_lowercase()))
        })
    });
    eq("host_id", "host")
        && eq("requester", "requester")
        && eq("type", "type")
        && eq("state", "state")
        && get("since").is_none_or(|v| created >= v)
        && get("until").is_none_or(|v| created < v)
        && changed_ok
        && check_ok
        && text_ok
}

fn ids(docs: &[Value]) -> Vec<i64> {
    docs.iter().map(|d| d["id"].as_i64().unwrap()).collect()
}

/// The queries every store is asked, with the number of orders each must
/// find at least (so that no check passes on an empty answer).
fn queries(docs: &[Value]) -> Vec<(Vec<(&'static str, String)>, usize)> {
    let by_type = |t: &str| docs.iter().find(|d| d["type"] == t).unwrap().clone();
    let registration = by_type("register_device");
    let device = registration["changed"]["device"][1].to_string();
    let employee = registration["requester"].as_str().unwrap().to_owned();
    let third = docs[2]["created_at"].as_str().unwrap().to_owned();
    let sixth = docs[5]["created_at"].as_str().unwrap().to_owned();
    let q = |pairs: &[(&'static str, &str)], at_least: usize| {
        (
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            at_least,
        )
    };
    vec![
        q(&[], 7),
        q(&[("field", "hwa")], 2),
        q(&[("field", "hwa"), ("new", NEW_MAC)], 1),
        q(&[("field", "hwa"), ("old", NEW_MAC)], 1),
        q(&[("new", NEW_MAC)], 1),
        q(&[("old", ZAM2212_MAC), ("new", NEW_MAC)], 1),
        q(&[("old", ZAM2212_MAC), ("new", ZAM2213_MAC)], 0),
        q(&[("field", "ipv4")], 1),
        q(&[("field", "ipv4"), ("new", "134.94.16.98")], 1),
        q(&[("field", "ipv4"), ("old", "134.94.16.98")], 0),
        q(&[("field", "device"), ("new", &device)], 1),
        q(&[("old", "null")], 1),
        q(
            &[("field", "aliases"), ("old", "scope.zam.kfa-juelich.de")],
            1,
        ),
        q(&[("check", "check_hwa_unique")], 3),
        q(&[("check", "check_hwa_unique"), ("severity", "warning")], 3),
        q(&[("check", "check_hwa_unique"), ("severity", "error")], 0),
        q(&[("check", "check_hwa_syntax"), ("severity", "error")], 1),
        q(&[("text", "owner")], 1),
        q(&[("text", "50%")], 1),
        q(&[("text", "50_")], 0),
        q(&[("text", "DUPLICATE mac")], 1),
        q(&[("type", "register_device")], 1),
        q(&[("state", "WAITING")], 1),
        q(&[("requester", &employee)], 1),
        q(&[("host", ZAM2212)], 5),
        q(&[("since", &third), ("until", &sixth)], 3),
        q(
            &[
                ("type", "change_device"),
                ("field", "hwa"),
                ("state", "COMPLETED"),
            ],
            2,
        ),
        q(&[("sort", "oldest"), ("check", "check_hwa_unique")], 3),
    ]
}

fn params(pairs: &[(&str, String)]) -> String {
    let mut out = form_urlencoded_pairs(pairs);
    if !out.is_empty() {
        out.insert(0, '?');
    }
    out
}

fn form_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn search_api(s: &TestServer, role: &str, query: &str) -> Value {
    let r = s
        .call(
            Some(role),
            Method::GET,
            &format!("/api/v1/history{query}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r.body
}

/// Each filter finds what it says, through the API, on both backends;
/// pages join up; bad parameters are 400 naming them; a non-staff person
/// finds only what they may read.
async fn history_search(db: Db) {
    let s = TestServer::start_on(db).await;
    place_orders(&s).await;
    let docs = all_documents(&s).await;
    assert_eq!(docs.len(), 7, "{docs:#?}");

    for (query, at_least) in queries(&docs) {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let oldest = pairs.contains(&("sort", "oldest"));
        let mut expected: Vec<i64> = ids(&docs)
            .into_iter()
            .zip(&docs)
            .filter(|(_, d)| matches(d, &pairs))
            .map(|(id, _)| id)
            .collect();
        if !oldest {
            expected.reverse();
        }
        assert!(
            expected.len() >= at_least,
            "{query:?} should find at least {at_least} orders: {docs:#?}"
        );
        let body = search_api(&s, "staff", &params(&query)).await;
        let found = ids(body["orders"].as_array().unwrap());
        assert_eq!(found, expected, "{query:?}");
        assert_eq!(body["next"], Value::Null, "{query:?}");
        // the documents are the history documents
        for doc in body["orders"].as_array().unwrap() {
            let full = docs.iter().find(|d| d["id"] == doc["id"]).unwrap();
            assert_eq!(doc, full, "{query:?}");
        }
    }

    // pages join up, in both directions
    for sort in ["newest", "oldest"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("sort", sort.to_owned()), ("limit", "3".to_owned())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let body = search_api(&s, "staff", &params(&q)).await;
            let page = ids(body["orders"].as_array().unwrap());
            assert!(page.len() <= 3);
            seen.extend(page);
            match body["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut all = ids(&docs);
        if sort == "newest" {
            all.reverse();
        }
        assert_eq!(seen, all, "{sort}");
    }

    // a person who is not staff finds only what they may read
    let employee = docs
        .iter()
        .find(|d| d["type"] == "register_device")
        .unwrap()["requester"]
        .clone();
    let body = search_api(&s, "employee", "").await;
    let found = body["orders"].as_array().unwrap();
    assert!(!found.is_empty());
    assert!(found.iter().all(|d| d["requester"] == employee), "{body}");
    let body = search_api(&s, "employee", "?field=hwa").await;
    assert_eq!(body["orders"], json!([]), "{body}");

    // bad parameters are refused, naming them
    for (query, names) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?cursor=zz", "cursor"),
        ("?sort=oldest&cursor=n3", "cursor"),
        ("?sort=sideways", "sort"),
        ("?type=chnage_device", "change_device"),
        ("?state=WAITNG", "WAITING"),
        ("?field=a.b", "field"),
        ("?severity=error", "check"),
        ("?check=x&severity=fatal", "severity"),
        ("?since=yesterday", "since"),
        ("?hots=x", "host"),
        ("?text=a%00b", "text"),
        ("?host=a&host=b", "host"),
    ] {
        let r = s
            .call(
                Some("staff"),
                Method::GET,
                &format!("/api/v1/history{query}"),
                None,
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, names);
    }
    let r = s.call(None, Method::GET, "/api/v1/history", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
crate::support::for_both_backends!(history_search);

// ------------------------------------------------------ statistics, worked out here

fn ms(at: &str) -> i64 {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn spread(mut values: Vec<i64>) -> Value {
    values.sort_unstable();
    let n = values.len();
    let rank = |p: f64| -> Value {
        if n == 0 {
            return Value::Null;
        }
        json!(values[((p * n as f64).ceil() as usize).max(1) - 1])
    };
    json!({"count": n, "p50": rank(0.5), "p90": rank(0.9), "max": values.last()})
}

/// The statistics of `docs` grouped by `key`, as the API should answer.
fn expected_stats(docs: &[Value], by: &str, key: impl Fn(&Value) -> Value) -> Value {
    let group = |members: Vec<&Value>, key: Value| {
        let mut states: BTreeMap<String, i64> = BTreeMap::new();
        let (mut closed, mut automated, mut waited, mut waiting_total) = (0i64, 0i64, 0i64, 0i64);
        let (mut durations, mut waits) = (Vec::new(), Vec::new());
        let mut checks: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for d in &members {
            *states
                .entry(d["state"].as_str().unwrap().to_owned())
                .or_default() += 1;
            let entries = d["states"].as_array().unwrap();
            let mut waiting = 0;
            let mut did_wait = false;
            for (i, e) in entries.iter().enumerate() {
                if e["state"] == "WAITING" {
                    did_wait = true;
                    if let Some(next) = entries.get(i + 1) {
                        waiting += ms(next["at"].as_str().unwrap()) - ms(e["at"].as_str().unwrap());
                    }
                }
            }
            if did_wait {
                waited += 1;
                waits.push(waiting);
            }
            waiting_total += waiting;
            if d["closed"] == true {
                closed += 1;
                if !did_wait {
                    automated += 1;
                }
                let last = entries.last().unwrap()["at"].as_str().unwrap();
                durations.push(ms(last) - ms(d["created_at"].as_str().unwrap()));
            }
            let names = |lists: &[&str]| -> std::collections::BTreeSet<String> {
                lists
                    .iter()
                    .flat_map(|l| d[*l].as_array().cloned().unwrap_or_default())
                    .map(|f| f["check"].as_str().unwrap().to_owned())
                    .collect()
            };
            for c in names(&["errors"]) {
                checks.entry(c).or_default().0 += 1;
            }
            for c in names(&["warnings", "accepted_warnings"]) {
                checks.entry(c).or_default().1 += 1;
            }
        }
        json!({
            "key": key,
            "orders": members.len(),
            "states": states,
            "closed": closed,
            "automated": automated,
            "automation_rate": (closed > 0).then(|| automated as f64 / closed as f64),
            "duration_ms": spread(durations),
            "waited": waited,
            "waiting_ms_total": waiting_total,
            "waiting_ms": spread(waits),
            "checks": checks.into_iter()
                .map(|(c, (e, w))| json!({"check": c, "errors": e, "warnings": w}))
                .collect::<Vec<_>>(),
        })
    };
    let mut groups: BTreeMap<Option<String>, Vec<&Value>> = BTreeMap::new();
    for d in docs {
        let k = key(d);
        let k = match k {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        };
        groups.entry(k).or_default().push(d);
    }
    json!({
        "by": by,
        "since": null,
        "until": null,
        "total": group(docs.iter().collect(), Value::Null),
        "groups": groups.into_iter().map(|(k, m)| group(m, json!(k))).collect::<Vec<_>>(),
    })
}

/// The statistics per type, state, month and org unit are what the
/// history documents say, on both backends; bad groupings are refused.
async fn history_stats(db: Db) {
    let s = TestServer::start_on(db).await;
    place_orders(&s).await;
    let docs = all_documents(&s).await;
    let fact = |name: &'static str| move |d: &Value| d["facts"][name].clone();
    type Key = Box<dyn Fn(&Value) -> Value>;
    let cases: Vec<(&str, Key)> = vec![
        ("type", Box::new(|d: &Value| d["type"].clone())),
        ("state", Box::new(|d: &Value| d["state"].clone())),
        (
            "day",
            Box::new(|d: &Value| json!(&d["created_at"].as_str().unwrap()[..10])),
        ),
        (
            "month",
            Box::new(|d: &Value| json!(&d["created_at"].as_str().unwrap()[..7])),
        ),
        ("org", Box::new(fact("resource.org"))),
        ("device", Box::new(fact("resource.device"))),
    ];
    for (by, key) in cases {
        let r = s
            .call(
                Some("staff"),
                Method::GET,
                &format!("/api/v1/stats?by={by}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, expected_stats(&docs, by, key), "by={by}");
    }
    let total = &expected_stats(&docs, "type", |d| d["type"].clone())["total"];
    assert_eq!(total["orders"], 7);
    assert_eq!(total["waited"], 3, "{total}");
    assert_eq!(total["closed"], 6, "{total}");
    assert_eq!(total["automated"], 4, "{total}");

    // a person who is not staff counts what they may read
    let r = s
        .call(Some("employee"), Method::GET, "/api/v1/stats", None)
        .await;
    assert_eq!(r.body["total"]["orders"], 1, "{}", r.body);

    for (query, name) in [
        ("?by=colour", "by"),
        ("?by=orgg", "org"),
        ("?since=2026-13-01T00:00:00Z", "since"),
        ("?field=hwa", "field"),
    ] {
        let r = s
            .call(
                Some("staff"),
                Method::GET,
                &format!("/api/v1/stats{query}"),
                None,
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, name);
    }
}
crate::support::for_both_backends!(history_stats);

// ------------------------------------------------------------------ MongoDB

/// Fills MongoDB from the SQL database with the exporter's `export --all`
/// (the collection set up with its validator and indexes first).
async fn fill_mongo(s: &TestServer, url: &str) -> auftrag_engine::history::mongo::HistoryDb {
    let history = auftrag_engine::history::mongo::HistoryDb::connect(url)
        .await
        .expect("connect to SecantusDB");
    history
        .ensure(s.engine.defs, auftrag_engine::history::mongo_indexes())
        .await
        .expect("the collection, its validator and indexes");
    auftrag_engine::history::exporter::export_all(
        &s.engine.store,
        s.engine.defs,
        &history,
        |_, _| {},
    )
    .await
    .expect("export --all");
    history
}

fn query_map(pairs: &[(&str, String)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// MongoDB (SecantusDB) answers every search and every statistic as the
/// SQL database does, also within a person's access and page by page;
/// `auftrag history search|stats --history` asks it.
async fn history_mongo_equals_sql(db: Db) {
    let s = TestServer::start_on(db).await;
    place_orders(&s).await;
    let docs = all_documents(&s).await;
    let server = auftrag_testkit::tools::secantusdb();
    let url = format!(
        "mongodb://127.0.0.1:{}/history?directConnection=true",
        server.port()
    );
    let history = fill_mongo(&s, &url).await;
    let defs = s.engine.defs;
    let employee = docs
        .iter()
        .find(|d| d["type"] == "register_device")
        .unwrap()["requester"]
        .clone();
    let accesses = [
        Access::Everything,
        Access::Only(Cond::Eq(Column::Requester, employee)),
        Access::Only(Cond::In(Column::Host, vec![json!(ZAM2212), json!(ZAM2299)])),
        Access::Nothing,
    ];
    for access in &accesses {
        for (query, _) in queries(&docs) {
            let q = SearchQuery::parse(defs, &query_map(&query)).unwrap();
            let sql = search::search_sql(&s.engine.store, defs, access, &q)
                .await
                .unwrap();
            let mongo = search::search_mongo(&history, access, &q).await.unwrap();
            assert_eq!(
                serde_json::to_value(&mongo).unwrap(),
                serde_json::to_value(&sql).unwrap(),
                "{query:?} within {access:?}"
            );
        }
        // page by page
        let mut cursor = None;
        loop {
            let mut query = vec![("limit", "2".to_owned()), ("field", "hwa".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", String::clone(c)));
            }
            let q = SearchQuery::parse(defs, &query_map(&query)).unwrap();
            let sql = search::search_sql(&s.engine.store, defs, access, &q)
                .await
                .unwrap();
            let mongo = search::search_mongo(&history, access, &q).await.unwrap();
            assert_eq!(
                serde_json::to_value(&mongo).unwrap(),
                serde_json::to_value(&sql).unwrap()
            );
            match sql.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let third = docs[2]["created_at"].as_str().unwrap().to_owned();
        for by in ["type", "state", "day", "month", "org", "admin", "device"] {
            for range in [
                vec![],
                vec![("since", third.clone())],
                vec![("until", third.clone())],
            ] {
                let mut query = range.clone();
                query.push(("by", by.to_owned()));
                let mut q = StatsQuery::parse(defs, &query_map(&query)).unwrap();
                // also of one order type (the statistics page's orders per
                // day by type)
                for order_type in [None, Some("change_device")] {
                    q.order_type = order_type.map(str::to_owned);
                    let sql = stats::stats_sql(&s.engine.store, access, &q).await.unwrap();
                    let mongo = stats::stats_mongo(&history, access, &q).await.unwrap();
                    assert_eq!(
                        serde_json::to_value(&mongo).unwrap(),
                        serde_json::to_value(&sql).unwrap(),
                        "stats {query:?} of {order_type:?} within {access:?}"
                    );
                }
            }
        }
    }

    // the command line, on SQL and on MongoDB
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_auftrag"))
            .arg("--database")
            .arg(&s.db_url)
            .args(args)
            .output()
            .expect("run auftrag");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let searched = cli(&["history", "search", "--field", "hwa", "--new", NEW_MAC]);
    assert_eq!(
        ids(searched["orders"].as_array().unwrap()).len(),
        1,
        "{searched}"
    );
    assert_eq!(
        cli(&[
            "history",
            "search",
            "--field",
            "hwa",
            "--new",
            NEW_MAC,
            "--history",
            &url
        ]),
        searched
    );
    let counted = cli(&["history", "stats", "--by", "org"]);
    assert_eq!(counted["total"]["orders"], 7, "{counted}");
    assert_eq!(
        cli(&["history", "stats", "--by", "org", "--history", &url]),
        counted
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auftrag"))
        .args(["--database", &s.db_url, "history", "search", "--limit", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
crate::support::for_both_backends!(history_mongo_equals_sql);

//! Hostile input (issue 16, items 5 and 6): free text with control
//! characters or of 100 KB is a field error on both backends and changes
//! nothing in the device database; comments and query texts likewise (400);
//! an order the engine cannot process does not keep the server from
//! starting; tokens of deleted persons and revoked tokens are refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::cli::{serve_demo, terminate, token};
use crate::support::*;

/// The hostile values, each with what its error says.
fn hostile() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "NUL",
            "ab\u{0}c".into(),
            "contains a control character (U+0000) at position 3",
        ),
        (
            "ESC",
            "\u{1b}[2J".into(),
            "contains a control character (U+001B) at position 1",
        ),
        (
            "CR/LF",
            "a\r\nb".into(),
            "contains a control character (U+000D) at position 2",
        ),
        (
            "100 KB",
            "x".repeat(100 * 1024),
            "is 102400 characters long",
        ),
    ]
}

fn registration() -> Value {
    json!({"host": "zam2298", "dv_class": "PC", "geb": "16.3", "raum": "R 227", "admin": "1002",
           "interfaces": [{"net": "134.94.32.0/24", "ipv4": "134.94.32.77", "hwa": "00:1a:2b:3c:4d:77",
                           "aliases": [{"name": "zam2298.zam.kfa-juelich.de"}]}]})
}

/// Every row of the device tables an order could change, as text.
async fn device_database(pool: &AnyPool) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT DV_OBJ_ID, DV_LABEL, SERIAL, TYPE, DV_LOC_ORG FROM x_device ORDER BY DV_OBJ_ID",
        "SELECT PT_OBJ_ID, HARDW_ADDR FROM x_port ORDER BY PT_OBJ_ID",
        "SELECT ID, DEPUTY, NAMED_BY, DEVICE, ORG, UNTIL FROM auftrag_deputies ORDER BY ID",
    ] {
        for row in sqlx::query(sql).fetch_all(pool).await.expect(sql) {
            let cols: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| format!("{v:?}"))
                        .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                        .unwrap_or_else(|e| format!("? {e}"))
                })
                .collect();
            out.push(cols.join("|"));
        }
    }
    out
}

async fn free_text_fields_refuse_control_characters_and_overlong_text(db: Db) {
    let s = TestServer::start_on(db).await;
    let pool = s.db().await;
    let before = device_database(&pool).await;
    // (role, order type, the other fields, the field, whether it is a list)
    let cases: Vec<(&str, &str, Value, &str, bool)> = vec![
        (
            "admin",
            "change_device",
            json!({"host": ZAM2212}),
            "dv_type",
            false,
        ),
        (
            "admin",
            "change_device",
            json!({"host": ZAM2212}),
            "serial",
            false,
        ),
        (
            "admin",
            "change_device",
            json!({"host": ZAM2212}),
            "org",
            false,
        ),
        (
            "admin",
            "change_device",
            json!({"host": ZAM2212}),
            "notify",
            true,
        ),
        (
            "admin",
            "change_device",
            json!({"hwa": "00:1a:2b:3c:4d:78"}),
            "host",
            false,
        ),
        (
            "employee",
            "register_device",
            registration(),
            "dv_type",
            false,
        ),
        (
            "employee",
            "register_device",
            registration(),
            "serial",
            false,
        ),
        ("employee", "register_device", registration(), "org", false),
        (
            "employee",
            "register_device",
            registration(),
            "notify",
            true,
        ),
        (
            "admin",
            "delete_device",
            json!({"host": ZAM2212}),
            "reason",
            false,
        ),
        (
            "staff",
            "name_deputy",
            json!({"deputy": "1001"}),
            "org",
            false,
        ),
    ];
    for (role, order_type, base, field, list) in &cases {
        for (what, value, says) in hostile() {
            let mut fields = base.clone();
            fields[*field] = if *list { json!([value]) } else { json!(value) };
            let r = s
                .call(
                    Some(role),
                    Method::POST,
                    "/api/v1/orders",
                    Some(json!({"type": order_type, "fields": fields})),
                )
                .await;
            let at = format!("{order_type}.{field} with {what}");
            assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.body);
            assert_eq!(r.body["state"], "ABORTED", "{at}: {}", r.body);
            let path = if *list {
                format!("{field}[0]")
            } else {
                (*field).to_owned()
            };
            let errors = r.body["errors"].as_array().expect("errors");
            let error = errors
                .iter()
                .find(|e| e["field"] == path.as_str())
                .unwrap_or_else(|| panic!("{at}: no error for {path}: {}", r.body));
            assert_eq!(error["check"], "syntax", "{at}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(message.starts_with(says), "{at}: {message}");
            // the message never quotes the value
            assert!(message.len() < 200, "{at}: {message}");
        }
    }
    assert_eq!(device_database(&pool).await, before, "nothing changed");

    // a reason may have lines (multiline), a serial may not; a field's own
    // max_length counts
    let r = s
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/validate",
            Some(json!({"type": "delete_device",
                        "fields": {"host": ZAM2212, "reason": "scrapped\n\tsee ticket 42"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        !r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "reason"),
        "{}",
        r.body
    );
    let r = s
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/validate",
            Some(json!({"type": "change_device",
                        "fields": {"host": ZAM2212, "serial": "a\nb", "dv_type": "x".repeat(65)}})),
        )
        .await;
    let errors = r.body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["field"] == "serial"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("(U+000A) at position 2")),
        "{}",
        r.body
    );
    assert!(
        errors.iter().any(|e| e["field"] == "dv_type"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("at most 64 are allowed")),
        "{}",
        r.body
    );
}
for_both_backends!(free_text_fields_refuse_control_characters_and_overlong_text);

async fn comments_and_query_texts_refuse_control_characters(db: Db) {
    let s = TestServer::start_on(db).await;
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let refused = [
        (
            "admin",
            Method::POST,
            "withdraw",
            json!({"comment": "a\u{0}b"}),
            "U+0000",
        ),
        (
            "staff",
            Method::POST,
            "abort",
            json!({"comment": "\u{1b}[2J"}),
            "U+001B",
        ),
        (
            "staff",
            Method::POST,
            "accept",
            json!({"comment": "x".repeat(3000)}),
            "3000 characters long",
        ),
        (
            "staff",
            Method::PATCH,
            "fields",
            json!({"fields": {"hwa": JSCLAB7_MAC}, "comment": "a\r\nb"}),
            "U+000D",
        ),
    ];
    for (role, method, action, body, says) in refused {
        let r = s
            .call(
                Some(role),
                method,
                &format!("/api/v1/orders/{id}/{action}"),
                Some(body),
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, says);
        assert_eq!(r.body["errors"][0]["field"], "comment", "{}", r.body);
    }
    assert_eq!(s.order(id).await["state"], "WAITING");
    // lines and tabs are fine in a comment
    let r = s
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/{id}/withdraw"),
            Some(json!({"comment": "no longer needed\n\tthanks"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED");
    let doc = s.order(id).await;
    let last = doc["states"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["comment"].as_str().unwrap().ends_with("\n\tthanks"),
        "{last}"
    );

    // texts searched for (on PostgreSQL a NUL would be the database's error)
    for path in [
        "/api/v1/orders?host=a%00b",
        "/api/v1/orders?requester=10%0002",
        "/api/v1/orders?state=WAITING%00",
        "/api/v1/explain?person=1002&action=change&host=a%00b",
        "/api/v1/explain?person=10%0002&action=change",
    ] {
        let r = s.call(Some("staff"), Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.content_type, "application/problem+json", "{path}");
    }
}
for_both_backends!(comments_and_query_texts_refuse_control_characters);

/// A request with `token`.
async fn with_token(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = s
        .client()
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    s.raw(req).await
}

fn an_order() -> Value {
    json!({"type": "change_device", "fields": {"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:99"}})
}

fn a_job() -> Value {
    json!({"queue": "labels", "data": "label"})
}

async fn a_token_of_a_deleted_person_is_refused(db: Db) {
    let s = TestServer::start_on(db).await;
    let pool = s.db().await;
    sqlx::query("INSERT INTO d_pers (PERS_KEY, NAME, ORG) VALUES (4242, 'Gone', 'JSC')")
        .execute(&pool)
        .await
        .unwrap();
    let token = s
        .engine
        .issue_token("4242", time::Duration::hours(1))
        .await
        .unwrap();
    sqlx::query("DELETE FROM d_pers WHERE PERS_KEY = 4242")
        .execute(&pool)
        .await
        .unwrap();
    let r = with_token(&s, &token, Method::POST, "/api/v1/orders", Some(an_order())).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "no longer exists");
    let r = with_token(&s, &token, Method::POST, "/api/v1/jobs", Some(a_job())).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "no longer exists");
    let r = with_token(&s, &token, Method::GET, "/api/v1/orders", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "no longer exists");
    for sql in [
        "SELECT COUNT(*) FROM auftrag_orders WHERE requester = '4242'",
        "SELECT COUNT(*) FROM auftrag_jobs WHERE owner = '4242'",
    ] {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 0, "{sql}");
    }
}
for_both_backends!(a_token_of_a_deleted_person_is_refused);

async fn revoked_tokens_are_refused_and_new_ones_work(db: Db) {
    let s = TestServer::start_on(db).await;
    let old = s.token("employee").to_owned();
    let r = with_token(&s, &old, Method::GET, "/api/v1/orders", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let epoch = s.engine.revoke_tokens("1001").await.unwrap();
    assert_eq!(epoch, 1);
    let r = with_token(&s, &old, Method::GET, "/api/v1/orders", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "revoked");
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "auftrag token issue --person 1001",
    );
    let r = with_token(&s, &old, Method::POST, "/api/v1/jobs", Some(a_job())).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "revoked");
    let new = s
        .engine
        .issue_token("1001", time::Duration::hours(1))
        .await
        .unwrap();
    let r = with_token(&s, &new, Method::POST, "/api/v1/jobs", Some(a_job())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // other persons' tokens are untouched
    let r = s
        .call(Some("admin"), Method::GET, "/api/v1/orders", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // revoking again refuses the second token too
    assert_eq!(s.engine.revoke_tokens("1001").await.unwrap(), 2);
    let r = with_token(&s, &new, Method::GET, "/api/v1/orders", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "revoked");
}
for_both_backends!(revoked_tokens_are_refused_and_new_ones_work);

/// A database for a test of the binary.
async fn database(db: Db, dir: &tempfile::TempDir) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("auftrag.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_auftrag");

async fn token_revoke_on_the_command_line(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = database(db, &dir).await;
    let served = serve_demo(&url).await;
    let old = token(&served, "employee").to_owned();
    terminate(served).await;
    let out = std::process::Command::new(BIN)
        .args(["--database", &url, "token", "revoke", "--person", "1001"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
    // the restarted server prints new demo tokens, of the new epoch
    let served = serve_demo(&url).await;
    let client = reqwest::Client::new();
    let get = |token: String| {
        let req = client
            .get(format!("{}/api/v1/orders", served.base))
            .bearer_auth(token);
        async move { req.send().await.unwrap() }
    };
    let resp = get(old).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    let resp = get(token(&served, "employee").to_owned()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = get(token(&served, "admin").to_owned()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    terminate(served).await;
}
for_both_backends!(token_revoke_on_the_command_line);

/// Stores an order in INITIAL directly, as a crash between storing and
/// processing leaves it; returns its id.
async fn stored_order(pool: &AnyPool, order_type: &str, fields: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO auftrag_orders (order_type, requester, host, state, closed, created_at, updated_at, \
         fields, changes, states, errors, warnings, accepted) \
         VALUES ($1, '1002', NULL, 'INITIAL', 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', \
         $2, '{}', '[{\"state\":\"INSERTED\",\"at\":\"2026-01-01T00:00:00.000Z\"}]', '[]', '[]', '[]') \
         RETURNING id",
    )
    .bind(order_type)
    .bind(fields)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn an_order_that_cannot_be_resumed_does_not_stop_the_start(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = database(db, &dir).await;
    terminate(serve_demo(&url).await).await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    let good = stored_order(
        &pool,
        "change_device",
        &json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:77"}).to_string(),
    )
    .await;
    // (SQLite's table checks that the fields are JSON; PostgreSQL's no
    // longer does, migration 0005)
    let not_json = match db {
        Db::Postgres => Some(stored_order(&pool, "change_device", "{\"host\": ").await),
        Db::Sqlite => None,
    };
    let lost_type = stored_order(&pool, "no_such_type", "{}").await;
    // a NUL in a free-text field: on PostgreSQL the device write failed and
    // start-up stopped on it
    let nul = stored_order(
        &pool,
        "change_device",
        &json!({"host": ZAM2212, "org": "JS\u{0}C"}).to_string(),
    )
    .await;
    let served = serve_demo(&url).await;
    let state = |id: i64| {
        let pool = pool.clone();
        async move {
            let row = sqlx::query(
                "SELECT state, closed, states, errors FROM auftrag_orders WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
            let states: Value = serde_json::from_str(&row.get::<String, _>(2)).unwrap();
            let errors: Value = serde_json::from_str(&row.get::<String, _>(3)).unwrap();
            (
                row.get::<String, _>(0),
                row.get::<i64, _>(1),
                states,
                errors,
            )
        }
    };
    let (s, closed, ..) = state(good).await;
    assert_eq!((s.as_str(), closed), ("COMPLETED", 1));
    for id in not_json.into_iter().chain([lost_type]) {
        let (s, closed, states, errors) = state(id).await;
        assert_eq!((s.as_str(), closed), ("ABORTED", 1), "order {id}");
        let last = states.as_array().unwrap().last().unwrap();
        assert_eq!(last["state"], "ABORTED");
        assert!(
            last["comment"]
                .as_str()
                .unwrap()
                .starts_with("the engine could not process the order: "),
            "{last}"
        );
        assert_eq!(errors[0]["check"], "resume", "{errors}");
    }
    let (s, _, _, errors) = state(nul).await;
    assert_eq!(s, "ABORTED");
    assert_eq!(errors[0]["field"], "org", "{errors}");
    let org: Option<String> =
        sqlx::query_scalar("SELECT DV_LOC_ORG FROM x_device WHERE DV_OBJ_ID = 5001")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(org.as_deref(), Some("JSC"));
    // the server serves
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/orders/{good}", served.base))
        .bearer_auth(token(&served, "staff"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    terminate(served).await;
}
for_both_backends!(an_order_that_cannot_be_resumed_does_not_stop_the_start);

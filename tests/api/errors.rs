//! Bad requests get problem+json with a reason a person can act on, and
//! change nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

on_both_backends! {
async fn bad_orders_are_refused_with_problem_json(s) {

    let r = s
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": "chnage_device", "fields": {}})),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::BAD_REQUEST,
        "unknown order type `chnage_device`",
    );

    let r = s
        .submit(
            "admin",
            json!({"host": ZAM2212, "hwx": "00:1a:2b:3c:4d:99"}),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::BAD_REQUEST,
        "field `hwx` is unknown to order type `change_device`; did you mean `hwa`?",
    );
    assert_eq!(r.body["errors"][0]["field"], "hwx");

    let r = s.submit("admin", json!({"hwa": "00:1a:2b:3c:4d:99"})).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "field `host` is required");

    let r = s.submit("admin", json!({"host": ZAM2212, "hwa": 42})).await;
    assert_problem(
        &r,
        StatusCode::BAD_REQUEST,
        "field `hwa` must be a string (mac), not a number",
    );

    let r = s
        .raw(
            s.client()
                .post(format!("{}/api/v1/orders", s.base))
                .bearer_auth(s.token("admin"))
                .header("content-type", "application/json")
                .body("{\"type\": \"change_device\", \"fields\": {"),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "the request body is not valid");

    let r = s
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"type": "change_device", "felds": {}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "unknown field `felds`");

    // Nothing of this reached the database.
    let r = s
        .call(Some("staff"), Method::GET, "/api/v1/orders", None)
        .await;
    assert_eq!(r.body["orders"], json!([]));
    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2212_MAC));
}
}

on_both_backends! {
async fn tokens_are_required_and_checked(s) {
    let r = s.call(None, Method::GET, "/api/v1/orders", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "Authorization: Bearer");

    let r = s
        .raw(
            s.client()
                .get(format!("{}/api/v1/orders", s.base))
                .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.bm9wZQ"),
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not valid");

    // A token signed by another server's key is refused too.
    let other = TestServer::start().await;
    let r = s
        .raw(
            s.client()
                .get(format!("{}/api/v1/orders", s.base))
                .bearer_auth(other.token("staff")),
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not valid");

    let r = s.call(None, Method::GET, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
}
}

on_both_backends! {
async fn staff_actions_need_staff(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    for (method, action, body) in [
        (Method::POST, "accept", None),
        (Method::POST, "abort", None),
        (
            Method::PATCH,
            "fields",
            Some(json!({"fields": {"hwa": "00:1a:2b:3c:4d:98"}})),
        ),
    ] {
        let r = s
            .call(
                Some("admin"),
                method,
                &format!("/api/v1/orders/{id}/{action}"),
                body,
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "only staff may");
    }
    assert_eq!(
        s.order(id).await["state"],
        "WAITING",
        "refused actions change nothing"
    );

    let r = s
        .call(
            Some("staff"),
            Method::POST,
            "/api/v1/orders/999/accept",
            None,
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "there is no order 999");
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            "/api/v1/orders/abc/accept",
            None,
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "order id must be a number");
    let r = s
        .call(
            Some("staff"),
            Method::PATCH,
            &format!("/api/v1/orders/{id}/fields"),
            Some(json!({"fields": {"hots": "x"}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "did you mean `host`?");

    // Staff actions on an order that is not waiting: 409.
    let r = s
        .submit(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:97"}),
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED");
    let done = r.body["id"].as_i64().unwrap();
    let r = s
        .call(
            Some("staff"),
            Method::PATCH,
            &format!("/api/v1/orders/{done}/fields"),
            Some(json!({"fields": {"hwa": "00:1a:2b:3c:4d:96"}})),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "is in state COMPLETED");

    let r = s
        .call(Some("staff"), Method::GET, "/api/v1/nothing", None)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no route");
}
}

/// Makes `x_port` refuse every update, as a table under maintenance (or a
/// constraint the order's data breaks) would: the action writing the
/// device fails for a reason of its own, not because the database is away.
async fn refuse_port_updates(s: &TestServer, db: Db) {
    let pool = s.db().await;
    let statements: &[&str] = match db {
        Db::Sqlite => &[
            "CREATE TRIGGER refuse_port_updates BEFORE UPDATE ON x_port \
             BEGIN SELECT RAISE(ABORT, 'x_port is read-only for maintenance'); END",
        ],
        Db::Postgres => &[
            "CREATE FUNCTION refuse_port_updates() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'x_port is read-only for maintenance'; END $$",
            "CREATE TRIGGER refuse_port_updates BEFORE UPDATE ON x_port \
             FOR EACH ROW EXECUTE FUNCTION refuse_port_updates()",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
}

/// An order whose action fails for good (issue 18, item 1) is not left in
/// INITIAL for every start to run again: it ends in the state its workflow
/// reaches on errors (ABORTED), with the reason as its error and in its
/// history, and the requester gets its id and state; start-up leaves it.
async fn a_failing_action_ends_the_order_with_the_error_recorded(db: Db) {
    let s = TestServer::start_on(db).await;
    refuse_port_updates(&s, db).await;
    let r = s
        .submit(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:99"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["closed"], true, "{}", r.body);
    let error = &r.body["errors"][0];
    assert_eq!(error["check"], "processing", "{}", r.body);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("the engine could not process the order: ")
            && message.contains("x_port is read-only for maintenance"),
        "{message}"
    );
    let id = r.body["id"].as_i64().unwrap();
    // nothing of the action was written
    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2212_MAC));
    let doc = s.order(id).await;
    assert_eq!(states(&doc), ["INSERTED", "ABORTED"], "{doc}");
    assert_eq!(doc["states"][1]["comment"].as_str(), Some(message), "{doc}");
    // the next start finds nothing to resume, and the order stays as it is
    assert_eq!(s.engine.resume_unfinished().await.unwrap(), 0);
    let again = s.order(id).await;
    assert_eq!(states(&again), ["INSERTED", "ABORTED"], "{again}");
    assert_eq!(again["errors"], doc["errors"]);
}
for_both_backends!(a_failing_action_ends_the_order_with_the_error_recorded);

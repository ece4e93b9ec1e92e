//! Claims of staff on orders (`POST /api/v1/orders/{id}/claim`,
//! `…/unclaim`): one person works an order at a time, a claim is taken over
//! only when asked, claims lapse, and they are in the order's history.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

async fn waiting(s: &TestServer) -> i64 {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// A second member of staff (the IT officer, 1004, joins the staff table)
/// with a token.
async fn second_staff(s: &TestServer) -> String {
    let mut conn = s.engine.store.pool.acquire().await.unwrap();
    auftrag_engine::store::add_staff(&mut conn, "1004")
        .await
        .unwrap();
    s.engine
        .issue_token("1004", time::Duration::hours(1))
        .await
        .unwrap()
}

async fn post_as(
    s: &TestServer,
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = s
        .client()
        .post(format!("{}{path}", s.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    s.raw(req).await
}

async fn claims_hold_until_taken_over(db: Db) {
    let s = TestServer::start_on(db).await;
    let id = waiting(&s).await;
    let other = second_staff(&s).await;
    let claim = format!("/api/v1/orders/{id}/claim");
    let r = s.call(Some("staff"), Method::POST, &claim, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["claimed_by"], "1005");
    // another member of staff may neither claim nor act on it…
    let r = post_as(&s, &other, &claim, None).await;
    assert_problem(&r, StatusCode::CONFLICT, "claimed by 1005");
    let r = post_as(&s, &other, &format!("/api/v1/orders/{id}/accept"), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "claimed by 1005");
    let r = post_as(&s, &other, &format!("/api/v1/orders/{id}/unclaim"), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "not by you");
    // …until taking it over says so
    let r = post_as(&s, &other, &claim, Some(json!({"take_over": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["claimed_by"], "1004");
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "claimed by 1004");
    let r = post_as(&s, &other, &format!("/api/v1/orders/{id}/unclaim"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let events: Vec<(String, String)> = s.order(id).await["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["person"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("claim", "1005"),
        ("take_over", "1004"),
        ("unclaim", "1004"),
    ];
    assert_eq!(events, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    // a closed order has nothing to claim
    let r = s.call(Some("staff"), Method::POST, &claim, None).await;
    assert_problem(&r, StatusCode::CONFLICT, "closed");
}
for_both_backends!(claims_hold_until_taken_over);

#[tokio::test]
async fn only_staff_claim_and_claims_lapse() {
    let s = TestServer::start().await;
    let id = waiting(&s).await;
    let claim = format!("/api/v1/orders/{id}/claim");
    // the requester may read the order but is not staff; others learn nothing
    let r = s.call(Some("admin"), Method::POST, &claim, None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only staff may");
    let r = s.call(Some("employee"), Method::POST, &claim, None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no order");
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &claim,
            Some(json!({"take_over": "yes"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "take_over");
    // a claim that lapsed holds nobody off (the claim's end is moved
    // into the past in the table: the server shares its engine)
    let r = s.call(Some("staff"), Method::POST, &claim, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    sqlx::query("UPDATE auftrag_claims SET until = '2000-01-01T00:00:00.000Z'")
        .execute(&s.db().await)
        .await
        .unwrap();
    let other = second_staff(&s).await;
    let r = post_as(&s, &other, &format!("/api/v1/orders/{id}/accept"), None).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
}

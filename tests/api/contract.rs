//! The API contract for integrators (issue 22): versions of orders
//! (`ETag` / `If-Match`), request ids, metrics, the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// A staff request on order `id` with an `If-Match` header.
async fn staff_with_etag(
    s: &TestServer,
    method: Method,
    path: &str,
    etag: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = s
        .client()
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(s.token("staff"))
        .header("if-match", etag);
    if let Some(body) = body {
        req = req.json(&body);
    }
    s.raw(req).await
}

on_both_backends! {
/// Two staff members work one waiting order: the one acting on a stale
/// view gets 412, not a silent overwrite of the other's decision.
async fn stale_staff_actions_get_412(s) {
    let r = s.submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC})).await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/orders/{id}");
    let seen = s.call(Some("staff"), Method::GET, &path, None).await;
    let etag = seen.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    // The same version read again has the same tag.
    let again = s.call(Some("staff"), Method::GET, &path, None).await;
    assert_eq!(again.headers["etag"], etag.as_str());

    // A colleague changes the MAC (with the current version: allowed).
    let r = staff_with_etag(
        &s,
        Method::PATCH,
        &format!("{path}/fields"),
        &etag,
        Some(json!({"fields": {"hwa": JSCLAB7_MAC}, "comment": "typo"})),
    )
    .await;
    assert_eq!(r.body["state"], "WAITING", "another device's MAC: it waits again: {}", r.body);
    let changed = s.call(Some("staff"), Method::GET, &path, None).await;
    let new_etag = changed.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag, "a change makes a new version");

    // The first one accepts what they saw: refused, nothing changes.
    for (method, action) in [(Method::POST, "accept"), (Method::POST, "abort")] {
        let r = staff_with_etag(&s, method, &format!("{path}/{action}"), &etag, None).await;
        assert_problem(&r, StatusCode::PRECONDITION_FAILED, "changed since the version you sent");
    }
    let r = staff_with_etag(&s, Method::PATCH, &format!("{path}/fields"), &etag, Some(json!({"fields": {"hwa": ZAM2212_MAC}}))).await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "read it again");
    let unchanged = s.call(Some("staff"), Method::GET, &path, None).await;
    assert_eq!(unchanged.headers["etag"], new_etag.as_str());
    assert_eq!(unchanged.body["fields"]["hwa"], JSCLAB7_MAC);

    // With the current version (or `*`), it goes through.
    let r = staff_with_etag(&s, Method::POST, &format!("{path}/abort"), &format!("\"x\", {new_etag}"), Some(json!({"comment": "no"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
}
}

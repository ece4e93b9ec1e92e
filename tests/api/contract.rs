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

on_both_backends! {
/// `/metrics` is Prometheus text that a real parser reads, with what the
/// engine did: orders by type and state, findings, decisions, requests.
async fn metrics_are_scraped_by_a_prometheus_parser(s) {
    // Something to count: a completed, an aborted and a waiting order.
    s.submit("admin", json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:98"})).await;
    s.submit("admin", json!({"host": ZAM2212, "hwa": "00:1a:2b:zz"})).await;
    s.submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC})).await;

    let r = s.call(None, Method::GET, "/metrics", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "metrics token");
    let r = s.call(Some("admin"), Method::GET, "/metrics", None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only staff or the metrics token");

    let resp = s
        .client()
        .get(format!("{}/metrics", s.base))
        .bearer_auth(s.token("staff"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.expect("text");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let find = |name: &str, labels: &[(&str, &str)]| {
        scrape.samples.iter().find(|s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    };
    let value = |name: &str, labels: &[(&str, &str)]| match find(name, labels).map(|s| &s.value) {
        Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("{name} {labels:?}: {other:?}\n{text}"),
    };
    // The recorder is the process's: other tests count too, so at least.
    assert!(value("auftrag_orders_closed_total", &[("type", "change_device"), ("state", "COMPLETED")]) >= 1.0);
    assert!(value("auftrag_orders_closed_total", &[("type", "change_device"), ("state", "ABORTED")]) >= 1.0);
    assert!(value("auftrag_check_findings_total", &[("check", "check_hwa_syntax"), ("severity", "error"), ("stage", "engine")]) >= 1.0);
    assert!(value("auftrag_check_findings_total", &[("check", "check_hwa_unique"), ("severity", "warning")]) >= 1.0);
    assert!(value("auftrag_decisions_total", &[("policy", "change_or_delete"), ("rule", "admin_own_device"), ("decision", "Permit")]) >= 3.0);
    // This database's own facts: exactly one order waits.
    assert_eq!(value("auftrag_orders_open", &[("type", "change_device"), ("state", "WAITING")]), 1.0);
    assert!(find("auftrag_http_request_duration_seconds", &[("route", "/api/v1/orders"), ("method", "POST")]).is_some(), "{text}");
    assert!(value("auftrag_http_requests_total", &[("route", "/api/v1/orders"), ("method", "POST"), ("status", "201")]) >= 3.0);
    assert!(find("auftrag_group_commit_orders", &[]).is_some(), "{text}");
}
}

/// Every answer carries a request id, the client's when it sent a sane
/// one; problem documents name it, so a person can point at the log.
#[tokio::test]
async fn request_ids_reach_answers_and_problems() {
    let s = TestServer::start().await;
    let r = s
        .raw(
            s.client()
                .get(format!("{}/api/v1/orders/1", s.base))
                .header("x-request-id", "portal-4711"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["x-request-id"], "portal-4711");
    assert_eq!(r.body["request_id"], "portal-4711");
    // A hostile id is replaced, not echoed.
    let r = s
        .raw(
            s.client()
                .get(format!("{}/healthz", s.base))
                .header("x-request-id", "a b<script>"),
        )
        .await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // Also on the framework's own rejections.
    let r = s
        .call(Some("admin"), Method::DELETE, "/api/v1/orders", None)
        .await;
    assert_eq!(
        r.body["request_id"].as_str(),
        r.headers["x-request-id"].to_str().ok()
    );
}

/// The contract is served and complete: every documented operation is
/// routed (routes cannot exist undocumented: `clippy.toml` forbids any
/// registration but utoipa-axum's `routes!`), every operation answers
/// problem+json for errors, and each order type of the compiled
/// definitions has its fields in the request schema.
#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let s = TestServer::start().await;
    let r = s
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            assert!(
                op["responses"]["4XX"]["content"]["application/problem+json"].is_object(),
                "{method} {path}"
            );
            let url = format!("{}{}", s.base, path.replace("{id}", "1"));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let resp = s
                .client()
                .request(method.clone(), url)
                .send()
                .await
                .expect("request");
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED
                    && !(status == StatusCode::NOT_FOUND && body.contains("no route")),
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    assert!(operations >= 22, "{operations} operations");
    // Every order type, with its fields, from the compiled definitions.
    let defs = s
        .call(Some("admin"), Method::GET, "/api/v1/definitions", None)
        .await
        .body;
    let alternatives = doc["components"]["schemas"]["SubmitBody"]["oneOf"]
        .as_array()
        .expect("oneOf");
    let documented: Vec<&str> = alternatives
        .iter()
        .map(|a| a["properties"]["type"]["const"].as_str().unwrap())
        .collect();
    let compiled: Vec<&str> = defs["order_types"]
        .as_array()
        .expect("order types")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(documented, compiled);
    let change = alternatives
        .iter()
        .find(|a| a["title"] == "change_device")
        .unwrap();
    assert_eq!(
        change["properties"]["fields"]["properties"]["hwa"]["format"],
        "mac"
    );
    assert_eq!(change["properties"]["fields"]["required"], json!(["host"]));
    // The security schemes, and which route takes which.
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        paths["/api/v1/agency/poll"]["post"]["security"],
        json!([{"agency": []}])
    );
    assert_eq!(
        paths["/api/v1/orders"]["post"]["security"],
        json!([{"bearer": []}])
    );
    assert!(paths["/healthz"]["get"].get("security").is_none());
}

/// schemathesis (from the test venv, see `cargo xtask test`) fuzzes every
/// operation of the served OpenAPI document as staff, with a fixed seed and
/// bounded examples: no server error, and every answer matches the
/// documented status codes, content types, headers and schemas.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_contract_breach() {
    let schemathesis = auftrag_testkit::tools::python_tool("schemathesis");
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(&schemathesis)
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", s.base),
            "--header",
            &format!("Authorization: Bearer {}", s.token("staff")),
            "--seed",
            "1",
            "--max-examples",
            "30",
            "--workers",
            "2",
            // the coverage phase trips over a hypothesis internal error on
            // Python 3.11 (SystemError in lambda_sources); the others run
            "--phases",
            "examples,fuzzing,stateful",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .await
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("passed"), "{text}");
}

//! Hostile input at the HTTP layer (issue 16): every error is problem+json
//! with a bounded answer, bodies must be JSON objects, ids have one
//! spelling, auth schemes are case-insensitive, orders a person may not
//! read look missing, and slow or many clients cannot hold the server.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The answer of a JSON route that gets a body which is not a JSON object.
async fn post_raw(s: &TestServer, path: &str, role: &str, body: &'static str) -> Reply {
    s.raw(
        s.client()
            .post(format!("{}{path}", s.base))
            .bearer_auth(s.token(role))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

on_both_backends! {
/// serde reads a struct from a JSON array; the API takes objects only.
async fn json_bodies_must_be_objects(s) {
    let r = post_raw(&s, "/api/v1/orders", "admin", r#"["change_device", {}]"#).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "must be a JSON object");
    let r = post_raw(&s, "/api/v1/jobs", "staff", r#"["compute", "x"]"#).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "must be a JSON object");
    let r = s
        .raw(
            s.client()
                .put(format!("{}/api/v1/agency/secret", s.base))
                .bearer_auth(s.token("staff"))
                .header("content-type", "application/json")
                .body(r#"["a-new-secret-of-enough-length-0123456789"]"#),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "must be a JSON object");
    // Nothing was created.
    let jobs = s.call(Some("staff"), Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(jobs.status, StatusCode::OK, "{}", jobs.body);
    assert_eq!(jobs.body["jobs"], json!([]), "{}", jobs.body);
    let orders = s.call(Some("staff"), Method::GET, "/api/v1/orders", None).await;
    assert_eq!(orders.body["orders"], json!([]));

    // A wrong value is named by where it is, not by serde's wording alone.
    let r = post_raw(&s, "/api/v1/orders", "admin", r#"{"type": "change_device", "fields": [1]}"#).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "at `fields`");
}
}

on_both_backends! {
/// A NUL in a filter is refused before it reaches the database (on
/// PostgreSQL it was a 500 with the database's error text).
async fn control_characters_in_filters_are_refused(s) {
    for path in [
        "/api/v1/orders?host=a%00b",
        "/api/v1/orders?state=%1b%5b2J",
        "/api/v1/jobs?queue=a%00",
    ] {
        let r = s.call(Some("staff"), Method::GET, path, None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "control character");
    }
    let long = format!("/api/v1/orders?host={}", "a".repeat(1_000));
    let r = s.call(Some("staff"), Method::GET, &long, None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "longer than 512 bytes");
    let r = s.call(Some("staff"), Method::GET, "/api/v1/orders?host=a&host=b", None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "given twice");
}
}

/// The framework's own rejections are problem+json too, with the status
/// that fits and a reason to act on.
#[tokio::test]
async fn every_rejection_is_problem_json() {
    let s = TestServer::start().await;
    // 405, with the methods the route takes
    let r = s
        .call(Some("admin"), Method::DELETE, "/api/v1/orders", None)
        .await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "does not take DELETE");
    assert!(r.headers.get("allow").is_some(), "{:?}", r.headers);
    // 414 for a long request target (hyper's own bare 414 starts at 64 KiB)
    let long = format!("/api/v1/orders?host={}", "a".repeat(10_000));
    let r = s.call(Some("admin"), Method::GET, &long, None).await;
    assert_problem(&r, StatusCode::URI_TOO_LONG, "more than the 8192");
    // 404 for a route that does not exist
    let r = s
        .call(Some("admin"), Method::GET, "/api/v2/orders", None)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no route");
    // 415 on a JSON route without a JSON content type (was a 400)
    let r = s
        .raw(
            s.client()
                .post(format!("{}/api/v1/orders", s.base))
                .bearer_auth(s.token("admin"))
                .body(r#"{"type": "change_device", "fields": {}}"#),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-type: application/json",
    );
    // 413 on a JSON route (was a 400) and on a route that reads bytes (was
    // text/plain). The server answers from the declared length, before the
    // body: the head goes out by hand and the answer is read (a client still
    // writing the body may see a closed connection instead).
    for (path, ctype) in [
        ("/api/v1/orders", "application/json"),
        ("/api/v1/orders/1/withdraw", "application/octet-stream"),
    ] {
        let answer = declared_post(&s, path, ctype, 3 * 1024 * 1024).await;
        assert!(answer.starts_with("HTTP/1.1 413 "), "{path}: {answer}");
        assert!(
            answer.contains("application/problem+json"),
            "{path}: {answer}"
        );
        assert!(answer.contains("larger than"), "{path}: {answer}");
    }
    // Non-UTF-8 to the NetJob endpoint
    let r = s
        .raw(
            s.client()
                .post(format!("{}/ui/rest/print", s.base))
                .body(vec![0xff_u8, 0xfe, 0x00, 0x3c]),
        )
        .await;
    assert_eq!(r.content_type, "application/problem+json", "{}", r.body);
    assert!(r.status.is_client_error(), "{}", r.status);
}

/// Error answers are bounded: they never echo a request wholesale.
#[tokio::test]
async fn error_answers_are_bounded() {
    let s = TestServer::start().await;
    // 50,000 unknown fields (each error names the field and the known ones)
    let mut fields = serde_json::Map::new();
    fields.insert("host".into(), json!(ZAM2212));
    for i in 0..50_000 {
        fields.insert(format!("unknown_field_{i}"), json!("x"));
    }
    let body = json!({"type": "change_device", "fields": fields}).to_string();
    let sent = body.len();
    let resp = s
        .client()
        .post(format!("{}/api/v1/orders", s.base))
        .bearer_auth(s.token("admin"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let text = resp.text().await.expect("body");
    assert!(
        text.len() < 64 * 1024,
        "{} bytes answered to {sent} sent",
        text.len()
    );
    let problem: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        problem["errors"].as_array().map(Vec::len),
        Some(20),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("50000 problems"),
        "{problem}"
    );

    // A body of quotes: a parse error quotes none of it.
    let quotes = "\"".repeat(1024 * 1024);
    let resp = s
        .client()
        .post(format!("{}/api/v1/orders", s.base))
        .bearer_auth(s.token("admin"))
        .header("content-type", "application/json")
        .body(quotes)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let text = resp.text().await.expect("body");
    assert!(text.len() < 4 * 1024, "{} bytes answered", text.len());
}

/// One spelling per id; schemes are case-insensitive; each 401 names the
/// scheme its route takes.
#[tokio::test]
async fn ids_and_auth_schemes() {
    let s = TestServer::start().await;
    let r = s
        .submit(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:99"}),
        )
        .await;
    assert_eq!(r.body["id"], 1, "{}", r.body);
    for id in ["+1", "01", " 1", "1.0", "-0"] {
        let path = format!("/api/v1/orders/{}", id.replace(' ', "%20"));
        let r = s.call(Some("admin"), Method::GET, &path, None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "must be a number such as 17");
    }
    let r = s
        .call(Some("staff"), Method::GET, "/api/v1/jobs/+1", None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "must be a number such as 17");

    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = s
            .raw(
                s.client()
                    .get(format!("{}/api/v1/orders/1", s.base))
                    .header("authorization", format!("{scheme} {}", s.token("admin"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {}", r.body);
    }
    let r = s.call(None, Method::GET, "/api/v1/orders/1", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = s
        .raw(
            s.client()
                .post(format!("{}/api/v1/agency/poll", s.base))
                .header("authorization", "agency not-a-token")
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "agency token");
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Agency "), "{challenge}");
}

/// Sends a head declaring `declared` body bytes (as admin) and the body,
/// while reading the answer; the server may answer and close before the
/// body is through (a client that only reads after writing would see a
/// broken pipe instead of the answer).
async fn declared_post(s: &TestServer, path: &str, ctype: &str, declared: usize) -> String {
    let addr = s.base.trim_start_matches("http://").to_owned();
    let tcp = TcpStream::connect(&addr).await.expect("connect");
    let (mut rd, mut wr) = tcp.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {ctype}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n",
        s.token("admin")
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = [b' '; 64 * 1024];
        let mut left = declared;
        while left > 0 {
            let n = left.min(chunk.len());
            wr.write_all(&chunk[..n]).await?;
            left -= n;
        }
        std::io::Result::Ok(wr)
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut answer)).await;
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads until the server closes the connection (or `guard` passes, which
/// fails the test: the server kept the connection).
async fn read_until_closed(tcp: &mut TcpStream, guard: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(guard, tcp.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {guard:?}"
    );
    got
}

const LIMITS: auftrag_engine::http::server::Limits = auftrag_engine::http::server::Limits {
    max_connections: 2,
    header_read_timeout: Duration::from_secs(1),
    body_read_timeout: Duration::from_secs(1),
};

/// Slowloris: half a header is not kept for long; a body that trickles is
/// answered 408; connections beyond the limit wait for a free one.
#[tokio::test]
async fn slow_and_many_clients_cannot_hold_the_server() {
    let s = TestServer::start_with(Db::Sqlite, LIMITS).await;
    let addr = s.base.trim_start_matches("http://").to_owned();

    // Half a header, then nothing: the server closes the connection.
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    read_until_closed(&mut tcp, Duration::from_secs(30)).await;

    // A whole head, and a body that stops: 408.
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    tcp.write_all(
        format!(
            "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\"",
            s.token("admin")
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut answer = vec![0_u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut answer))
        .await
        .expect("an answer to the stalled body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    drop(tcp);

    // Two connections hold the two slots; a third is served only once
    // one of them is closed (a server whose read timeouts do not free the
    // slots meanwhile).
    let s = TestServer::start_with(
        Db::Sqlite,
        auftrag_engine::http::server::Limits {
            header_read_timeout: Duration::from_secs(600),
            body_read_timeout: Duration::from_secs(600),
            ..LIMITS
        },
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut a = TcpStream::connect(&addr).await.expect("connect");
    let b = TcpStream::connect(&addr).await.expect("connect");
    a.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0_u8; 1024];
    let n = a.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let third = tokio::spawn({
        let base = s.base.clone();
        async move {
            reqwest::get(format!("{base}/healthz"))
                .await
                .map(|r| r.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beside two held ones"
    );
    drop(a);
    drop(b);
    let status = tokio::time::timeout(Duration::from_secs(30), third)
        .await
        .expect("the third connection is served once a slot is free")
        .expect("task")
        .expect("request");
    assert_eq!(status, StatusCode::OK);
}

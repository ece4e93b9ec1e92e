//! The path of a `change_device` order through the workflow of Listing 4.2.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

on_both_backends! {
async fn clean_change_completes_and_is_recorded(s) {
    let r = s
        .submit(
            "admin",
            json!({"host": ZAM2212, "hwa": "00:1A:2B:3C:4D:99"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "COMPLETED");
    assert_eq!(r.body["errors"], json!([]));
    assert_eq!(r.body["warnings"], json!([]));

    assert_eq!(
        s.hwa(ZAM2212_PORT).await.as_deref(),
        Some("00:1a:2b:3c:4d:99")
    );

    let doc = s.order(r.body["id"].as_i64().unwrap()).await;
    let states = states(&doc);
    assert_eq!(states.first().map(String::as_str), Some("INSERTED"));
    assert_eq!(states.last().map(String::as_str), Some("COMPLETED"));
    assert_eq!(
        states,
        ["INSERTED", "CHECKS_DONE", "CHECKS_OK", "COMPLETED"],
        "every state is recorded in order"
    );
    assert_eq!(
        doc["changed"]["hwa"],
        json!([ZAM2212_MAC, "00:1a:2b:3c:4d:99"])
    );
    assert_eq!(doc["closed"], true);
    assert_eq!(doc["host_id"], ZAM2212);
    assert_eq!(doc["requester"], "1002");
    assert_eq!(doc["type"], "change_device");
}
}

on_both_backends! {
async fn malformed_mac_aborts_and_changes_nothing(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": "00:1a:2b:zz"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED");
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.body);
    assert_eq!(errors[0]["field"], "hwa");
    assert_eq!(errors[0]["check"], "check_hwa_syntax");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("00:1a:2b:zz")
    );

    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2212_MAC));
    let doc = s.order(r.body["id"].as_i64().unwrap()).await;
    assert_eq!(states(&doc).last().map(String::as_str), Some("ABORTED"));
    assert!(
        doc["states"].as_array().unwrap().last().unwrap()["comment"]
            .as_str()
            .unwrap()
            .starts_with("hwa: "),
        "the ABORTED state says why: {doc}"
    );
    assert_eq!(doc["changed"], json!({}));
}
}

on_both_backends! {
async fn duplicate_mac_waits_and_staff_accept_completes(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let warnings = r.body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["check"], "check_hwa_unique");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("zam2213.zam.kfa-juelich.de")
    );
    assert_eq!(
        s.hwa(ZAM2212_PORT).await.as_deref(),
        Some(ZAM2212_MAC),
        "a waiting order changes nothing"
    );

    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["state"], "COMPLETED",
        "the accepted warning is not raised again: {}",
        r.body
    );
    assert_eq!(r.body["warnings"], json!([]));
    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2213_MAC));

    let doc = s.order(id).await;
    assert_eq!(
        states(&doc),
        [
            "INSERTED",
            "CHECKS_DONE",
            "CHECKS_WARN",
            "WAITING",
            "INITIAL",
            "CHECKS_DONE",
            "CHECKS_OK",
            "COMPLETED"
        ]
    );
    assert_eq!(doc["accepted_warnings"].as_array().unwrap().len(), 1);
    assert_eq!(doc["accepted_warnings"][0]["check"], "check_hwa_unique");
    assert_eq!(doc["changed"]["hwa"], json!([ZAM2212_MAC, ZAM2213_MAC]));
}
}

on_both_backends! {
async fn recheck_raises_new_warnings_but_not_accepted_ones(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING");
    let id = r.body["id"].as_i64().unwrap();

    // Staff accept; in the meantime another program gave jsclab7 the same
    // address: that is a new warning, raised on the re-check.
    sqlx::query("UPDATE x_port SET HARDW_ADDR = $1 WHERE PT_OBJ_ID = 7003")
        .bind(ZAM2213_MAC)
        .execute(&s.db().await)
        .await
        .unwrap();
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    let warnings = r.body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{}", r.body);
    assert!(
        warnings[0]["message"].as_str().unwrap().contains("jsclab7"),
        "{}",
        r.body
    );

    // Accepting again completes it.
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(
        s.order(id).await["accepted_warnings"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
}

on_both_backends! {
async fn staff_change_field_rechecks(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["state"], "WAITING");

    let r = s
        .call(
            Some("staff"),
            Method::PATCH,
            &format!("/api/v1/orders/{id}/fields"),
            Some(json!({"fields": {"hwa": "00:1a:2b:3c:4d:77"}, "comment": "typo in the MAC"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(
        s.hwa(ZAM2212_PORT).await.as_deref(),
        Some("00:1a:2b:3c:4d:77")
    );
    let doc = s.order(id).await;
    assert_eq!(doc["fields"]["hwa"], "00:1a:2b:3c:4d:77");
    let initial = doc["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state"] == "INITIAL")
        .expect("re-opened");
    assert!(
        initial["comment"]
            .as_str()
            .unwrap()
            .contains("typo in the MAC"),
        "{doc}"
    );
    // the re-check decided again: its decision is appended to the log
    let decisions = doc["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 2, "{doc}");
    assert!(decisions.iter().all(|d| d["decision"] == "Permit" && d["at"].is_string()), "{doc}");
    assert!(decisions[0]["at"].as_str() <= decisions[1]["at"].as_str(), "{doc}");

    // A staff change into a malformed value aborts on the re-check.
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": JSCLAB7_MAC}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["state"], "WAITING");
    let r = s
        .call(
            Some("staff"),
            Method::PATCH,
            &format!("/api/v1/orders/{id}/fields"),
            Some(json!({"fields": {"hwa": "not-a-mac"}})),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
}
}

on_both_backends! {
async fn waiting_order_can_be_aborted_or_withdrawn(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/abort"),
            Some(json!({"comment": "not at two sites"})),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    let doc = s.order(id).await;
    let last = doc["states"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["state"], "ABORTED");
    assert_eq!(last["comment"], "rejected by staff 1005: not at two sites");
    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2212_MAC));

    // Nothing more can happen to an aborted order.
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "is in state ABORTED");

    // The requester withdraws a second waiting order; nobody else may.
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let r = s
        .call(
            Some("employee"),
            Method::POST,
            &format!("/api/v1/orders/{id}/withdraw"),
            None,
        )
        .await;
    // The employee may not read the order: it is answered as missing.
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("there is no order {id} that you may read"));
    let r = s
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/{id}/withdraw"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED");
    let doc = s.order(id).await;
    assert_eq!(
        doc["states"].as_array().unwrap().last().unwrap()["comment"],
        "withdrawn by requester 1002"
    );
}
}

on_both_backends! {
async fn recheck_after_accept_finds_a_new_error(s) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING");
    let id = r.body["id"].as_i64().unwrap();

    // Meanwhile the device got another administrator (another program wrote
    // the device database): the requester may no longer change it.
    sqlx::query("UPDATE x_link SET OBJ_ID_L = 1004 WHERE OBJ_ID_H = 5001 AND CLASS_L = 'ADMIN'")
        .execute(&s.db().await)
        .await
        .unwrap();
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            &format!("/api/v1/orders/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["check"], "authorization");
    assert_eq!(s.hwa(ZAM2212_PORT).await.as_deref(), Some(ZAM2212_MAC));
}
}

on_both_backends! {
async fn non_admin_is_refused_and_staff_may_change_any_device(s) {
    let r = s
        .submit(
            "employee",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:55"}),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["check"], "authorization");
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("may not place a `change_device` order"), "{message}");
    // The refusal names what was read, but the device's facts (its admin)
    // are not the employee's to see; staff see them in the decision log.
    assert!(
        message.contains("resource.admin = (not shown)") && !message.contains("1002"),
        "the explanation hides the resource's values: {message}"
    );
    let id = r.body["id"].as_i64().unwrap();
    let own = s
        .call(Some("employee"), Method::GET, &format!("/api/v1/orders/{id}"), None)
        .await;
    assert!(!own.body["decisions"].to_string().contains("1002"), "{}", own.body);
    let staff = s
        .call(Some("staff"), Method::GET, &format!("/api/v1/orders/{id}"), None)
        .await;
    assert!(staff.body["decisions"].to_string().contains("[\"resource.admin\",\"1002\"]"), "{}", staff.body);

    let r = s
        .submit(
            "staff",
            json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:55"}),
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);

    let r = s
        .submit(
            "admin",
            json!({"host": "nosuchhost.zam.kfa-juelich.de", "hwa": "00:1a:2b:3c:4d:56"}),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED");
    assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == "host"), "{}", r.body);
}
}

on_both_backends! {
async fn history_search_and_devices(s) {
    s.submit(
        "admin",
        json!({"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:60"}),
    )
    .await;
    s.submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    s.submit(
        "staff",
        json!({"host": "zam2213", "hwa": "00:1a:2b:3c:4d:61"}),
    )
    .await;

    let r = s
        .call(
            Some("staff"),
            Method::GET,
            &format!("/api/v1/orders?host={ZAM2212}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 2);
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            "/api/v1/orders?state=WAITING",
            None,
        )
        .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 1);
    let r = s
        .call(Some("staff"), Method::GET, "/api/v1/orders?limit=2", None)
        .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            &format!("/api/v1/orders?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 1);

    // A person lists what they may read: the admin their own orders and
    // staff's about their device zam2213; an employee none of these.
    let r = s
        .call(Some("admin"), Method::GET, "/api/v1/orders", None)
        .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 3, "{}", r.body);
    let r = s
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/orders?requester=1005",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = s
        .call(
            Some("employee"),
            Method::GET,
            "/api/v1/orders?requester=1005",
            None,
        )
        .await;
    assert_eq!(r.body["orders"], json!([]), "{}", r.body);
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            "/api/v1/orders?requester=1005",
            None,
        )
        .await;
    let id = r.body["orders"][0]["id"].as_i64().expect("the staff order");
    let r = s
        .call(
            Some("admin"),
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            None,
        )
        .await;
    // The staff order is about zam2213: its admin may read it, an employee not.
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .call(
            Some("employee"),
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("there is no order {id} that you may read"));
    // … word for word as an order that does not exist.
    let missing = s
        .call(Some("employee"), Method::GET, "/api/v1/orders/999999", None)
        .await;
    assert_eq!(
        missing.body["detail"].as_str().unwrap().replace("999999", &id.to_string()),
        r.body["detail"].as_str().unwrap()
    );

    let r = s
        .call(Some("admin"), Method::GET, "/api/v1/devices?admin=me", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let hosts: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["zam2212", "zam2213"]);
    assert_eq!(r.body[0]["ports"][0]["hwa"], "00:1a:2b:3c:4d:60");
    let r = s
        .call(
            Some("staff"),
            Method::GET,
            "/api/v1/devices?host=jsclab7.jsc.kfa-juelich.de",
            None,
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
}
}

//! The thesis's seven access rules, decided by the compiled policies over the
//! real device database: each positive case and its nearest negatives, via
//! `GET /api/v1/explain`; and a real order whose history keeps the decision.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const ZAM2213: &str = "zam2213.zam.kfa-juelich.de";
const JSCLAB7: &str = "jsclab7.jsc.kfa-juelich.de";
const LBLPRN1: &str = "lblprn1.prn.kfa-juelich.de";

async fn explain(s: &TestServer, person: &str, action: &str, host: Option<&str>) -> Value {
    let mut path = format!("/api/v1/explain?person={person}&action={action}");
    if let Some(h) = host {
        path.push_str(&format!("&host={h}"));
    }
    let r = s.call(Some("staff"), Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Asserts the decision and, for a Permit, the deciding rule.
async fn decides(
    s: &TestServer,
    person: &str,
    action: &str,
    host: Option<&str>,
    expected: &str,
    rule: Option<&str>,
) {
    let r = explain(s, person, action, host).await;
    assert_eq!(r["decision"], expected, "{person} {action} {host:?}: {r}");
    if let Some(rule) = rule {
        assert_eq!(
            r["explanation"]["rule"], rule,
            "{person} {action} {host:?}: {r}"
        );
    }
}

on_both_backends! {
async fn the_seven_rules(s) {
    // 1. Every employee may register a new device; a person without an org
    //    unit (no employee) may not.
    decides(&s, "1001", "register_device", Some("newpc.zam.kfa-juelich.de"), "Permit", Some("employee_registers")).await;
    sqlx::query("INSERT INTO d_pers (PERS_KEY, NAME) VALUES (1099, 'Gast')").execute(&s.db().await).await.unwrap();
    decides(&s, "1099", "register_device", Some("newpc.zam.kfa-juelich.de"), "Deny", None).await;

    // 2. An admin may change or delete their own devices, not another's
    //    (1002 is only a user of jsclab7).
    decides(&s, "1002", "change_device", Some(ZAM2212), "Permit", Some("admin_own_device")).await;
    decides(&s, "1002", "delete_device", Some(ZAM2213), "Permit", Some("admin_own_device")).await;
    decides(&s, "1002", "change_device", Some(JSCLAB7), "Deny", None).await;

    // 3. An admin may name deputies for one device or all of theirs; an
    //    employee without devices may do neither.
    decides(&s, "1002", "name_deputy", Some(ZAM2212), "Permit", Some("admin_names_deputy")).await;
    decides(&s, "1002", "name_deputy", None, "Permit", Some("admin_names_deputy")).await;
    decides(&s, "1001", "name_deputy", Some(ZAM2212), "Deny", None).await;
    decides(&s, "1001", "name_deputy", None, "Deny", None).await;

    // 4. A deputy may change or delete the devices assigned to them — not a
    //    different device, and not after the deputyship ended.
    let r = explain(&s, "1003", "change_device", Some(ZAM2212)).await;
    assert_eq!(r["decision"], "Permit", "{r}");
    assert_eq!(r["explanation"]["rule"], "deputy_device");
    assert_eq!(r["obligations"][0]["id"], "notify_admin", "{r}");
    decides(&s, "1003", "change_device", Some(ZAM2213), "Deny", None).await;
    sqlx::query("UPDATE auftrag_deputies SET UNTIL = '2020-01-01T00:00:00.000Z' WHERE DEPUTY = 1003")
        .execute(&s.db().await)
        .await
        .unwrap();
    decides(&s, "1003", "change_device", Some(ZAM2212), "Deny", None).await;

    // 5. An IT officer may change or delete devices of their org unit (JSC),
    //    not of another (lblprn1 belongs to JSC-IPM).
    decides(&s, "1004", "delete_device", Some(ZAM2213), "Permit", Some("itb_org_device")).await;
    decides(&s, "1004", "change_device", Some(LBLPRN1), "Deny", None).await;

    // 6. An IT officer may name deputies for their org unit, not another's.
    decides(&s, "1004", "name_deputy", Some(ZAM2212), "Permit", Some("itb_names_deputy")).await;
    decides(&s, "1004", "name_deputy", Some(LBLPRN1), "Deny", None).await;

    // 7. IP-management staff may change or delete every device.
    decides(&s, "1005", "change_device", Some(JSCLAB7), "Permit", Some("staff_any_device")).await;
    decides(&s, "1005", "delete_device", Some(ZAM2212), "Permit", Some("staff_any_device")).await;
}
}

on_both_backends! {
async fn decisions_are_kept_in_the_history(s) {
    // The deputy changes the device: permitted, and the history says by
    // which rule and with which values.
    let r = s.call(
        Some("deputy"),
        Method::POST,
        "/api/v1/orders",
        Some(json!({"type": "change_device", "fields": {"host": ZAM2212, "hwa": "00:1a:2b:3c:4d:42"}})),
    ).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let doc = s.order(r.body["id"].as_i64().unwrap()).await;
    let decision = &doc["decisions"][0];
    assert_eq!(decision["decision"], "Permit", "{doc}");
    assert_eq!(decision["subject"], "1003");
    assert_eq!(decision["explanation"]["policy"], "change_or_delete");
    assert_eq!(decision["explanation"]["rule"], "deputy_device");
    assert!(decision["at"].as_str().is_some());

    // Refused: the error names the policy outcome; the history keeps it.
    let r = s.submit("employee", json!({"host": ZAM2213, "hwa": "00:1a:2b:3c:4d:43"})).await;
    assert_eq!(r.body["state"], "ABORTED");
    let doc = s.order(r.body["id"].as_i64().unwrap()).await;
    assert_eq!(doc["decisions"][0]["decision"], "Deny", "{doc}");
}
}

on_both_backends! {
async fn explain_is_for_staff_and_checks_its_input(s) {
    let r = s.call(Some("admin"), Method::GET, "/api/v1/explain?person=1002&action=change_device", None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only staff may");
    let r = s.call(Some("staff"), Method::GET, "/api/v1/explain?person=1002&action=chnage", None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "unknown order type `chnage`");
    let r = s.call(Some("staff"), Method::GET, "/api/v1/explain?action=change", None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "`person`");
    // a unique prefix names the order type
    decides(&s, "1002", "change", Some(ZAM2212), "Permit", Some("admin_own_device")).await;
}
}

/// The policy test cases of `definitions/tests/*.xml`.
#[test]
fn policy_test_cases_in_xml() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("definitions/tests");
    let mut cases = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("definitions/tests") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let out = auftrag_engine::pdp::cases::run_file(
                &path,
                &auftrag::generated::ATTRIBUTES,
                &auftrag::generated::POLICIES,
            );
            cases += out.cases;
            failures.extend(out.failures);
        }
    }
    assert!(cases >= 14, "only {cases} cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The policies as data (what lists partially evaluate) decide as the
/// compiled functions (what single decisions run), on requests drawn from
/// a few values per attribute — missing, wrongly typed and failed ones too.
#[test]
fn the_policies_as_data_decide_as_the_compiled_policies() {
    use auftrag_engine::pdp::{Request, Value, ValueType, evaluate, partial};
    let attributes = &auftrag::generated::ATTRIBUTES;
    let root = &auftrag::generated::POLICIES;
    let values = |ty: ValueType, multi: bool| -> Vec<Option<Result<Value, ()>>> {
        let one: Vec<Value> = match ty {
            ValueType::String => [
                "1002",
                "1003",
                "JSC",
                "read_order",
                "change_device",
                "admin",
            ]
            .map(|v| Value::String(v.into()))
            .to_vec(),
            ValueType::Integer => vec![Value::Integer(5001), Value::Integer(5002)],
            ValueType::Boolean => vec![Value::Boolean(true), Value::Boolean(false)],
            ValueType::Time => vec![Value::Time(1_800_000_000), Value::Time(1_900_000_000)],
            ValueType::Ip => vec![Value::Ip("134.94.16.12".parse().unwrap())],
            ValueType::Subnet => vec![Value::Subnet("134.94.16.0/24".parse().unwrap())],
        };
        let mut out: Vec<Option<Result<Value, ()>>> = vec![None, Some(Err(()))];
        if multi {
            out.push(Some(Ok(Value::Set(one.clone()))));
            out.push(Some(Ok(Value::Set(one[..1].to_vec()))));
        } else {
            out.extend(one.into_iter().map(|v| Some(Ok(v))));
        }
        // a value of another type
        out.push(Some(Ok(Value::Integer(-1))));
        out
    };
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let actions = [
        "read_order",
        "change_device",
        "name_deputy",
        "end_deputy",
        "register_device",
        "staff_action",
    ];
    for _ in 0..20_000 {
        let mut r = Request::new(attributes);
        for a in attributes.iter() {
            if a.name == "action.order_type" {
                r.set(a.id, Value::String(actions[next(actions.len())].into()));
                continue;
            }
            let choices = values(a.ty, a.multi);
            match &choices[next(choices.len())] {
                None => {}
                Some(Err(())) => {
                    r.set_error(a.id, "failed");
                }
                Some(Ok(v)) => {
                    r.set(a.id, v.clone());
                }
            }
        }
        assert_eq!(
            partial::decide_known(root, &r),
            Some(evaluate(root, &r).decision),
            "{r:?}"
        );
    }
}

/// A wrong expectation is reported, with the decision's explanation.
#[test]
fn a_failing_policy_case_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.xml");
    std::fs::write(
        &file,
        r#"<tests><test name="wrong"><attribute name="subject.person" value="1002"/>
           <attribute name="action.order_type" value="change_device"/>
           <attribute name="resource.admin" value="1002"/>
           <expect decision="Deny" rule="staff_any_device"/></test>
           <test name="typo"><attribute name="subject.persno" value="1"/><expect decision="Deny"/></test></tests>"#,
    )
    .unwrap();
    let out = auftrag_engine::pdp::cases::run_file(
        &file,
        &auftrag::generated::ATTRIBUTES,
        &auftrag::generated::POLICIES,
    );
    assert_eq!(out.cases, 2);
    assert_eq!(out.failures.len(), 2, "{:#?}", out.failures);
    assert!(
        out.failures[0].contains("decision Permit, expected Deny"),
        "{}",
        out.failures[0]
    );
    assert!(
        out.failures[0].contains("admin_own_device"),
        "{}",
        out.failures[0]
    );
    assert!(
        out.failures[1].contains("unknown attribute `subject.persno`"),
        "{}",
        out.failures[1]
    );
}

on_both_backends! {
async fn the_policies_decide_who_reads_an_order(s) {
    // The admin's waiting order on zam2212: its requester, the device's
    // deputy, the IT officer of its org unit and staff may read it; an
    // employee with no tie to the device may not.
    let r = s.submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC})).await;
    let id = r.body["id"].as_i64().unwrap();
    for role in ["admin", "deputy", "itb", "staff"] {
        let r = s.call(Some(role), Method::GET, &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.body);
    }
    let r = s.call(Some("employee"), Method::GET, &format!("/api/v1/orders/{id}"), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("there is no order {id} that you may read"));
    // Nor may they act on it as staff: they learn nothing of it.
    let r = s.call(Some("employee"), Method::POST, &format!("/api/v1/orders/{id}/accept"), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("there is no order {id} that you may read"));
    // The deputy is no staff: staff actions stay refused, with the reason.
    let r = s.call(Some("deputy"), Method::POST, &format!("/api/v1/orders/{id}/accept"), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only staff may");
}
}

on_both_backends! {
async fn an_it_officer_names_deputies_only_for_their_org_unit(s) {
    // 1004 is IT officer of JSC, not of JSC-IPM.
    let deputy = |org: &str| json!({"type": "name_deputy", "fields": {"org": org, "deputy": "1001"}});
    let r = s.call(Some("itb"), Method::POST, "/api/v1/orders", Some(deputy("JSC"))).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let r = s.call(Some("itb"), Method::POST, "/api/v1/orders", Some(deputy("JSC-IPM"))).await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["check"], "authorization", "{}", r.body);
}
}

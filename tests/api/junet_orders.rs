//! All JuNet order types on both backends (issue 4): register, change,
//! delete, name a deputy; the checks library; the portal-stage validate
//! endpoint; the thesis's invariants after every order; and races between
//! concurrent orders for the same IPv4 address or alias.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::support::*;

/// The demo subnet with IPv6 on (prefix 2001:638:404:16::/64).
const V6_NET: &str = "134.94.16.0/24";
/// A demo subnet with IPv6 off.
const LAB_NET: &str = "134.94.32.0/24";

fn interface(net: &str, ipv4: &str, hwa: &str, alias: &str) -> Value {
    json!({"net": net, "ipv4": ipv4, "hwa": hwa, "ssh": "N",
           "aliases": [{"name": alias, "canonical": "Y"}]})
}

fn register_fields(host: &str, interfaces: Value) -> Value {
    json!({"host": host, "dv_class": "PC", "dv_type": "Workstation", "serial": "SN-1",
           "geb": "16.3", "raum": "R 227", "persdata": "N", "admin": "1002",
           "users": ["1003"], "notify": ["noc@example.org"], "interfaces": interfaces})
}

impl TestServer {
    async fn order_of(&self, role: &str, order_type: &str, fields: Value) -> Reply {
        let r = self
            .call(
                Some(role),
                Method::POST,
                "/api/v1/orders",
                Some(json!({"type": order_type, "fields": fields})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r
    }

    async fn validate(&self, role: &str, order_type: &str, fields: Value) -> Reply {
        self.call(
            Some(role),
            Method::POST,
            "/api/v1/validate",
            Some(json!({"type": order_type, "fields": fields})),
        )
        .await
    }
}

async fn count(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .try_get::<i64, _>(0)
        .unwrap()
}

/// The thesis's invariants over the whole device database.
pub async fn assert_invariants(pool: &AnyPool) {
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM x_device d WHERE (SELECT COUNT(*) FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'ADMIN') <> 1").await,
        0,
        "every device has exactly one ADMIN link"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM x_device d WHERE NOT EXISTS (SELECT 1 FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'PORT')").await,
        0,
        "every device has at least one PORT link"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM x_port p WHERE (SELECT COUNT(*) FROM n_devname n WHERE n.PT_OBJ_ID = p.PT_OBJ_ID AND n.CANONICAL = 'Y') <> 1").await,
        0,
        "every interface has exactly one canonical alias"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM (SELECT l.OBJ_ID_H, p.NET_OBJ_ID FROM x_link l JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L WHERE l.CLASS_L = 'PORT' GROUP BY l.OBJ_ID_H, p.NET_OBJ_ID HAVING COUNT(*) > 1) t").await,
        0,
        "one interface per subnet per device"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM (SELECT PT_DEV_ADDR FROM x_port WHERE PT_DEV_ADDR IS NOT NULL GROUP BY PT_DEV_ADDR HAVING COUNT(*) > 1) t").await,
        0,
        "an IPv4 address is used once"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM x_port p WHERE NOT EXISTS (SELECT 1 FROM x_link l WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_L = p.PT_OBJ_ID)").await,
        0,
        "no orphaned interfaces"
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM n_devname n WHERE NOT EXISTS (SELECT 1 FROM x_port p WHERE p.PT_OBJ_ID = n.PT_OBJ_ID)").await,
        0,
        "no orphaned aliases"
    );
}

fn findings(r: &Reply, kind: &str) -> Vec<(String, String)> {
    r.body[kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {kind} in {}", r.body))
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_owned(),
                f["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(r: &Reply, kind: &str, check: &str, field: &str) -> bool {
    findings(r, kind)
        .iter()
        .any(|(c, f)| c == check && f == field)
}

on_both_backends! {
async fn register_change_and_delete_a_device(s) {
    let pool = s.db().await;
    // register: two interfaces, IPv6 by EUI-64 in the subnet with IPv6 on
    let fields = register_fields(
        "newbox.zam.kfa-juelich.de",
        json!([
            interface(V6_NET, "134.94.16.50", "00:1a:2b:3c:4d:50", "newbox.zam.kfa-juelich.de"),
            {"net": LAB_NET, "ipv4": "134.94.32.50", "hwa": "00:1a:2b:3c:4d:51", "ssh": "Y",
             "aliases": [{"name": "newbox-lab.jsc.kfa-juelich.de", "canonical": "Y"},
                         {"name": "nb.jsc.kfa-juelich.de"}]}
        ]),
    );
    let r = s.order_of("employee", "register_device", fields).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let doc = s.order(id).await;
    let device = doc["changed"]["device"][1].as_i64().expect("the new device id");
    // its barcode label waits in the PRINT queue named in queues.xml
    let queue = auftrag::generated::DEFINITIONS.queue(auftrag::junet::actions::LABEL_QUEUE.name()).expect("label queue defined");
    assert_eq!(queue.job_type, auftrag_engine::defs::JobType::Print);
    let jobs = s.call(Some("staff"), Method::GET, "/api/v1/jobs?queue=labels", None).await;
    assert_eq!(jobs.status, StatusCode::OK, "{}", jobs.body);
    let label = jobs.body.as_array().or_else(|| jobs.body["jobs"].as_array()).expect("a job list")
        .iter().find(|j| j["order_id"] == id).cloned().expect("a label job for the order");
    assert_eq!(label["state"], "PENDING", "{label}");
    let input: Vec<u8> = sqlx::query_scalar("SELECT input FROM auftrag_jobs WHERE id = $1")
        .bind(label["id"].as_i64().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    let input = String::from_utf8(input).unwrap();
    assert!(input.starts_with("newbox.zam.kfa-juelich.de\norder "), "{input}");
    assert!(input.contains("00:1a:2b:3c:4d:51"), "{input}");

    let row = sqlx::query("SELECT DV_LABEL, DV_CLASS, TYPE, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA FROM x_device WHERE DV_OBJ_ID = $1")
        .bind(device).fetch_one(&pool).await.unwrap();
    assert_eq!(row.try_get::<String, _>(0).unwrap(), "newbox");
    assert_eq!(row.try_get::<String, _>(1).unwrap(), "PC");
    assert_eq!(row.try_get::<String, _>(3).unwrap(), "16.3");
    assert_eq!(row.try_get::<String, _>(5).unwrap(), "JSC", "the admin's org unit");
    let port = sqlx::query("SELECT p.HARDW_ADDR, p.INET6_ADDR_TYPE, p.GUA, p.LLA, p.SSH FROM x_port p WHERE p.PT_DEV_ADDR = '134.94.16.50'")
        .fetch_one(&pool).await.unwrap();
    assert_eq!(port.try_get::<String, _>(0).unwrap(), "00:1a:2b:3c:4d:50");
    assert_eq!(port.try_get::<String, _>(1).unwrap(), "EUI64");
    // prefix 2001:638:404:16::/64 + EUI-64 of 00:1a:2b:3c:4d:50 (U/L bit flipped, ff:fe inserted)
    assert_eq!(port.try_get::<String, _>(2).unwrap(), "2001:638:404:16:21a:2bff:fe3c:4d50");
    assert_eq!(port.try_get::<String, _>(3).unwrap(), "fe80::21a:2bff:fe3c:4d50");
    let lab = sqlx::query("SELECT INET6_ADDR_TYPE, GUA, SSH FROM x_port WHERE PT_DEV_ADDR = '134.94.32.50'")
        .fetch_one(&pool).await.unwrap();
    assert_eq!(lab.try_get::<Option<String>, _>(1).unwrap(), None, "IPv6 off in the lab subnet");
    assert_eq!(lab.try_get::<String, _>(2).unwrap(), "Y");
    assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM x_link WHERE OBJ_ID_H = {device} AND CLASS_L = 'PORT'")).await, 2);
    assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM x_link WHERE OBJ_ID_H = {device} AND CLASS_L = 'USER' AND OBJ_ID_L = 1003")).await, 1);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM n_devname WHERE DN_NAME = 'nb' AND DOMAIN = 'jsc.kfa-juelich.de' AND CANONICAL = 'N'").await, 1);
    assert_invariants(&pool).await;

    // change: device columns, the interface's IPv4, aliases, users, and a third interface
    let r = s.order_of("admin", "change_device", json!({
        "host": "newbox.zam.kfa-juelich.de",
        "ipv4": "134.94.16.51",
        "inet6_addr_type": "4to6",
        "dv_class": "SERVER", "raum": "R 228", "users": [],
        "add_aliases": [{"name": "nb2.zam.kfa-juelich.de", "canonical": "Y"}],
        "add_interfaces": [interface("10.20.0.0/16", "10.20.1.50", "00:1a:2b:3c:4d:52", "newbox-prn.prn.kfa-juelich.de")],
    })).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let doc = s.order(r.body["id"].as_i64().unwrap()).await;
    let changed = &doc["changed"];
    assert_eq!(changed["ipv4"], json!(["134.94.16.50", "134.94.16.51"]));
    assert_eq!(changed["dv_class"], json!(["PC", "SERVER"]));
    assert_eq!(changed["raum"], json!(["R 227", "R 228"]));
    assert_eq!(changed["users"], json!([["1003"], []]));
    assert_eq!(changed["inet6_addr_type"], json!(["EUI64", "4to6"]));
    // 4to6: the prefix and the IPv4 address in the last 32 bits
    assert_eq!(changed["ipv6"][1], "2001:638:404:16::865e:1033");
    assert_eq!(
        changed["aliases"],
        json!([["newbox.zam.kfa-juelich.de (canonical)"],
               ["newbox.zam.kfa-juelich.de", "nb2.zam.kfa-juelich.de (canonical)"]])
    );
    assert_eq!(changed["interfaces"][1].as_array().unwrap().len(), 3, "{changed}");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR = '134.94.16.50'").await, 0);
    assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM x_link WHERE OBJ_ID_H = {device} AND CLASS_L = 'USER'")).await, 0);
    assert_invariants(&pool).await;

    // change: remove the lab interface and an alias of the host interface
    let r = s.order_of("staff", "change_device", json!({
        "host": "nb2.zam.kfa-juelich.de",
        "remove_interfaces": ["nb.jsc.kfa-juelich.de"],
        "remove_aliases": ["newbox.zam.kfa-juelich.de"],
    })).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR = '134.94.32.50'").await, 0);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM n_devname WHERE DN_NAME IN ('nb', 'newbox-lab', 'newbox')").await, 0);
    assert_invariants(&pool).await;

    // delete: the device, its ports, aliases and links
    let r = s.order_of("admin", "delete_device", json!({"host": "nb2.zam.kfa-juelich.de", "reason": "scrapped"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM x_device WHERE DV_OBJ_ID = {device}")).await, 0);
    assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM x_link WHERE OBJ_ID_H = {device}")).await, 0);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR IN ('134.94.16.51', '10.20.1.50')").await, 0);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM n_devname WHERE DN_NAME IN ('nb2', 'newbox-prn')").await, 0);
    assert_invariants(&pool).await;
    // the address is free again
    let r = s.order_of("staff", "register_device", register_fields(
        "again", json!([interface(V6_NET, "134.94.16.51", "00:1a:2b:3c:4d:53", "again.zam.kfa-juelich.de")]),
    )).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
}
}

on_both_backends! {
async fn the_checks_library_refuses_what_the_thesis_forbids(s) {
    let pool = s.db().await;
    let devices = count(&pool, "SELECT COUNT(*) FROM x_device").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        // IPv4 outside the subnet, its network and broadcast address
        (json!([interface(LAB_NET, "134.94.33.5", "00:1a:2b:3c:4d:60", "a1.jsc.kfa-juelich.de")]), "check_ipv4_in_subnet", "interfaces[0].ipv4"),
        (json!([interface(LAB_NET, "134.94.32.0", "00:1a:2b:3c:4d:60", "a1.jsc.kfa-juelich.de")]), "check_ipv4_in_subnet", "interfaces[0].ipv4"),
        (json!([interface(LAB_NET, "134.94.32.255", "00:1a:2b:3c:4d:60", "a1.jsc.kfa-juelich.de")]), "check_ipv4_in_subnet", "interfaces[0].ipv4"),
        // IPv4 of zam2212
        (json!([interface(V6_NET, "134.94.16.12", "00:1a:2b:3c:4d:60", "a1.zam.kfa-juelich.de")]), "check_ipv4_free", "interfaces[0].ipv4"),
        // no such subnet
        (json!([interface("192.168.7.0/24", "192.168.7.5", "00:1a:2b:3c:4d:60", "a1.zam.kfa-juelich.de")]), "check_subnet", "interfaces[0].net"),
        // alias of zam2212
        (json!([interface(LAB_NET, "134.94.32.60", "00:1a:2b:3c:4d:60", "build-jsc.zam.kfa-juelich.de")]), "check_alias_unique", "interfaces[0].aliases"),
        // two canonical aliases, none
        (json!([{"net": LAB_NET, "ipv4": "134.94.32.60", "hwa": "00:1a:2b:3c:4d:60",
                 "aliases": [{"name": "a1.jsc.kfa-juelich.de", "canonical": "Y"}, {"name": "a2.jsc.kfa-juelich.de", "canonical": "Y"}]}]),
         "check_canonical_alias", "interfaces[0].aliases"),
        (json!([{"net": LAB_NET, "ipv4": "134.94.32.60", "hwa": "00:1a:2b:3c:4d:60",
                 "aliases": [{"name": "a1.jsc.kfa-juelich.de"}, {"name": "a2.jsc.kfa-juelich.de"}]}]),
         "check_canonical_alias", "interfaces[0].aliases"),
        // two interfaces in one subnet
        (json!([interface(LAB_NET, "134.94.32.60", "00:1a:2b:3c:4d:60", "a1.jsc.kfa-juelich.de"),
                interface(LAB_NET, "134.94.32.61", "00:1a:2b:3c:4d:61", "a2.jsc.kfa-juelich.de")]),
         "check_one_interface_per_subnet", "interfaces[1].net"),
        // the same IPv4 twice in the order
        (json!([interface(LAB_NET, "134.94.32.60", "00:1a:2b:3c:4d:60", "a1.jsc.kfa-juelich.de"),
                interface(V6_NET, "134.94.32.60", "00:1a:2b:3c:4d:61", "a2.zam.kfa-juelich.de")]),
         "check_ipv4_free", "interfaces[1].ipv4"),
        // IPv6 by hand outside the prefix, a wrong EUI-64 address, IPv6 in a subnet with IPv6 off
        (json!([{"net": V6_NET, "ipv4": "134.94.16.60", "hwa": "00:1a:2b:3c:4d:60", "inet6_addr_type": "manual",
                 "ipv6": "2001:db8::1", "aliases": [{"name": "a1.zam.kfa-juelich.de"}]}]),
         "check_ipv6", "interfaces[0].ipv6"),
        (json!([{"net": V6_NET, "ipv4": "134.94.16.60", "hwa": "00:1a:2b:3c:4d:60", "inet6_addr_type": "EUI64",
                 "ipv6": "2001:638:404:16::99", "aliases": [{"name": "a1.zam.kfa-juelich.de"}]}]),
         "check_ipv6", "interfaces[0].ipv6"),
        (json!([{"net": LAB_NET, "ipv4": "134.94.32.60", "hwa": "00:1a:2b:3c:4d:60", "inet6_addr_type": "4to6",
                 "aliases": [{"name": "a1.jsc.kfa-juelich.de"}]}]),
         "check_ipv6", "interfaces[0].inet6_addr_type"),
        // a group address
        (json!([interface(LAB_NET, "134.94.32.60", "01:00:5e:00:00:01", "a1.jsc.kfa-juelich.de")]), "check_interface_hwa", "interfaces[0].hwa"),
    ];
    for (interfaces, check, field) in cases {
        let fields = register_fields("fresh", interfaces.clone());
        let r = s.order_of("staff", "register_device", fields.clone()).await;
        assert_eq!(r.body["state"], "ABORTED", "{interfaces}: {}", r.body);
        assert!(has(&r, "errors", check, field), "{check} on {field} for {interfaces}: {}", r.body);
        // the portal stage reports the same, creating nothing
        let v = s.validate("staff", "register_device", fields).await;
        assert_eq!(v.status, StatusCode::OK, "{}", v.body);
        assert!(has(&v, "errors", check, field), "portal: {check} on {field}: {}", v.body);
    }
    // manual IPv6 inside the prefix is taken as given
    let r = s.order_of("staff", "register_device", register_fields("manual6", json!([
        {"net": V6_NET, "ipv4": "134.94.16.61", "hwa": "00:1a:2b:3c:4d:61", "inet6_addr_type": "manual",
         "ipv6": "2001:638:404:16::61", "aliases": [{"name": "manual6.zam.kfa-juelich.de"}]}]))).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_port WHERE GUA = '2001:638:404:16::61' AND INET6_ADDR_TYPE IS NULL").await, 1);

    // host and admin
    let mut fields = register_fields("zam2212", json!([interface(LAB_NET, "134.94.32.62", "00:1a:2b:3c:4d:62", "x1.jsc.kfa-juelich.de")]));
    fields["admin"] = json!("99999");
    let r = s.order_of("staff", "register_device", fields).await;
    assert!(has(&r, "errors", "check_label_free", "host"), "{}", r.body);
    assert!(has(&r, "errors", "check_person_exists", "admin"), "{}", r.body);
    let r = s.order_of("staff", "delete_device", json!({"host": "nosuch.zam.kfa-juelich.de"})).await;
    assert_eq!(r.body["state"], "ABORTED");
    assert!(has(&r, "errors", "check_host_exists", "host"), "{}", r.body);
    // a change may not leave a device without an interface, nor remove another device's
    let r = s.order_of("staff", "change_device", json!({"host": ZAM2212, "remove_interfaces": ["jsclab7.jsc.kfa-juelich.de"]})).await;
    assert!(has(&r, "errors", "check_change_consistent", "remove_interfaces[0]"), "{}", r.body);
    let r = s.order_of("staff", "change_device", json!({"host": ZAM2212, "remove_aliases": ["zam2212.zam.kfa-juelich.de"]})).await;
    assert!(has(&r, "errors", "check_canonical_alias", "add_aliases"), "{}", r.body);
    let r = s.order_of("staff", "change_device", json!({"host": ZAM2212, "ipv4": "134.94.16.13"})).await;
    assert!(has(&r, "errors", "check_ipv4_free", "ipv4"), "{}", r.body);

    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device").await, devices + 1, "only the good order created a device");
    assert_invariants(&pool).await;
}
}

on_both_backends! {
async fn validate_runs_the_portal_stage_and_creates_nothing(s) {
    let pool = s.db().await;
    let orders = count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await;
    // a MAC another device has: an error in the portal ...
    let fields = register_fields("dupmac", json!([interface(LAB_NET, "134.94.32.70", ZAM2213_MAC, "dupmac.jsc.kfa-juelich.de")]));
    let v = s.validate("staff", "register_device", fields.clone()).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert!(has(&v, "errors", "check_interface_hwa_unique", "interfaces[0].hwa"), "{}", v.body);
    assert_eq!(v.body["warnings"], json!([]));
    let v = s.validate("admin", "change_device", json!({"host": ZAM2212, "hwa": ZAM2213_MAC})).await;
    assert!(has(&v, "errors", "check_hwa_unique", "hwa"), "{}", v.body);
    // ... clean fields: nothing to report
    let v = s.validate("staff", "register_device", register_fields("okbox", json!([interface(LAB_NET, "134.94.32.71", "00:1a:2b:3c:4d:71", "okbox.jsc.kfa-juelich.de")]))).await;
    assert_eq!(v.body, json!({"errors": [], "warnings": []}));
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await, orders, "validate creates no order");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_LABEL IN ('okbox', 'dupmac')").await, 0);
    // ... and only a warning in the engine: the order waits for staff
    let r = s.order_of("staff", "register_device", fields).await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    assert!(has(&r, "warnings", "check_interface_hwa_unique", "interfaces[0].hwa"), "{}", r.body);
    // a wrong shape is a 400, as for a submission
    let v = s.call(Some("staff"), Method::POST, "/api/v1/validate",
        Some(json!({"type": "register_device", "fields": {"host": "x"}}))).await;
    assert_problem(&v, StatusCode::BAD_REQUEST, "is required");
    let v = s.call(None, Method::POST, "/api/v1/validate", Some(json!({"type": "delete_device", "fields": {}}))).await;
    assert_eq!(v.status, StatusCode::UNAUTHORIZED);
}
}

on_both_backends! {
async fn name_deputy_for_a_device_all_devices_and_an_org_unit(s) {
    let pool = s.db().await;
    let before = count(&pool, "SELECT COUNT(*) FROM auftrag_deputies").await;
    let r = s.order_of("admin", "name_deputy", json!({"host": "zam2213.zam.kfa-juelich.de", "deputy": "1001", "until": "2099-12-31"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies WHERE DEPUTY = 1001 AND NAMED_BY = 1002 AND DEVICE = 5002 AND UNTIL = '2099-12-31T23:59:59.000Z'").await, 1);
    let r = s.order_of("admin", "name_deputy", json!({"scope": "my_devices", "deputy": "1001"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies WHERE DEPUTY = 1001 AND NAMED_BY = 1002 AND DEVICE IS NULL AND ORG IS NULL AND UNTIL IS NULL").await, 1);
    let r = s.order_of("staff", "name_deputy", json!({"org": "JSC", "deputy": "1001"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies WHERE ORG = 'JSC' AND DEPUTY = 1001").await, 1);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies").await, before + 3);
    // the same deputyship again: its end moves, no second row
    let r = s.order_of("admin", "name_deputy", json!({"host": "zam2213.zam.kfa-juelich.de", "deputy": "1001", "until": "2099-06-30"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies").await, before + 3);
    // refused: unknown deputy, oneself, a past end, host and org at once
    let r = s.order_of("admin", "name_deputy", json!({"host": "zam2213.zam.kfa-juelich.de", "deputy": "99999", "until": "2000-01-01"})).await;
    assert_eq!(r.body["state"], "ABORTED");
    assert!(has(&r, "errors", "check_person_exists", "deputy"), "{}", r.body);
    assert!(has(&r, "errors", "check_deputyship", "until"), "{}", r.body);
    let r = s.order_of("admin", "name_deputy", json!({"host": "zam2213.zam.kfa-juelich.de", "org": "JSC", "deputy": "1002"})).await;
    assert!(has(&r, "errors", "check_deputyship", "deputy"), "{}", r.body);
    assert!(has(&r, "errors", "check_deputyship", "org"), "{}", r.body);
    // deleting the device ends the deputyships for it alone
    let r = s.order_of("staff", "delete_device", json!({"host": "zam2213.zam.kfa-juelich.de"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_deputies WHERE DEVICE = 5002").await, 0);
    assert_invariants(&pool).await;
}
}

/// Sends registrations at once; returns each one's status and body.
async fn send_all(s: &TestServer, orders: Vec<Value>) -> Vec<(StatusCode, Value)> {
    let token = s.token("staff").to_owned();
    let mut tasks = Vec::new();
    for fields in orders {
        let (client, base, token) = (s.client().clone(), s.base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/orders"))
                .bearer_auth(token)
                .json(&json!({"type": "register_device", "fields": fields}))
                .send()
                .await
                .expect("send");
            let status = r.status();
            (status, r.json::<Value>().await.expect("json"))
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }
    replies
}

/// Sends registrations at once; returns the final states (each one created).
async fn race(s: &TestServer, orders: Vec<Value>) -> Vec<String> {
    send_all(s, orders)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["state"].as_str().unwrap().to_owned()
        })
        .collect()
}

on_both_backends! {
async fn fifty_concurrent_registrations_of_one_ipv4_complete_once(s) {
    let orders = (0..50)
        .map(|i| register_fields(&format!("race{i}"), json!([interface(
            LAB_NET, "134.94.32.99", &format!("02:00:00:00:01:{i:02x}"), &format!("race{i}.jsc.kfa-juelich.de"))])))
        .collect();
    let states = race(&s, orders).await;
    assert_eq!(states.iter().filter(|s| *s == "COMPLETED").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| *s == "ABORTED").count(), 49, "{states:?}");
    let pool = s.db().await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_port WHERE PT_DEV_ADDR = '134.94.32.99'").await, 1);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_LABEL LIKE 'race%'").await, 1);
    assert_invariants(&pool).await;
}
}

on_both_backends! {
async fn fifty_concurrent_registrations_of_one_alias_complete_once(s) {
    let orders = (0..50)
        .map(|i| register_fields(&format!("alias{i}"), json!([interface(
            LAB_NET, &format!("134.94.32.{}", 100 + i), &format!("02:00:00:00:02:{i:02x}"), "shared.jsc.kfa-juelich.de")])))
        .collect();
    let states = race(&s, orders).await;
    assert_eq!(states.iter().filter(|s| *s == "COMPLETED").count(), 1, "{states:?}");
    let pool = s.db().await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM n_devname WHERE DN_NAME = 'shared'").await, 1);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_LABEL LIKE 'alias%'").await, 1);
    assert_invariants(&pool).await;
}
}

on_both_backends! {
/// Changes of one device sent at once are applied one after the other:
/// each records as the old value what the one before it wrote (none reads
/// what another is replacing), so their `[old, new]` pairs chain from the
/// device's address to the one it has in the end.
async fn concurrent_changes_of_one_device_apply_one_after_the_other(s) {
    let macs: Vec<String> = (0..20).map(|i| format!("02:00:00:00:03:{i:02x}")).collect();
    let replies = futures::future::join_all(
        macs.iter().map(|mac| s.submit("admin", json!({"host": ZAM2212, "hwa": mac}))),
    )
    .await;
    let mut pairs = Vec::new();
    for r in replies {
        assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
        let doc = s.order(r.body["id"].as_i64().unwrap()).await;
        let pair = doc["changed"]["hwa"].as_array().cloned().unwrap_or_default();
        let [old, new] = <[Value; 2]>::try_from(pair).unwrap_or_else(|p| panic!("{p:?}"));
        pairs.push((old.as_str().unwrap().to_lowercase(), new.as_str().unwrap().to_lowercase()));
    }
    let mut at = ZAM2212_MAC.to_lowercase();
    for _ in 0..pairs.len() {
        let next = pairs.iter().position(|(old, _)| *old == at);
        let (_, new) = pairs.swap_remove(next.unwrap_or_else(|| panic!("no change replaced {at}: {pairs:?}")));
        at = new;
    }
    assert_eq!(s.hwa(ZAM2212_PORT).await.map(|h| h.to_lowercase()), Some(at));
}
}

on_both_backends! {
async fn demo_data_command_fills_a_generated_network(s) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_auftrag"))
        .args(["--database", &s.db_url, "demo-data", "--devices", "300", "--seed", "5"])
        .output()
        .await
        .expect("run auftrag demo-data");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("300 devices"), "{stdout}");
    let pool = s.db().await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_OBJ_ID >= 1000000").await, 300);
    assert_invariants(&pool).await;
    // orders work on the generated devices as on any other
    let r = s.order_of("staff", "change_device", json!({"host": "dev7.gen.kfa-juelich.de", "ssh": "Y"})).await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    // a second load into the same database is refused with a reason
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_auftrag"))
        .args(["--database", &s.db_url, "demo-data", "--devices", "300"])
        .output()
        .await
        .expect("run auftrag demo-data");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fresh database"));
}
}

on_both_backends! {
/// An order whose execution fails in the database — here in the writes a
/// registration sends with the order's row at the end of its transaction —
/// is rolled back whole and kept, never lost: ended in its workflow's error
/// state with the reason (issue 18), not left in INITIAL to fail again.
async fn a_failing_final_write_ends_the_order_with_the_reason(s) {
    let pool = s.db().await;
    let refuse: &[&str] = if s.db_url.starts_with("postgres") {
        &[
            "CREATE FUNCTION auftrag_test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON x_device FOR EACH ROW \
             EXECUTE FUNCTION auftrag_test_refuse()",
        ]
    } else {
        &["CREATE TRIGGER refuse BEFORE INSERT ON x_device BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
    };
    for sql in refuse {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let devices = count(&pool, "SELECT COUNT(*) FROM x_device").await;
    let orders = count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await;
    let fields = register_fields("refused", json!([interface(LAB_NET, "134.94.32.90", "00:1a:2b:3c:4d:90", "refused.jsc.kfa-juelich.de")]));
    let r = s
        .call(Some("staff"), Method::POST, "/api/v1/orders", Some(json!({"type": "register_device", "fields": fields})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["check"], "processing", "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap_or_default().contains("refused by the test"), "{}", r.body);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device").await, devices, "nothing of the device was written");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await, orders + 1, "the order is kept");
    let (state, changes): (String, String) = sqlx::query_as("SELECT state, changes FROM auftrag_orders ORDER BY id DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "ABORTED");
    assert_eq!(changes, "{}");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_jobs WHERE queue = 'labels'").await, 0, "no label job for it");
}
}

on_both_backends! {
/// Orders sent together share transactions (group commit). When one of
/// them fails in the database, the orders that shared its transaction are
/// rolled back with it and run again alone: every good order completes,
/// exactly once, and the failing ones are kept, ended with the reason.
async fn a_failing_order_among_concurrent_ones_costs_the_others_nothing(s) {
    let pool = s.db().await;
    let refuse: &[&str] = if s.db_url.starts_with("postgres") {
        &[
            "CREATE FUNCTION auftrag_test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.DV_LABEL LIKE 'refused%' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON x_device FOR EACH ROW \
             EXECUTE FUNCTION auftrag_test_refuse()",
        ]
    } else {
        &["CREATE TRIGGER refuse BEFORE INSERT ON x_device WHEN NEW.DV_LABEL LIKE 'refused%' \
           BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
    };
    for sql in refuse {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let orders = count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await;
    let hosts: Vec<String> = (0..40)
        .map(|i| if i % 5 == 2 { format!("refused{i}") } else { format!("group{i}") })
        .collect();
    let sent = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| register_fields(host, json!([interface(
            LAB_NET, &format!("134.94.32.{}", 100 + i), &format!("02:00:00:00:02:{i:02x}"),
            &format!("{host}.jsc.kfa-juelich.de"))])))
        .collect();
    for (host, (status, body)) in hosts.iter().zip(send_all(&s, sent).await) {
        if host.starts_with("refused") {
            assert_eq!(status, StatusCode::CREATED, "{host}: {body}");
            assert_eq!(body["state"], "ABORTED", "{host}: {body}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{host}: {body}");
            assert_eq!(body["state"], "COMPLETED", "{host}: {body}");
        }
    }
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_LABEL LIKE 'group%'").await, 32, "each good order once");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM x_device WHERE DV_LABEL LIKE 'refused%'").await, 0);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_orders").await, orders + 40, "every order kept once");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_orders WHERE state = 'ABORTED'").await, 8);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_orders WHERE state = 'INITIAL'").await, 0);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM auftrag_jobs WHERE queue = 'labels'").await, 32, "one label job per good order");
    assert_invariants(&pool).await;
}
}

//! The inverse of a JuNet order (`POST /api/v1/orders/{id}/rollback`; see
//! `auftrag_engine::history::rollback`), made from what the order recorded
//! (`changed`, `[old, new]`):
//!
//! - `register_device` → `delete_device` of the device it made (by the
//!   canonical alias of its first interface);
//! - `change_device` → `change_device` of the same interface back to the old
//!   values of what it changed (aliases added are removed and removed ones
//!   added, interfaces added are removed);
//! - `delete_device` → `register_device` with the data the deletion recorded
//!   (device data, admin, users, interfaces with their aliases);
//! - `name_deputy` → `end_deputy` of a deputyship it named, or `name_deputy`
//!   with the end it had; `end_deputy` → `name_deputy` with the end it had.
//!
//! An IPv6 address a change made for an interface that had none stays: any
//! change of an interface in a subnet with IPv6 on makes one, so no order
//! removes it.
//!
//! What `change_device` and `register_device` cannot express is refused with
//! the reason: emptying a field (an order that filled an empty one),
//! interfaces removed by a change (their data was not recorded), a
//! canonical name moved between two aliases that both stay, and deputyships
//! that ended with a change of admin or a deletion (a rollback would not
//! name them again).

use auftrag_engine::domain::{Inverse, ObjectOf};
use auftrag_engine::store::history::OrderDocument;
use serde_json::{Value, json};

use super::pip::RECORDED_DEVICE;

type Fields = auftrag_engine::context::Fields;

/// See the module documentation.
pub fn inverse(order: &OrderDocument) -> Result<Inverse, String> {
    let id = order.id;
    let (order_type, fields, whole_object) = match order.order_type.as_str() {
        "register_device" => ("delete_device", unregister(order)?, true),
        "change_device" => ("change_device", change_back(order)?, false),
        "delete_device" => ("register_device", register_again(order)?, true),
        "name_deputy" | "end_deputy" => deputyship_back(order)?,
        other => return Err(format!("orders of type `{other}` cannot be rolled back")),
    };
    let mut fields = fields;
    if order_type == "delete_device" {
        fields.insert("reason".into(), json!(format!("rollback of order {id}")));
    }
    Ok(Inverse {
        order_type: order_type.to_owned(),
        fields,
        whole_object,
    })
}

/// The old value a field had, as text: what `change_device` and
/// `register_device` take. `Err` when it had none (no order can empty it).
fn old_text(order: &OrderDocument, field: &str) -> Result<Option<String>, String> {
    match order.changed.get(field).map(|[old, _]| old) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!(
            "it set `{field}` where there was none, and an order cannot empty `{field}`"
        )),
    }
}

/// An alias as the history records it: `name` or `name (canonical)`.
fn alias_of(recorded: &Value) -> Option<(String, bool)> {
    let text = recorded.as_str()?;
    Some(match text.strip_suffix(" (canonical)") {
        Some(name) => (name.to_ascii_lowercase(), true),
        None => (text.to_ascii_lowercase(), false),
    })
}

fn aliases_of(v: &Value) -> Vec<(String, bool)> {
    v.as_array()
        .map(|a| a.iter().filter_map(alias_of).collect())
        .unwrap_or_default()
}

fn names_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

/// `register_device` → `delete_device` of the device it made.
fn unregister(order: &OrderDocument) -> Result<Fields, String> {
    let interfaces = order
        .fields
        .get("interfaces")
        .and_then(Value::as_array)
        .ok_or("the registration names no interfaces")?;
    let aliases = interfaces
        .first()
        .and_then(|i| i.get("aliases"))
        .and_then(Value::as_array)
        .ok_or("the registration's first interface has no aliases")?;
    let canonical = aliases
        .iter()
        .find(|a| a.get("canonical").and_then(Value::as_str) == Some("Y"))
        .or(aliases.first())
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or("the registration's first interface has no alias")?;
    Ok(Fields::from([("host".into(), json!(canonical))]))
}

/// `change_device` → `change_device` back to the old values.
fn change_back(order: &OrderDocument) -> Result<Fields, String> {
    let mut fields = Fields::new();
    let mut host = order
        .fields
        .get("host")
        .and_then(Value::as_str)
        .ok_or("the change names no host")?
        .to_ascii_lowercase();
    let set_by_hand = order.fields.contains_key("ipv6");
    for (field, [old, new]) in &order.changed {
        match field.as_str() {
            "label" | "dv_class" | "dv_type" | "serial" | "geb" | "raum" | "org" | "persdata"
            | "hwa" | "net" | "ipv4" | "ssh" | "admin" => {
                if let Some(v) = old_text(order, field)? {
                    fields.insert(field.clone(), json!(v));
                }
                if field == "label" && host == old.as_str().unwrap_or_default().to_ascii_lowercase()
                {
                    // the order named the device by its label, which it changed
                    host = new.as_str().unwrap_or_default().to_ascii_lowercase();
                }
            }
            "users" => {
                // an empty list empties it
                fields.insert("users".into(), json!(names_of(old)));
            }
            "deputies" => {
                return Err(format!(
                    "its change of admin ended the deputyships of {} for the device, which a rollback would not name again; change the admin back and name the deputies with name_deputy",
                    names_of(old).join(", ")
                ));
            }
            "inet6_addr_type" => {
                if let Some(t) = old.as_str() {
                    fields.insert(field.clone(), json!(t));
                } else if let Some(Value::String(gua)) = order.changed.get("ipv6").map(|[o, _]| o) {
                    // no type with an address: it was given by hand
                    fields.insert(field.clone(), json!("manual"));
                    fields.insert("ipv6".into(), json!(gua));
                }
                // Neither: it had no IPv6 address, and the one the subnet
                // gives stays (any change of an interface in a subnet with
                // IPv6 on makes one), so it is not restored.
            }
            "ipv6" => {
                // made from the MAC or IPv4 unless given by hand: then the
                // old values of those bring it back; none stays (as above)
                if set_by_hand
                    && !order.changed.contains_key("inet6_addr_type")
                    && let Some(gua) = old.as_str()
                {
                    fields.insert("ipv6".into(), json!(gua));
                }
            }
            "aliases" => {
                let (before, after) = (aliases_of(old), aliases_of(new));
                let had = |list: &[(String, bool)], name: &str| list.iter().any(|(n, _)| n == name);
                let added: Vec<&String> = after
                    .iter()
                    .filter(|(n, _)| !had(&before, n))
                    .map(|(n, _)| n)
                    .collect();
                let removed: Vec<&(String, bool)> =
                    before.iter().filter(|(n, _)| !had(&after, n)).collect();
                let canonical_before = before.iter().find(|(_, c)| *c).map(|(n, _)| n);
                let canonical_after = after.iter().find(|(_, c)| *c).map(|(n, _)| n);
                if canonical_before != canonical_after
                    && canonical_before.is_some_and(|c| had(&after, c))
                {
                    return Err(format!(
                        "it made {} the canonical name instead of {}, which both stay; a change can make only a new alias canonical",
                        canonical_after.map_or("another alias", String::as_str),
                        canonical_before.map_or("", String::as_str)
                    ));
                }
                if !removed.is_empty() {
                    fields.insert(
                        "add_aliases".into(),
                        json!(
                            removed
                                .iter()
                                .map(|(n, c)| json!({"name": n, "canonical": if *c { "Y" } else { "N" }}))
                                .collect::<Vec<_>>()
                        ),
                    );
                }
                if !added.is_empty() {
                    fields.insert("remove_aliases".into(), json!(added));
                }
                if had(&before, &host) && !had(&after, &host) {
                    // the order removed the alias it named the interface by
                    host = canonical_after
                        .or(after.first().map(|(n, _)| n))
                        .cloned()
                        .ok_or("the interface has no aliases after the change")?;
                }
            }
            "interfaces" => {
                let (before, after) = (names_of(old), names_of(new));
                if let Some(gone) = before.iter().find(|n| !after.contains(n)) {
                    return Err(format!(
                        "it removed the interface {gone}, whose data a change does not record; add it again with change_device (add_interfaces)"
                    ));
                }
                let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
                if !added.is_empty() {
                    fields.insert("remove_interfaces".into(), json!(added));
                }
            }
            other => {
                return Err(format!(
                    "it changed `{other}`, which a rollback does not know how to restore"
                ));
            }
        }
    }
    fields.insert("host".into(), json!(host));
    Ok(fields)
}

/// `delete_device` → `register_device` with what the deletion recorded.
fn register_again(order: &OrderDocument) -> Result<Fields, String> {
    let removed = |field: &str| order.changed.get(field).map(|[old, _]| old);
    if let Some(deputies) = removed("deputies") {
        let names: Vec<String> = deputies
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.get("deputy").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "the deletion ended the deputyships of {} for the device, which a registration would not name again; register the device and name the deputies with name_deputy",
            names.join(", ")
        ));
    }
    let interfaces = match removed("interfaces") {
        Some(Value::Array(list)) if list.iter().all(Value::is_object) && !list.is_empty() => {
            list.clone()
        }
        _ => {
            return Err(
                "the deletion did not record the device's interfaces (it was made before deletions kept them)"
                    .into(),
            );
        }
    };
    let mut fields = Fields::new();
    let label = removed("label")
        .and_then(Value::as_str)
        .ok_or("the deletion did not record the device's label")?;
    fields.insert("host".into(), json!(label));
    for field in [
        "dv_class", "dv_type", "serial", "geb", "raum", "org", "persdata", "arrival", "admin",
    ] {
        if let Some(Value::String(v)) = removed(field)
            && !v.is_empty()
        {
            fields.insert(field.into(), json!(v));
        }
    }
    if let Some(users) = removed("users").filter(|u| !names_of(u).is_empty()) {
        fields.insert("users".into(), users.clone());
    }
    fields.insert("interfaces".into(), Value::Array(interfaces));
    Ok(fields)
}

/// `name_deputy` / `end_deputy` → the deputyship as it was.
fn deputyship_back(order: &OrderDocument) -> Result<(&'static str, Fields, bool), String> {
    let mut fields = Fields::new();
    for k in ["scope", "host", "org", "deputy"] {
        if let Some(v) = order.fields.get(k).filter(|v| !v.is_null()) {
            fields.insert(k.into(), v.clone());
        }
    }
    let change = |k: &str| order.changed.get(k);
    let until_before = change("until").map(|[old, _]| old.clone());
    match (order.order_type.as_str(), change("deputy")) {
        // it named a new deputyship: end it
        ("name_deputy", Some([Value::Null, _])) => Ok(("end_deputy", fields, false)),
        // it ended one: name it again, with the end it had
        ("end_deputy", Some([_, Value::Null])) | ("name_deputy" | "end_deputy", None) => {
            if let Some(Value::String(until)) = &until_before {
                fields.insert("until".into(), json!(until));
            }
            Ok(("name_deputy", fields, false))
        }
        _ => Err("it recorded a change of its deputyship that a rollback does not know".into()),
    }
}

/// Two orders are about the same object: device orders about the same
/// device (its recorded id, or the same host name), deputyship orders
/// about the same deputyship (deputy and scope).
pub fn same_object(a: &ObjectOf<'_>, b: &ObjectOf<'_>) -> bool {
    let deputyship = |o: &ObjectOf<'_>| matches!(o.order_type, "name_deputy" | "end_deputy");
    let device = |o: &ObjectOf<'_>| {
        o.facts
            .and_then(|f| f.get(RECORDED_DEVICE))
            .and_then(Value::as_i64)
    };
    let key = |o: &ObjectOf<'_>| o.key.map(str::to_ascii_lowercase);
    let same_device =
        (device(a).is_some() && device(a) == device(b)) || (key(a).is_some() && key(a) == key(b));
    match (deputyship(a), deputyship(b)) {
        (false, false) => same_device,
        (true, true) => {
            let text = |o: &ObjectOf<'_>, k: &str| {
                o.fields
                    .get(k)
                    .and_then(Value::as_str)
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
            };
            let scope = |o: &ObjectOf<'_>| {
                text(o, "scope").unwrap_or_else(|| {
                    match (text(o, "host"), text(o, "org")) {
                        (Some(_), _) => "device",
                        (None, Some(_)) => "org",
                        (None, None) => "my_devices",
                    }
                    .to_owned()
                })
            };
            text(a, "deputy") == text(b, "deputy")
                && scope(a) == scope(b)
                && match scope(a).as_str() {
                    "device" => same_device,
                    "org" => text(a, "org") == text(b, "org"),
                    _ => a.requester == b.requester,
                }
        }
        _ => false,
    }
}

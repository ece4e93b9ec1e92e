//! Fuzzes what an order's JSON body goes through before any check of
//! `checks.xml` or the database sees it: serde into the body of
//! `POST /api/v1/orders` (`{"type": …, "fields": {…}}`, mirrored here from
//! `engine/src/http/mod.rs`), the shape check (`validate_fields`) against the
//! shipped order types, and the built-in `syntax` check (`check_value`, each
//! field type's parser in `engine/src/workflow/types.rs`) — for the shipped
//! fields and for a field of every type, list and record. The raw input is
//! also given to each type's parser as text.
//!
//! Properties: no panic; the text types parse their own output to itself.
#![no_main]

use std::str::FromStr;
use std::sync::OnceLock;

use auftrag_engine::context::Fields;
use auftrag_engine::defs::{Definitions, FieldDef, FieldType};
use auftrag_engine::types::{
    Building, FieldValue, Hostname, MacAddr6, PersonRef, Room, Subnet, Value, check_value,
};
use auftrag_engine::workflow::executor::validate_fields;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// As `SubmitBody` in `engine/src/http/mod.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SubmitBody {
    #[serde(rename = "type")]
    order_type: String,
    #[serde(default)]
    fields: Fields,
}

const fn field(ty: FieldType, list: bool) -> FieldDef {
    FieldDef {
        name: "f",
        description: "",
        ty,
        required: false,
        list,
        values: &["a", "B c"],
        min: Some(-5),
        max: Some(1_000_000),
        fields: &[],
    }
}

const TYPES: [FieldType; 14] = [
    FieldType::String,
    FieldType::Hostname,
    FieldType::Mac,
    FieldType::Ipv4,
    FieldType::Ipv6,
    FieldType::Subnet,
    FieldType::Building,
    FieldType::Room,
    FieldType::Enum,
    FieldType::Bool,
    FieldType::Person,
    FieldType::Date,
    FieldType::Datetime,
    FieldType::Integer,
];

static SCALARS: [FieldDef; 14] = {
    let mut out = [const { field(FieldType::String, false) }; 14];
    let mut i = 0;
    while i < 14 {
        out[i] = field(TYPES[i], false);
        i += 1;
    }
    out
};

static LISTS: [FieldDef; 14] = {
    let mut out = [const { field(FieldType::String, true) }; 14];
    let mut i = 0;
    while i < 14 {
        out[i] = field(TYPES[i], true);
        i += 1;
    }
    out
};

static MEMBERS: [FieldDef; 3] = [
    FieldDef {
        name: "host",
        required: true,
        ..field(FieldType::Hostname, false)
    },
    FieldDef {
        name: "hwa",
        ..field(FieldType::Mac, true)
    },
    FieldDef {
        name: "inner",
        ..field(FieldType::Record, false)
    },
];

static RECORDS: [FieldDef; 2] = [
    FieldDef {
        fields: &MEMBERS,
        ..field(FieldType::Record, false)
    },
    FieldDef {
        fields: &MEMBERS,
        ..field(FieldType::Record, true)
    },
];

fn defs() -> &'static Definitions {
    static DEFS: OnceLock<&'static Definitions> = OnceLock::new();
    DEFS.get_or_init(|| auftrag::domain().definitions())
}

fn every_def() -> impl Iterator<Item = &'static FieldDef> {
    SCALARS.iter().chain(LISTS.iter()).chain(RECORDS.iter())
}

/// A text type parses what it made to the same value.
fn stable<T: FromStr<Err = String> + ToString + PartialEq + std::fmt::Debug>(s: &str) {
    if let Ok(v) = s.parse::<T>() {
        let again = v.to_string().parse::<T>();
        assert_eq!(again.as_ref(), Ok(&v), "{s:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if let Ok(body) = serde_json::from_slice::<SubmitBody>(data) {
        if let Some(ot) = defs().order_type(&body.order_type) {
            let _ = validate_fields(ot, &body.fields, false);
            let _ = validate_fields(ot, &body.fields, true);
            for def in ot.fields {
                if let Some(v) = body.fields.get(def.name) {
                    check_value(def, def.name, v, &mut out);
                }
            }
        }
        for v in body.fields.values() {
            for def in every_def() {
                check_value(def, def.name, v, &mut out);
            }
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        for def in every_def() {
            check_value(def, def.name, &value, &mut out);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let value = Value::String(text.to_owned());
    for def in every_def() {
        check_value(def, def.name, &value, &mut out);
    }
    stable::<Hostname>(text);
    stable::<Building>(text);
    stable::<Room>(text);
    stable::<PersonRef>(text);
    if let Ok(s) = Subnet::from_json(&value) {
        assert_eq!(Subnet::from_json(&Value::String(s.to_string())), Ok(s));
    }
    if let Ok(m) = MacAddr6::from_json(&value) {
        assert_eq!(MacAddr6::from_json(&Value::String(m.to_string())), Ok(m));
    }
});

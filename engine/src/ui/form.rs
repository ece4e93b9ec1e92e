//! Forms generated from an order type's typed fields
//! ([`crate::workflow::defs::FieldDef`]), and the way back from a posted
//! form to the JSON fields the executor takes.
//!
//! | field type | input |
//! |---|---|
//! | `enum` | a select of its values |
//! | `bool` | a select of `Y` / `N` |
//! | `date` | a date input |
//! | `integer` | a number input within its bounds |
//! | `email` | an e-mail input (`type=email`) |
//! | `url` | a URL input (`type=url`) |
//! | `string` (multiline) | a text area |
//! | a list of plain values | a text area, one value per line |
//! | a `record`, or a list of records | a JSON text area, prefilled with the record's shape |
//! | everything else (`mac`, `ipv4`, `subnet`, `hostname`, `dnsname`, `person`, …) | a text input with an example |
//!
//! A subnet is typed, not chosen from a list: the engine knows no subnets
//! (they are the domain's). Every value is judged by the checks on submit.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::workflow::context::{Fields, Finding};
use crate::workflow::defs::{FieldDef, FieldType, OrderTypeDef};

/// A choice of a select.
#[derive(Debug, Clone)]
pub struct Opt {
    pub value: &'static str,
    pub selected: bool,
}

/// One input of a form, as the template draws it.
#[derive(Debug, Clone)]
pub struct Input {
    /// The field's name; the input is `f.NAME`.
    pub name: &'static str,
    pub description: &'static str,
    /// `text`, `select`, `textarea`, `date`, `number`, `email`, `url`.
    pub kind: &'static str,
    pub options: Vec<Opt>,
    pub value: String,
    pub required: bool,
    /// An example or what to write (placeholder).
    pub hint: String,
    /// What the field takes, in words (`mac`, `list of text, one per line`).
    pub ty: String,
    pub min: String,
    pub max: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

fn type_name(ty: FieldType) -> String {
    match serde_json::to_value(ty) {
        Ok(Value::String(s)) => s,
        _ => "text".to_owned(),
    }
}

fn example(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Mac => "00:1a:2b:3c:4d:5e",
        FieldType::Ipv4 => "134.94.16.12",
        FieldType::Ipv6 => "2001:638:404:16::12",
        FieldType::Subnet => "134.94.16.0/24",
        FieldType::Hostname => "host.example.org",
        FieldType::Datetime => "2026-06-30T12:00:00Z",
        FieldType::Person => "PERS_KEY",
        FieldType::Email => "name@example.org",
        FieldType::Url => "https://example.org/",
        FieldType::Dnsname => "*.lab.example.org",
        _ => "",
    }
}

/// A record's shape as JSON, with empty values: what a person fills in.
fn skeleton(fields: &[FieldDef]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| {
                let v = match (f.list, f.ty) {
                    (true, FieldType::Record) => Value::Array(vec![skeleton(f.fields)]),
                    (true, _) => Value::Array(vec![]),
                    (false, FieldType::Record) => skeleton(f.fields),
                    _ => Value::String(String::new()),
                };
                (f.name.to_owned(), v)
            })
            .collect(),
    )
}

fn is_json(def: &FieldDef) -> bool {
    def.ty == FieldType::Record
}

/// A stored value as the form shows it.
pub fn shown(def: &FieldDef, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) if is_json(def) => serde_json::to_string_pretty(v).unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// The inputs of `order_type`, with `values` as posted or stored (form
/// text by field name) and the findings sorted to the fields they name.
pub fn inputs(
    order_type: &'static OrderTypeDef,
    values: &BTreeMap<String, String>,
    problems: &Problems,
) -> Vec<Input> {
    order_type
        .fields
        .iter()
        .map(|def| {
            let (kind, options): (&'static str, Vec<&'static str>) = match def.ty {
                _ if def.list || is_json(def) => ("textarea", vec![]),
                FieldType::Enum => ("select", def.values.to_vec()),
                FieldType::Bool => ("select", vec!["Y", "N"]),
                FieldType::Date => ("date", vec![]),
                FieldType::Integer => ("number", vec![]),
                FieldType::Email => ("email", vec![]),
                FieldType::Url => ("url", vec![]),
                FieldType::String if def.multiline => ("textarea", vec![]),
                _ => ("text", vec![]),
            };
            let value = values.get(def.name).cloned().unwrap_or_default();
            let options = options
                .into_iter()
                .map(|o| Opt {
                    value: o,
                    selected: o == value,
                })
                .collect();
            let base = type_name(def.ty);
            let ty = match (def.list, is_json(def)) {
                (true, true) => "list of records (JSON)".to_owned(),
                (false, true) => "record (JSON)".to_owned(),
                (true, false) => format!("list of {base}, one per line"),
                (false, false) => base.to_owned(),
            };
            let hint = if is_json(def) {
                let shape = skeleton(def.fields);
                let shape = if def.list {
                    Value::Array(vec![shape])
                } else {
                    shape
                };
                serde_json::to_string(&shape).unwrap_or_default()
            } else {
                example(def.ty).to_owned()
            };
            Input {
                name: def.name,
                description: def.description,
                kind,
                options,
                value,
                required: def.required,
                hint,
                ty,
                min: def.min.map(|m| m.to_string()).unwrap_or_default(),
                max: def.max.map(|m| m.to_string()).unwrap_or_default(),
                errors: problems.errors.get(def.name).cloned().unwrap_or_default(),
                warnings: problems.warnings.get(def.name).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// Findings sorted to the top-level field they name (`interfaces[0].hwa`
/// → `interfaces`, with the path in the message); those of no field are
/// `general`.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub errors: BTreeMap<String, Vec<String>>,
    pub warnings: BTreeMap<String, Vec<String>>,
    pub general_errors: Vec<String>,
    pub general_warnings: Vec<String>,
}

impl Problems {
    fn put(
        map: &mut BTreeMap<String, Vec<String>>,
        general: &mut Vec<String>,
        field: Option<&str>,
        message: &str,
    ) {
        match field {
            None | Some("") => general.push(message.to_owned()),
            Some(path) => {
                let top = path.split(['[', '.']).next().unwrap_or(path);
                let text = if top == path {
                    message.to_owned()
                } else {
                    format!("{path}: {message}")
                };
                map.entry(top.to_owned()).or_default().push(text);
            }
        }
    }

    pub fn error(&mut self, field: Option<&str>, message: &str) {
        Self::put(&mut self.errors, &mut self.general_errors, field, message);
    }

    pub fn warning(&mut self, field: Option<&str>, message: &str) {
        Self::put(
            &mut self.warnings,
            &mut self.general_warnings,
            field,
            message,
        );
    }

    pub fn findings(errors: &[Finding], warnings: &[Finding]) -> Self {
        let mut p = Self::default();
        for f in errors {
            p.error(f.field.as_deref(), &f.message);
        }
        for f in warnings {
            p.warning(f.field.as_deref(), &f.message);
        }
        p
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || !self.general_errors.is_empty()
    }
}

/// The posted `f.NAME` values by field name.
pub fn posted(form: &[(String, String)]) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(k, v)| k.strip_prefix("f.").map(|n| (n.to_owned(), v.clone())))
        .collect()
}

/// The fields of a posted form as the executor takes them: empty inputs
/// are left out (or, with `current`, emptied to null when they had a
/// value); with `current`, only what differs from it. A text area of JSON
/// that is not JSON is an error at its field.
pub fn to_fields(
    order_type: &'static OrderTypeDef,
    values: &BTreeMap<String, String>,
    current: Option<&Fields>,
    problems: &mut Problems,
) -> Fields {
    let mut fields = Fields::new();
    for def in order_type.fields {
        let Some(raw) = values.get(def.name) else {
            continue;
        };
        let text = if def.multiline {
            raw.as_str()
        } else {
            raw.trim()
        };
        let value = if text.trim().is_empty() {
            Value::Null
        } else if is_json(def) {
            match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(e) => {
                    problems.error(Some(def.name), &format!("is not valid JSON: {e}"));
                    continue;
                }
            }
        } else if def.list {
            Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_owned()))
                    .collect(),
            )
        } else {
            Value::String(text.replace("\r\n", "\n"))
        };
        match current {
            None if value.is_null() => {}
            None => {
                fields.insert(def.name.to_owned(), value);
            }
            Some(current) => {
                let before = current.get(def.name).cloned().unwrap_or(Value::Null);
                let same = shown(def, Some(&before)) == shown(def, Some(&value));
                if !same {
                    fields.insert(def.name.to_owned(), value);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn field(name: &'static str, ty: FieldType, list: bool) -> FieldDef {
        FieldDef {
            name,
            description: "",
            ty,
            required: false,
            list,
            values: &[],
            min: None,
            max: None,
            max_length: None,
            multiline: false,
            fields: &[],
        }
    }

    static FIELDS: [FieldDef; 5] = [
        field("contact", FieldType::Email, false),
        field("page", FieldType::Url, false),
        field("name", FieldType::Dnsname, false),
        field("nets", FieldType::Subnet, true),
        field("cc", FieldType::Email, true),
    ];
    static ORDER: OrderTypeDef = OrderTypeDef {
        name: "request_certificate",
        description: "",
        workflow: 0,
        key_field: None,
        fields: &FIELDS,
    };

    #[test]
    fn email_and_url_fields_get_their_input_types() {
        let inputs = inputs(&ORDER, &BTreeMap::new(), &Problems::default());
        let kinds: Vec<(&str, &str, &str)> = inputs
            .iter()
            .map(|i| (i.name, i.kind, i.hint.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("contact", "email", "name@example.org"),
                ("page", "url", "https://example.org/"),
                ("name", "text", "*.lab.example.org"),
                ("nets", "textarea", "134.94.16.0/24"),
                ("cc", "textarea", "name@example.org"),
            ]
        );
        assert_eq!(inputs[3].ty, "list of subnet, one per line");
    }
}

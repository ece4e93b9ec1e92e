//! Field types that parse at the edge (DESIGN.md §2: no hand-written parsers
//! for what libraries do well). Each field type of `orders.xml` is a Rust type
//! here; the engine's built-in `syntax` check parses every filled field with
//! it, and the generated field structs (`generated::ChangeDevice`, …) hand
//! handlers the parsed values — so a value that exists in a handler is valid.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use ipnet::IpNet;
pub use macaddr::MacAddr6;
pub use time::{Date, OffsetDateTime};

pub use serde_json::Value;

use crate::workflow::defs::{FieldDef, FieldType};

/// A value of a field did not parse; `field` is its path (`interfaces[0].hwa`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn at(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<FieldError> for crate::error::HandlerError {
    fn from(e: FieldError) -> Self {
        crate::error::HandlerError::Failed(e.to_string())
    }
}

/// A Rust type a field value parses into.
pub trait FieldValue: Sized {
    fn from_json(v: &Value) -> Result<Self, String>;
}

/// The longest text a `string` field takes when its definition sets no
/// `max_length` (characters).
pub const DEFAULT_MAX_LENGTH: u32 = 255;

/// The longest text any `string` value may be, whatever its definition says
/// (the compiler refuses a larger `max_length`).
pub const MAX_MAX_LENGTH: u32 = 65_536;

/// The longest text a value of a parsed type (host name, MAC, date, …) may
/// be: far above any valid one, so that a message quoting the value stays
/// short.
pub const TYPED_MAX_LENGTH: usize = 1024;

/// The first control character of `s` with its position (1-based, in
/// characters): C0 (U+0000–U+001F), DEL (U+007F) or C1 (U+0080–U+009F);
/// with `lines`, LF and TAB are allowed.
pub fn control_char(s: &str, lines: bool) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|&(_, c)| c.is_control() && !(lines && matches!(c, '\n' | '\t')))
        .map(|(i, c)| (i + 1, c))
}

/// Judges a text by its character set and length: no control characters
/// (see [`control_char`]) and at most `max` characters. The message names
/// the offending character and its position, or the length — never the
/// text itself, which may be hostile.
pub fn check_text(s: &str, max: usize, lines: bool) -> Result<(), String> {
    if let Some((pos, c)) = control_char(s, lines) {
        let allowed = if lines {
            "remove it (line breaks as LF and tabs are allowed, other control characters are not)"
        } else {
            "remove it; this field takes one line of printable text"
        };
        return Err(format!(
            "contains a control character (U+{:04X}) at position {pos}; {allowed}",
            u32::from(c)
        ));
    }
    // counted no further than needed: a long text is refused without
    // walking all of it
    let n = s.chars().take(max + 1).count();
    if n > max {
        return Err(format!(
            "is {} characters long; at most {max} are allowed",
            s.chars().count()
        ));
    }
    Ok(())
}

/// The text of a JSON value for a parsed type: refused when it holds
/// control characters or is longer than [`TYPED_MAX_LENGTH`], before any
/// parser (or message) sees it.
fn text(v: &Value) -> Result<&str, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("must be text, not {}", kind(v)))?;
    check_text(s, TYPED_MAX_LENGTH, false)?;
    Ok(s)
}

/// The text of a `string` value: no control characters but LF and TAB, at
/// most [`MAX_MAX_LENGTH`] characters. A field's own limits (one line,
/// `max_length`) are judged by [`check_value`] (the `syntax` check).
fn free_text(v: &Value) -> Result<&str, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("must be text, not {}", kind(v)))?;
    check_text(s, MAX_MAX_LENGTH as usize, true)?;
    Ok(s)
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a record",
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

/// A required field (or record member) `name` with value `v`.
pub fn required<T: FieldValue>(v: Option<&Value>, name: &str) -> Result<T, FieldError> {
    match v {
        _ if is_empty(v) => Err(FieldError::at(name, "is required")),
        Some(v) => T::from_json(v).map_err(|m| FieldError::at(name, m)),
        None => unreachable!(),
    }
}

/// An optional field: `None` when absent, null or empty.
pub fn optional<T: FieldValue>(v: Option<&Value>, name: &str) -> Result<Option<T>, FieldError> {
    if is_empty(v) {
        return Ok(None);
    }
    required(v, name).map(Some)
}

/// A required member of a record value, for generated record types.
pub fn member_required<T: FieldValue>(
    obj: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<T, String> {
    required(obj.get(name), name).map_err(|e| format!("`{}` {}", e.field, e.message))
}

/// An optional member of a record value, for generated record types.
pub fn member_optional<T: FieldValue>(
    obj: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<T>, String> {
    optional(obj.get(name), name).map_err(|e| format!("`{}` {}", e.field, e.message))
}

/// The members of a record value, for generated record types.
pub fn record(v: &Value) -> Result<&serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("must be a record, not {}", kind(v)))
}

/// The text of an enum value, for generated enum types.
pub fn enum_text(v: &Value) -> Result<&str, String> {
    text(v).map(str::trim)
}

/// The error of a generated field struct asked for an order of another type.
pub fn wrong_order_type(expected: &str, found: &str) -> FieldError {
    FieldError {
        field: String::new(),
        message: format!("the order is of type `{found}`, not `{expected}`"),
    }
}

impl FieldValue for String {
    fn from_json(v: &Value) -> Result<Self, String> {
        free_text(v).map(str::to_owned)
    }
}

impl FieldValue for i64 {
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| format!("`{n}` is not a whole number")),
            Value::String(_) => {
                let s = text(v)?;
                s.trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a whole number"))
            }
            other => Err(format!("must be a whole number, not {}", kind(other))),
        }
    }
}

impl FieldValue for bool {
    /// `Y`/`N` as the device database writes it (also `true`/`false`).
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(_) => match text(v)?.trim() {
                "Y" | "y" | "true" => Ok(true),
                "N" | "n" | "false" => Ok(false),
                other => Err(format!("`{other}` is not Y or N")),
            },
            other => Err(format!("must be Y or N, not {}", kind(other))),
        }
    }
}

impl FieldValue for MacAddr6 {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        MacAddr6::from_str(s.trim()).map_err(|_| {
            format!(
                "`{s}` is not a hardware address; write six hex bytes such as 00:1a:2b:3c:4d:5e"
            )
        })
    }
}

impl FieldValue for Ipv4Addr {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        s.trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv4 address such as 134.94.1.10"))
    }
}

impl FieldValue for Ipv6Addr {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        s.trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv6 address such as 2001:638:404::10"))
    }
}

impl FieldValue for Date {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        Date::parse(
            s.trim(),
            &time::format_description::well_known::Iso8601::DATE,
        )
        .map_err(|_| format!("`{s}` is not a date such as 2026-11-24"))
    }
}

impl FieldValue for OffsetDateTime {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| format!("`{s}` is not a time such as 2026-11-24T08:00:00Z"))
    }
}

impl<T: FieldValue> FieldValue for Vec<T> {
    fn from_json(v: &Value) -> Result<Self, String> {
        let Value::Array(items) = v else {
            return Err(format!("must be a list, not {}", kind(v)));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, x)| T::from_json(x).map_err(|m| format!("item {}: {m}", i + 1)))
            .collect()
    }
}

macro_rules! text_newtype {
    ($(#[$m:meta])* $name:ident, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<String, String> = $check;
                check(s.trim()).map($name)
            }
        }

        impl FieldValue for $name {
            fn from_json(v: &Value) -> Result<Self, String> {
                text(v)?.parse()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Whether `h` (lower case, no trailing dot) is a host name after RFC 1123:
/// labels of letters, digits and `-` (not first or last), at most 63
/// characters each, 253 in all.
fn is_host_name(h: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !h.is_empty() && h.len() <= 253 && h.split('.').all(label_ok)
}

text_newtype!(
    /// A host name after RFC 1123 (labels of letters, digits and `-`, at most
    /// 63 characters each, 253 in all), lower-cased, without a trailing dot.
    Hostname,
    |s| {
        let h = s.trim_end_matches('.').to_ascii_lowercase();
        if is_host_name(&h) {
            Ok(h)
        } else {
            Err(format!(
                "`{s}` is not a host name (RFC 1123: labels of letters, digits and `-`, separated by dots)"
            ))
        }
    }
);

text_newtype!(
    /// A DNS name that may be a wildcard: a host name (see [`Hostname`]) or
    /// `*.` followed by one (`*.lab.example.edu`, the wildcard as the whole
    /// leftmost label, as certificates and DNS zones take it), lower-cased,
    /// without a trailing dot.
    DnsName,
    |s| {
        let h = s.trim_end_matches('.').to_ascii_lowercase();
        let base = h.strip_prefix("*.").unwrap_or(&h);
        if is_host_name(base) && h.len() <= 253 {
            Ok(h)
        } else {
            Err(format!(
                "`{s}` is not a DNS name such as lab.example.edu or *.lab.example.edu (labels of letters, digits and `-`; a `*` only as the whole first label)"
            ))
        }
    }
);

impl DnsName {
    /// Whether the name is a wildcard (`*.lab.example.edu`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without its wildcard label (`lab.example.edu`).
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }
}

text_newtype!(
    /// An e-mail address (`name@example.org`), parsed by `lettre` (the
    /// engine's mail sender): a local part and a domain, which is kept
    /// lower-cased.
    Email,
    |s| {
        let bad = || format!("`{s}` is not an e-mail address such as name@example.org");
        let address: lettre::Address = s.parse().map_err(|_| bad())?;
        let domain = address.domain().to_ascii_lowercase();
        // a domain with a dot or an address literal: `root@localhost`
        // reaches no one outside the machine
        if !domain.contains('.') && !domain.starts_with('[') {
            return Err(bad());
        }
        Ok(format!("{}@{domain}", address.user()))
    }
);

text_newtype!(
    /// An absolute `http` or `https` URL with a host, parsed by the `url`
    /// crate (WHATWG URL Standard) and kept in its normalised spelling.
    Url,
    |s| {
        let bad = |why: &str| format!("`{s}` is not a URL such as https://example.org/page ({why})");
        let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("only http and https are taken"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it names no host"));
        }
        Ok(url.into())
    }
);

text_newtype!(
    /// A building number of the campus, `16.3` or `04.8`.
    Building,
    |s| match s.split_once('.') {
        Some((a, b))
            if (1..=3).contains(&a.len())
                && (1..=2).contains(&b.len())
                && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(format!("`{s}` is not a building number such as 16.3")),
    }
);

text_newtype!(
    /// A room: letters, digits, spaces, `.`, `/` and `-`, at most 16 characters.
    Room,
    |s| {
        if !s.is_empty()
            && s.chars().count() <= 16
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '/' | '-'))
        {
            Ok(s.to_owned())
        } else {
            Err(format!("`{s}` is not a room such as R 227 or 3.014"))
        }
    }
);

text_newtype!(
    /// A person of the device database: its key (`PERS_KEY`, digits).
    PersonRef,
    |s| {
        if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s.to_owned())
        } else {
            Err(format!("`{s}` is not a person key (digits, e.g. 1002)"))
        }
    }
);

/// A subnet: an address range in CIDR notation (`134.94.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet(pub IpNet);

impl FieldValue for Subnet {
    fn from_json(v: &Value) -> Result<Self, String> {
        let s = text(v)?;
        s.trim()
            .parse::<IpNet>()
            .map(|n| Subnet(n.trunc()))
            .map_err(|_| format!("`{s}` is not a subnet such as 134.94.0.0/16"))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks one value against its field definition: the built-in `syntax`
/// check. Returns `(path, message)` per problem.
pub fn check_value(def: &FieldDef, path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    if def.list {
        let Value::Array(items) = v else {
            out.push((path.to_owned(), format!("must be a list, not {}", kind(v))));
            return;
        };
        for (i, item) in items.iter().enumerate() {
            check_one(def, &format!("{path}[{i}]"), item, out);
        }
    } else {
        check_one(def, path, v, out);
    }
}

/// Only the character set and length of a value's texts (see
/// [`check_text`]): what a field whose syntax a check of `checks.xml`
/// judges (`syntax="yes"`) must meet all the same.
pub fn check_characters(def: &FieldDef, path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            let r = if def.ty == FieldType::String {
                let max = def.max_length.unwrap_or(DEFAULT_MAX_LENGTH) as usize;
                check_text(s, max, def.multiline)
            } else {
                check_text(s, TYPED_MAX_LENGTH, false)
            };
            if let Err(m) = r {
                out.push((path.to_owned(), m));
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_characters(def, &format!("{path}[{i}]"), x, out);
            }
        }
        Value::Object(obj) => {
            for f in def.fields {
                if let Some(x) = obj.get(f.name) {
                    check_characters(f, &format!("{path}.{}", f.name), x, out);
                }
            }
        }
        _ => {}
    }
}

fn check_one(def: &FieldDef, path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let r: Result<(), String> = match def.ty {
        FieldType::String => v
            .as_str()
            .ok_or_else(|| format!("must be text, not {}", kind(v)))
            .and_then(|s| {
                let max = def
                    .max_length
                    .unwrap_or(DEFAULT_MAX_LENGTH)
                    .min(MAX_MAX_LENGTH);
                check_text(s, max as usize, def.multiline)
            }),
        FieldType::Hostname => Hostname::from_json(v).map(drop),
        FieldType::Mac => MacAddr6::from_json(v).map(drop),
        FieldType::Ipv4 => Ipv4Addr::from_json(v).map(drop),
        FieldType::Ipv6 => Ipv6Addr::from_json(v).map(drop),
        FieldType::Subnet => Subnet::from_json(v).map(drop),
        FieldType::Building => Building::from_json(v).map(drop),
        FieldType::Room => Room::from_json(v).map(drop),
        FieldType::Bool => bool::from_json(v).map(drop),
        FieldType::Person => PersonRef::from_json(v).map(drop),
        FieldType::Date => Date::from_json(v).map(drop),
        FieldType::Datetime => OffsetDateTime::from_json(v).map(drop),
        FieldType::Email => Email::from_json(v).map(drop),
        FieldType::Url => Url::from_json(v).map(drop),
        FieldType::Dnsname => DnsName::from_json(v).map(drop),
        FieldType::Enum => text(v).and_then(|s| {
            if def.values.contains(&s.trim()) {
                Ok(())
            } else {
                Err(format!("`{s}` is not one of {}", def.values.join(", ")))
            }
        }),
        FieldType::Integer => i64::from_json(v).and_then(|n| match (def.min, def.max) {
            (Some(lo), _) if n < lo => Err(format!("{n} is below the minimum {lo}")),
            (_, Some(hi)) if n > hi => Err(format!("{n} is above the maximum {hi}")),
            _ => Ok(()),
        }),
        FieldType::Record => {
            let Value::Object(obj) = v else {
                out.push((
                    path.to_owned(),
                    format!("must be a record, not {}", kind(v)),
                ));
                return;
            };
            for k in obj.keys() {
                if !def.fields.iter().any(|f| f.name == k) {
                    // the name is the sender's: quoted only when it is short
                    // and printable
                    let name = if check_text(k, 64, false).is_ok() {
                        k.as_str()
                    } else {
                        "?"
                    };
                    out.push((
                        format!("{path}.{name}"),
                        "is not a field of this record".into(),
                    ));
                }
            }
            for f in def.fields {
                let sub = format!("{path}.{}", f.name);
                let v = obj.get(f.name);
                if is_empty(v) {
                    if f.required {
                        out.push((sub, "is required".into()));
                    }
                } else if let Some(x) = v {
                    check_value(f, &sub, x, out);
                }
            }
            return;
        }
    };
    if let Err(m) = r {
        out.push((path.to_owned(), m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_at_the_edge() {
        assert!(MacAddr6::from_json(&json!("00:1a:2b:3c:4d:5e")).is_ok());
        assert!(MacAddr6::from_json(&json!("00:1a:2b:zz")).is_err());
        assert_eq!(
            Hostname::from_json(&json!("ZAM2212.zam.kfa-juelich.de."))
                .unwrap()
                .as_str(),
            "zam2212.zam.kfa-juelich.de"
        );
        assert!(Hostname::from_json(&json!("-bad.example")).is_err());
        assert!(Building::from_json(&json!("16.3")).is_ok());
        assert!(Building::from_json(&json!("16")).is_err());
        assert!(bool::from_json(&json!("Y")).unwrap());
        assert!(Subnet::from_json(&json!("134.94.0.0/16")).is_ok());
        assert!(Date::from_json(&json!("2026-11-24")).is_ok());
        assert_eq!(i64::from_json(&json!("22")), Ok(22));
        assert!(Vec::<Hostname>::from_json(&json!(["a.example", "b..example"])).is_err());
    }

    #[test]
    fn emails_urls_and_wildcard_names_parse_at_the_edge() {
        // e-mail: the domain lower-cased, the local part kept
        let e = Email::from_json(&json!(" Jane.Doe+pki@Lab.Example.EDU ")).unwrap();
        assert_eq!(e.as_str(), "Jane.Doe+pki@lab.example.edu");
        for bad in [
            "jane",
            "jane@",
            "@example.org",
            "jane@@example.org",
            "jane doe@example.org",
            "jane@localhost",
            "jane@exa mple.org",
        ] {
            let m = Email::from_json(&json!(bad)).unwrap_err();
            assert!(m.contains("is not an e-mail address"), "{bad}: {m}");
        }
        // URL: absolute http(s) with a host, normalised
        let u = Url::from_json(&json!("HTTPS://PKI.Example.edu")).unwrap();
        assert_eq!(u.as_str(), "https://pki.example.edu/");
        assert!(Url::from_json(&json!("http://10.1.2.3:8080/crl?x=1")).is_ok());
        for (bad, why) in [
            ("pki.example.edu/crl", "relative URL without a base"),
            ("javascript:alert(1)", "only http and https"),
            ("ftp://example.org/x", "only http and https"),
            ("https://", "empty host"),
        ] {
            let m = Url::from_json(&json!(bad)).unwrap_err();
            assert!(m.contains("is not a URL") && m.contains(why), "{bad}: {m}");
        }
        // DNS names: a host name, or a wildcard as the whole first label
        let w = DnsName::from_json(&json!("*.Lab.Example.edu.")).unwrap();
        assert_eq!(w.as_str(), "*.lab.example.edu");
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "lab.example.edu");
        let plain = DnsName::from_json(&json!("www.example.edu")).unwrap();
        assert!(!plain.is_wildcard());
        for bad in [
            "*",
            "*.",
            "a.*.example.edu",
            "*foo.example.edu",
            "**.example.edu",
            "-a.example.edu",
        ] {
            let m = DnsName::from_json(&json!(bad)).unwrap_err();
            assert!(m.contains("is not a DNS name"), "{bad}: {m}");
        }
        // a host name stays without wildcards
        assert!(Hostname::from_json(&json!("*.lab.example.edu")).is_err());
        // lists of subnets (CIDR lists) parse item by item
        let nets = Vec::<Subnet>::from_json(&json!(["10.0.0.0/8", "2001:db8::/32"])).unwrap();
        assert_eq!(nets.len(), 2);
        let m = Vec::<Subnet>::from_json(&json!(["10.0.0.0/8", "10.0.0.0/33"])).unwrap_err();
        assert!(m.starts_with("item 2: "), "{m}");
    }

    #[test]
    fn the_syntax_check_knows_the_new_types() {
        let def = |ty, list| FieldDef {
            ty,
            list,
            ..string_def(None, false)
        };
        assert!(problems(&def(FieldType::Email, false), json!("a@example.org")).is_empty());
        assert_eq!(
            problems(&def(FieldType::Email, false), json!("a@")).len(),
            1
        );
        assert!(problems(&def(FieldType::Url, false), json!("https://example.org")).is_empty());
        assert!(!problems(&def(FieldType::Url, false), json!("example.org")).is_empty());
        assert!(problems(&def(FieldType::Dnsname, false), json!("*.example.org")).is_empty());
        assert!(!problems(&def(FieldType::Dnsname, false), json!("a.*.example.org")).is_empty());
        let p = problems(
            &def(FieldType::Subnet, true),
            json!(["10.0.0.0/8", "10.0.0.0/33"]),
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "note[1]");
    }

    fn string_def(max_length: Option<u32>, multiline: bool) -> FieldDef {
        FieldDef {
            name: "note",
            description: "",
            ty: FieldType::String,
            required: false,
            list: false,
            values: &[],
            min: None,
            max: None,
            max_length,
            multiline,
            fields: &[],
        }
    }

    fn problems(def: &FieldDef, v: Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        check_value(def, def.name, &v, &mut out);
        out
    }

    #[test]
    fn strings_refuse_control_characters_and_overlong_text() {
        let line = string_def(None, false);
        assert!(problems(&line, json!("Workstation 3000 – ÄÖÜ")).is_empty());
        for (bad, code, pos) in [
            ("ab\u{0}c", "U+0000", 3),
            ("\u{1b}[2J", "U+001B", 1),
            ("a\r\nb", "U+000D", 2),
            ("a\nb", "U+000A", 2),
            ("a\tb", "U+0009", 2),
            ("a\u{7f}", "U+007F", 2),
            ("a\u{85}", "U+0085", 2),
        ] {
            let p = problems(&line, json!(bad));
            assert_eq!(p.len(), 1, "{bad:?}");
            let expected = format!("contains a control character ({code}) at position {pos}");
            assert!(p[0].1.starts_with(&expected), "{bad:?}: {}", p[0].1);
        }
        let long = "x".repeat(100 * 1024);
        let p = problems(&line, json!(long));
        assert_eq!(p[0].1, "is 102400 characters long; at most 255 are allowed");
        assert!(problems(&line, json!("x".repeat(255))).is_empty());
        // a field's own maximum, counted in characters
        let short = string_def(Some(3), false);
        assert!(problems(&short, json!("äöü")).is_empty());
        assert!(!problems(&short, json!("abcd")).is_empty());
        // multiline: LF and TAB, no other control character
        let text = string_def(None, true);
        assert!(problems(&text, json!("line 1\n\tline 2")).is_empty());
        assert!(!problems(&text, json!("a\r\nb")).is_empty());
        assert!(!problems(&text, json!("a\u{0}")).is_empty());
        // parsed types refuse them before parsing, without quoting the value
        let e = Hostname::from_json(&json!("a\u{0}b.example")).unwrap_err();
        assert!(
            e.starts_with("contains a control character (U+0000) at position 2"),
            "{e}"
        );
        let e = Hostname::from_json(&json!("a".repeat(5000))).unwrap_err();
        assert!(e.starts_with("is 5000 characters long"), "{e}");
        assert!(String::from_json(&json!("\u{0}")).is_err());
    }
}

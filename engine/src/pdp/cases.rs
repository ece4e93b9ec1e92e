//! Policy test cases written in XML next to the policies
//! (`definitions/tests/*.xml`), the way Cedar's `run-tests` works: each case
//! gives request attributes and the expected decision (and deciding policy
//! and rule). A deployment tests its own policies with `cargo test`.
//!
//! ```xml
//! <tests>
//!   <test name="an admin changes their own device">
//!     <attribute name="subject.person" value="1002"/>
//!     <attribute name="action.order_type" value="change_device"/>
//!     <attribute name="resource.admin" value="1002"/>
//!     <attribute name="resource.deputies" value="1003 1007"/>  <!-- a bag: space separated -->
//!     <expect decision="Permit" policy="change_or_delete" rule="admin_own_device"/>
//!   </test>
//! </tests>
//! ```
//! Values are written as text and read by the attribute's declared type:
//! booleans `true`/`false`, times RFC 3339 or `YYYY-MM-DD`, addresses and
//! subnets as usual. Attributes not given have no value.

use std::path::Path;

use serde::Deserialize;

use super::ast::PolicyNode;
use super::eval::{Decision, Indeterminate, decide};
use super::request::{AttributeDef, Request, Value, ValueType};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XTests {
    #[serde(rename = "test", default)]
    tests: Vec<XTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XTest {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "attribute", default)]
    attributes: Vec<XAttribute>,
    expect: XExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XAttribute {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@value")]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XExpect {
    #[serde(rename = "@decision")]
    decision: String,
    #[serde(rename = "@policy", default)]
    policy: Option<String>,
    #[serde(rename = "@rule", default)]
    rule: Option<String>,
}

fn parse_value(def: &AttributeDef, text: &str) -> Result<Value, String> {
    let one = |t: &str| -> Result<Value, String> {
        let bad = |what: &str| format!("`{t}` is not {what} (attribute `{}`)", def.name);
        Ok(match def.ty {
            ValueType::String => Value::String(t.to_owned()),
            ValueType::Integer => Value::Integer(t.parse().map_err(|_| bad("an integer"))?),
            ValueType::Boolean => Value::Boolean(t.parse().map_err(|_| bad("true or false"))?),
            ValueType::Ip => Value::Ip(t.parse().map_err(|_| bad("an IP address"))?),
            ValueType::Subnet => Value::Subnet(t.parse().map_err(|_| bad("a subnet"))?),
            ValueType::Time => {
                use time::format_description::well_known::Rfc3339;
                let date = time::macros::format_description!("[year]-[month]-[day]");
                let at = time::OffsetDateTime::parse(t, &Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .or_else(|_| {
                        time::Date::parse(t, &date)
                            .map(|d| d.midnight().assume_utc().unix_timestamp())
                    })
                    .map_err(|_| bad("a time (RFC 3339 or YYYY-MM-DD)"))?;
                Value::Time(at)
            }
        })
    };
    if def.multi {
        text.split_whitespace()
            .map(one)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Set)
    } else {
        one(text.trim())
    }
}

fn decision_name(d: Decision) -> String {
    match d {
        Decision::Permit => "Permit".into(),
        Decision::Deny => "Deny".into(),
        Decision::NotApplicable => "NotApplicable".into(),
        Decision::Indeterminate(Indeterminate::D) => "Indeterminate{D}".into(),
        Decision::Indeterminate(Indeterminate::P) => "Indeterminate{P}".into(),
        Decision::Indeterminate(Indeterminate::DP) => "Indeterminate{DP}".into(),
    }
}

/// The outcome of one file: how many cases ran, and one line per failure.
#[derive(Debug, Default)]
pub struct Outcome {
    pub cases: usize,
    pub failures: Vec<String>,
}

/// Runs the cases of one XML file against compiled policies.
pub fn run_file(
    path: &Path,
    attributes: &'static [AttributeDef],
    policies: &'static PolicyNode,
) -> Outcome {
    let file = path.display();
    let mut out = Outcome::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            out.failures.push(format!("{file}: cannot read: {e}"));
            return out;
        }
    };
    let tests: XTests = match quick_xml::de::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            out.failures.push(format!("{file}: not a test file: {e}"));
            return out;
        }
    };
    for test in tests.tests {
        out.cases += 1;
        let mut request = Request::new(attributes);
        let mut ok = true;
        for a in &test.attributes {
            let Some(def) = attributes.iter().find(|d| d.name == a.name) else {
                out.failures.push(format!(
                    "{file}: test `{}`: unknown attribute `{}`",
                    test.name, a.name
                ));
                ok = false;
                continue;
            };
            match parse_value(def, &a.value) {
                Ok(v) => {
                    request.set(def.id, v);
                }
                Err(e) => {
                    out.failures
                        .push(format!("{file}: test `{}`: {e}", test.name));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let response = decide(policies, &request);
        let got = decision_name(response.decision);
        let mut problems = Vec::new();
        if got != test.expect.decision {
            problems.push(format!("decision {got}, expected {}", test.expect.decision));
        }
        if let Some(p) = &test.expect.policy
            && response.explanation.policy != Some(p.as_str())
        {
            problems.push(format!(
                "decided by policy {:?}, expected `{p}`",
                response.explanation.policy
            ));
        }
        if let Some(r) = &test.expect.rule
            && response.explanation.rule != Some(r.as_str())
        {
            problems.push(format!(
                "decided by rule {:?}, expected `{r}`",
                response.explanation.rule
            ));
        }
        if !problems.is_empty() {
            out.failures.push(format!(
                "{file}: test `{}`: {} ({})",
                test.name,
                problems.join("; "),
                super::pep::summary(&response)
            ));
        }
    }
    out
}

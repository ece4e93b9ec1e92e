//! The validated, resolved model of a definitions folder. Serializable, so it
//! can be served as JSON (diagrams, documentation).

use serde::Serialize;

/// Everything in a definitions folder, validated and resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub workflow: Workflow,
    /// Actions in `actions.xml` order, then the built-in `null` if used.
    /// The index is the action's id.
    pub actions: Vec<Action>,
    /// Distinct checks in order of first appearance in `checks.xml`. The index
    /// is the check's id.
    pub checks: Vec<Check>,
    pub check_bindings: Vec<CheckBinding>,
    pub order_types: Vec<OrderType>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    /// The `<type>` of the workflow.
    pub name: String,
    pub description: String,
    /// Index of `INITIAL` in `states`.
    pub initial: u16,
    pub states: Vec<State>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    pub name: String,
    /// UpperCamelCase name of the generated enum variant.
    pub variant: String,
    pub description: String,
    pub autorun: bool,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub action: String,
    pub action_id: u16,
    pub description: String,
    pub condition: Option<Condition>,
    pub resulting_state: String,
    pub resulting_state_id: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// As written in the XML (several `<condition>`s joined with `and`).
    pub source: String,
    pub expr: CondExpr,
}

/// A parsed condition expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "op", content = "args")]
pub enum CondExpr {
    /// A named condition, e.g. `has_errors`.
    Ident(String),
    Not(Box<CondExpr>),
    And(Box<CondExpr>, Box<CondExpr>),
    Or(Box<CondExpr>, Box<CondExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Requester,
    Staff,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub name: String,
    pub variant: String,
    pub description: String,
    /// Rust path of the handler.
    pub handler: String,
    pub allowed: Vec<Actor>,
    /// The built-in `null` action (not declared in `actions.xml`).
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub variant: String,
    /// Rust path of the check function (`module::name`).
    pub handler: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckBinding {
    pub check: String,
    pub check_id: u16,
    /// `None` for a global check.
    pub field: Option<String>,
    /// Order types the binding applies to; empty means all.
    pub order_types: Vec<String>,
    pub portal: Severity,
    pub engine: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Hostname,
    Mac,
    Ipv4,
}

impl FieldType {
    pub const NAMES: [&'static str; 4] = ["string", "hostname", "mac", "ipv4"];

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "hostname" => Self::Hostname,
            "mac" => Self::Mac,
            "ipv4" => Self::Ipv4,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderType {
    pub name: String,
    /// UpperCamelCase name of the generated enum variant and field struct.
    pub variant: String,
    pub description: String,
    /// Name of the workflow (its `<type>`).
    pub workflow: String,
    pub key: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    pub description: String,
    pub ty: FieldType,
    pub required: bool,
}

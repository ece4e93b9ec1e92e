//! The validated, resolved model of a definitions folder. Serializable, so it
//! can be served as JSON (diagrams, documentation).

use serde::Serialize;

/// Everything in a definitions folder, validated and resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    /// The workflows of `workflow.xml`, in file order; order types name theirs.
    pub workflows: Vec<Workflow>,
    /// Actions in `actions.xml` order, then the built-in `null` if used.
    /// The index is the action's id.
    pub actions: Vec<Action>,
    /// Distinct checks in order of first appearance in `checks.xml`. The index
    /// is the check's id.
    pub checks: Vec<Check>,
    pub check_bindings: Vec<CheckBinding>,
    /// Named Rust conditions declared in `actions.xml`.
    pub conditions: Vec<NamedCondition>,
    pub order_types: Vec<OrderType>,
    /// Attributes of `attributes.xml` (empty when the file is absent).
    pub attributes: Vec<crate::policy::Attribute>,
    /// Policy sets and policies of `policies.xml` (validated, not yet evaluated).
    pub policies: Option<crate::policy::PolicyRoot>,
    /// Job queues of `queues.xml` (empty when the file is absent).
    pub queues: Vec<Queue>,
    /// Mail notifications of `notifications.xml` (`None` when the file is absent).
    pub notifications: Option<crate::notify::Notifications>,
    /// Descriptions in further languages (`<description lang="de">`), of
    /// every file, sorted by key and language.
    pub texts: Vec<Text>,
}

/// A description in a language other than the definitions' own (English).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Text {
    /// The path of the described element: `tag[name]` steps joined by `/`
    /// (`order[register_device]/field[host]`; a workflow is named by its
    /// `<type>`: `workflow[auftragssystem]/state[WAITING]`).
    pub key: String,
    /// An ISO 639-1 code.
    pub lang: String,
    pub text: String,
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
    /// An autorun state that may come to rest when no action applies.
    pub may_stop: bool,
    /// A final state: the order is closed.
    pub is_final: bool,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub action: String,
    pub action_id: u16,
    pub description: String,
    pub condition: Option<Condition>,
    /// The resulting state, or the `*` fallback of a resulting-state map.
    pub resulting_state: String,
    pub resulting_state_id: u16,
    /// Resulting-state map: the action's return value → state (without `*`).
    pub results: Vec<ResultMap>,
}

/// The state id that means "stay in the current state" (`NOCHANGE`).
pub const NOCHANGE: u16 = u16::MAX;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultMap {
    #[serde(rename = "return")]
    pub ret: String,
    pub state: String,
    /// [`NOCHANGE`] for `NOCHANGE`.
    pub state_id: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedCondition {
    pub name: String,
    pub description: String,
    /// Rust path of `fn(&CondCtx<'_>) -> bool`.
    pub handler: String,
    /// Where the XML names the handler (`file:line:col`).
    #[serde(skip)]
    pub at: String,
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
    /// The parts of the context the action uses (documentation).
    pub context: Vec<String>,
    /// The values the action may return (for resulting-state maps); empty: undeclared.
    pub returns: Vec<String>,
    /// The built-in `null` action (not declared in `actions.xml`).
    pub builtin: bool,
    /// Where the XML names the handler (`file:line:col`).
    #[serde(skip)]
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub variant: String,
    /// Rust path of the check function (`module::name`).
    pub handler: String,
    /// Where the XML first names the check (`file:line:col`).
    #[serde(skip)]
    pub at: String,
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
    /// Judges the field's syntax instead of the built-in type check.
    pub syntax: bool,
    /// `checks.xml:LINE:COL` of the binding's `<check>`, for build errors.
    #[serde(skip)]
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Hostname,
    Mac,
    Ipv4,
    Ipv6,
    Subnet,
    Building,
    Room,
    Enum,
    Bool,
    Person,
    Date,
    Datetime,
    Integer,
    Record,
    Email,
    Url,
    Dnsname,
}

impl FieldType {
    pub const NAMES: [&'static str; 18] = [
        "string", "hostname", "mac", "ipv4", "ipv6", "subnet", "building", "room", "enum", "bool",
        "person", "date", "datetime", "integer", "record", "email", "url", "dnsname",
    ];
    const ALL: [FieldType; 18] = [
        Self::String,
        Self::Hostname,
        Self::Mac,
        Self::Ipv4,
        Self::Ipv6,
        Self::Subnet,
        Self::Building,
        Self::Room,
        Self::Enum,
        Self::Bool,
        Self::Person,
        Self::Date,
        Self::Datetime,
        Self::Integer,
        Self::Record,
        Self::Email,
        Self::Url,
        Self::Dnsname,
    ];

    pub fn from_name(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// The position of the type in [`Self::NAMES`]: its bit in the field
    /// types a check declares (`#[check(field = "mac")]`).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// UpperCamelCase variant name in `auftrag_engine::defs::FieldType`.
    pub fn variant(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::Hostname => "Hostname",
            Self::Mac => "Mac",
            Self::Ipv4 => "Ipv4",
            Self::Ipv6 => "Ipv6",
            Self::Subnet => "Subnet",
            Self::Building => "Building",
            Self::Room => "Room",
            Self::Enum => "Enum",
            Self::Bool => "Bool",
            Self::Person => "Person",
            Self::Date => "Date",
            Self::Datetime => "Datetime",
            Self::Integer => "Integer",
            Self::Record => "Record",
            Self::Email => "Email",
            Self::Url => "Url",
            Self::Dnsname => "Dnsname",
        }
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
    /// Index of the workflow in [`Model::workflows`].
    pub workflow_id: u16,
    pub key: Option<String>,
    pub fields: Vec<Field>,
}

/// The longest text a `string` field takes without `max_length` (the engine's
/// `types::DEFAULT_MAX_LENGTH`).
pub const DEFAULT_MAX_LENGTH: u32 = 255;
/// The largest `max_length` a definition may set.
pub const MAX_MAX_LENGTH: u32 = 65_536;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    pub description: String,
    pub ty: FieldType,
    pub required: bool,
    /// A JSON array of values of the type.
    pub list: bool,
    /// The allowed values of an `enum`.
    pub values: Vec<String>,
    /// Bounds of an `integer`.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The longest text a `string` takes, in characters: `max_length`, or
    /// [`DEFAULT_MAX_LENGTH`]. `None` for other types.
    pub max_length: Option<u32>,
    /// A `string` that may hold line breaks (LF) and tabs.
    pub multiline: bool,
    /// The fields of a `record`.
    pub fields: Vec<Field>,
}

/// The kind of work a queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobType {
    Print,
    Compute,
}

impl JobType {
    pub const NAMES: [&'static str; 2] = ["PRINT", "COMPUTE"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "PRINT" => Some(Self::Print),
            "COMPUTE" => Some(Self::Compute),
            _ => None,
        }
    }
}

/// A job queue (`queues.xml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub name: String,
    pub description: String,
    pub job_type: JobType,
    pub lease_secs: u32,
    pub max_attempts: u32,
    pub retention_secs: u32,
}

//! Compiled definitions: the static tables that `auftrag-compiler` emits from
//! the XML in `definitions/` and that the engine runs.
//!
//! Everything here is plain data with `'static` lifetime, so the generated code
//! is a handful of `static` items and the engine stays free of generics: an
//! edit to a definition recompiles the small generated module and its
//! handlers, never the engine.

use futures::future::BoxFuture;
use serde::Serialize;

use crate::error::HandlerError;
use crate::workflow::context::{ActionCtx, CheckCtx, CondCtx};

/// Index of a state in [`WorkflowDef::states`].
pub type StateId = u16;
/// Index of an action in [`Definitions::actions`].
pub type ActionId = u16;
/// Index of a check in [`Definitions::checks`].
pub type CheckId = u16;

/// A Rust action handler, as bound in `actions.xml`.
pub type ActionFn =
    for<'a, 'b> fn(&'a mut ActionCtx<'b>) -> BoxFuture<'a, Result<(), HandlerError>>;
/// A Rust check function, as named in `checks.xml`.
pub type CheckFn = for<'a, 'b> fn(&'a mut CheckCtx<'b>) -> BoxFuture<'a, Result<(), HandlerError>>;
/// A compiled workflow condition.
pub type ConditionFn = fn(&CondCtx<'_>) -> bool;

/// All definitions of one deployment.
#[derive(Debug)]
pub struct Definitions {
    pub workflows: &'static [WorkflowDef],
    pub actions: &'static [ActionDef],
    pub checks: &'static [CheckDef],
    pub check_bindings: &'static [CheckBinding],
    pub order_types: &'static [OrderTypeDef],
    /// Job queues (`queues.xml`).
    pub queues: &'static [QueueDef],
    /// Mail notifications (`notifications.xml`; [`crate::notify::NotificationDefs::NONE`] without it).
    pub notifications: &'static crate::notify::NotificationDefs,
    /// Attributes and policies (`attributes.xml`, `policies.xml`), if any.
    pub authorization: Option<&'static crate::pdp::Authorization>,
    /// The whole compiled model as JSON (states, actions, transitions, checks,
    /// fields, conditions, attributes, policies, queues): what
    /// `GET /api/v1/definitions` serves.
    pub document: &'static str,
    /// The definitions' texts in further languages (`<description
    /// lang="de">`), sorted by key and language; see [`Definitions::text`].
    pub texts: &'static [Text],
}

/// A description in a language other than the definitions' own (English).
#[derive(Debug)]
pub struct Text {
    /// What it describes: the path of its element in the XML, each step
    /// `tag[name]` (a workflow is named by its `<type>`), joined by `/`:
    /// `order[register_device]`, `order[register_device]/field[interfaces]/field[hwa]`,
    /// `workflow[auftragssystem]/state[WAITING]`, `action[accept]`.
    pub key: &'static str,
    /// An ISO 639-1 code (`de`).
    pub lang: &'static str,
    pub text: &'static str,
}

/// One state machine (`workflow.xml`).
#[derive(Debug)]
pub struct WorkflowDef {
    pub name: &'static str,
    pub description: &'static str,
    pub initial: StateId,
    pub states: &'static [StateDef],
}

#[derive(Debug)]
pub struct StateDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Runs its first applicable action at once instead of waiting for a person.
    pub autorun: bool,
    /// An autorun state that may come to rest when none of its actions applies.
    pub may_stop: bool,
    /// A final state (`final="yes"`): an order that reaches it is closed.
    pub final_state: bool,
    /// Actions leaving this state, in definition order. Empty for a final state.
    pub transitions: &'static [TransitionDef],
}

#[derive(Debug)]
pub struct TransitionDef {
    pub action: ActionId,
    pub condition: Option<ConditionDef>,
    /// The resulting state; with a resulting-state map, its `*` fallback.
    /// [`NOCHANGE`] keeps the order where it is.
    pub resulting_state: StateId,
    /// Resulting-state map: the value the action returned (`ActionCtx::result`)
    /// → the state. Values not listed go to `resulting_state`.
    pub results: &'static [(&'static str, StateId)],
}

/// A resulting state that means "stay in the current state" (`NOCHANGE`).
pub const NOCHANGE: StateId = StateId::MAX;

impl TransitionDef {
    /// The state the order goes to after the action returned `result`.
    pub fn target(&self, result: Option<&str>) -> StateId {
        result
            .and_then(|r| self.results.iter().find(|(k, _)| *k == r))
            .map_or(self.resulting_state, |(_, s)| *s)
    }
}

pub struct ConditionDef {
    /// The condition as written in the XML, for diagrams and explanations.
    pub source: &'static str,
    pub eval: ConditionFn,
}

impl std::fmt::Debug for ConditionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConditionDef").field(&self.source).finish()
    }
}

/// Who may trigger an action through the API. Actions reached only by
/// autorun or by the engine itself allow nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The person who submitted the order.
    Requester,
    /// Staff: the people who work the orders (the staff table).
    Staff,
}

pub struct ActionDef {
    pub name: &'static str,
    pub description: &'static str,
    /// The Rust path named in `actions.xml`.
    pub handler_path: &'static str,
    pub handler: ActionFn,
    pub allowed: &'static [Actor],
}

impl std::fmt::Debug for ActionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionDef")
            .field("name", &self.name)
            .field("handler", &self.handler_path)
            .field("allowed", &self.allowed)
            .finish()
    }
}

pub struct CheckDef {
    pub name: &'static str,
    pub description: &'static str,
    pub handler_path: &'static str,
    pub handler: CheckFn,
}

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef")
            .field("name", &self.name)
            .field("handler", &self.handler_path)
            .finish()
    }
}

/// Where a check runs: the portal's pre-submit validation, or the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Portal,
    Engine,
}

impl Stage {
    /// The stage's name in `checks.xml` (`portal=`, `engine=`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Portal => "portal",
            Stage::Engine => "engine",
        }
    }
}

/// What a finding of a check means at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// The check does not run at this stage.
    Off,
}

/// One line of `checks.xml`: run `check` globally (`field: None`) or when
/// `field` is filled, with a severity per stage.
#[derive(Debug)]
pub struct CheckBinding {
    pub check: CheckId,
    pub field: Option<&'static str>,
    /// Order types this binding applies to; empty means all.
    pub order_types: &'static [&'static str],
    pub portal: Severity,
    pub engine: Severity,
    /// This check judges the field's syntax instead of the built-in type check.
    pub syntax: bool,
}

impl CheckBinding {
    pub fn severity(&self, stage: Stage) -> Severity {
        match stage {
            Stage::Portal => self.portal,
            Stage::Engine => self.engine,
        }
    }

    pub fn applies_to(&self, order_type: &str) -> bool {
        self.order_types.is_empty() || self.order_types.contains(&order_type)
    }
}

#[derive(Debug)]
pub struct OrderTypeDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Index into [`Definitions::workflows`].
    pub workflow: u16,
    /// The field that names the object the order is about (the thesis's
    /// `host_id`); it is indexed in the history.
    pub key_field: Option<&'static str>,
    pub fields: &'static [FieldDef],
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub description: &'static str,
    pub ty: FieldType,
    pub required: bool,
    /// A JSON array of values of the type.
    pub list: bool,
    /// The values of an `enum`.
    pub values: &'static [&'static str],
    /// Bounds of an `integer`.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The longest text a `string` takes, in characters (`max_length`;
    /// [`crate::workflow::types::DEFAULT_MAX_LENGTH`] when `None`).
    pub max_length: Option<u32>,
    /// A `string` that may hold line breaks (LF) and tabs (`multiline`).
    pub multiline: bool,
    /// The fields of a `record`.
    pub fields: &'static [FieldDef],
}

/// The value type of a field. Values arrive as JSON; the syntax of each type
/// is judged by the engine's built-in `syntax` check (see [`crate::workflow::types`]) or
/// a check `checks.xml` marks `syntax="yes"`, so a malformed value becomes a
/// recorded, explained error of the order instead of a lost request.
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
    /// An e-mail address (`name@example.org`).
    Email,
    /// An absolute `http` or `https` URL.
    Url,
    /// A DNS name that may be a wildcard (`*.lab.example.edu`).
    Dnsname,
}

impl Definitions {
    /// The description `key` (see [`Text::key`]) in `lang`, else `default`
    /// (the definitions' own text).
    pub fn text(&self, lang: &str, key: &str, default: &'static str) -> &'static str {
        self.texts
            .binary_search_by(|t| (t.key, t.lang).cmp(&(key, lang)))
            .map_or(default, |i| self.texts[i].text)
    }

    pub fn order_type(&self, name: &str) -> Option<&'static OrderTypeDef> {
        self.order_types.iter().find(|o| o.name == name)
    }

    pub fn action_id(&self, name: &str) -> Option<ActionId> {
        self.actions
            .iter()
            .position(|a| a.name == name)
            .map(|i| i as ActionId)
    }

    pub fn action(&self, id: ActionId) -> &'static ActionDef {
        &self.actions[usize::from(id)]
    }

    pub fn workflow_of(&self, order_type: &OrderTypeDef) -> &'static WorkflowDef {
        &self.workflows[usize::from(order_type.workflow)]
    }
}

impl WorkflowDef {
    pub fn state(&self, id: StateId) -> &'static StateDef {
        &self.states[usize::from(id)]
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.states
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as StateId)
    }
}

impl StateDef {
    pub fn is_final(&self) -> bool {
        self.final_state || self.transitions.is_empty()
    }
}

impl OrderTypeDef {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The kind of work a job queue carries (CRIMSy's `jobtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobType {
    /// Label and document printing on printers only reachable inside the network.
    Print,
    /// Heavy computation.
    Compute,
}

impl JobType {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Print => "PRINT",
            Self::Compute => "COMPUTE",
        }
    }
}

/// A job queue (`queues.xml`): jobs wait here until an agency leases them.
#[derive(Debug)]
pub struct QueueDef {
    pub name: &'static str,
    pub description: &'static str,
    pub job_type: JobType,
    /// How long an agency holds a job before it is handed out again, unless
    /// it sends a heartbeat.
    pub lease_secs: u32,
    /// Leases a job may take before it is FAILED.
    pub max_attempts: u32,
    /// How long finished jobs are kept.
    pub retention_secs: u32,
}

impl Definitions {
    pub fn queue(&self, name: &str) -> Option<&'static QueueDef> {
        self.queues.iter().find(|q| q.name == name)
    }
}

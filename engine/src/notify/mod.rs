//! E-mail notifications: defined in `notifications.xml`, written to an
//! outbox in the order's transaction, sent by a task of every `auftrag
//! serve` over SMTP.
//!
//! - [`NotificationDefs`] is what the compiler makes of the XML: rules
//!   (a state entered, optionally by one action or trigger, in a workflow
//!   or any) naming recipients and a template. Placeholders were checked at
//!   build time against the order types a template can meet.
//! - While the executor drives an order, every state it enters is an
//!   [`Event`] ([`record_event`]); the rules that match it are noted at once.
//!   Recipients that need the device database (the device's admin and
//!   deputies) are asked of the [`crate::Domain`] once per workflow run,
//!   right after a step, so that a domain can answer from what the checks
//!   remembered ([`crate::context::Memo`]) and before an action that deletes
//!   the device has run in a later step.
//! - [`rows_for`] turns the events into outbox rows, one per (event,
//!   recipient): the recipient as a reference (`person:KEY`, `staff`,
//!   `address:ADDR`), the template and a snapshot of the placeholder
//!   values; the sender derives the `Message-ID` from (order, history
//!   entry, recipient). They go
//!   with the order's final write (`store::Pending`), in the same round trip:
//!   no state change without its mails, no mail for a change rolled back.
//! - [`sender`] claims due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
//!   several instances share the work), resolves the address and language
//!   through the domain, renders the template and sends it with lettre. A
//!   claim is a lease: a sender that dies mid-send leaves the row to be sent
//!   again when the lease ends, with the same Message-ID. Temporary
//!   failures (4xx, no connection) are retried with backoff; permanent ones
//!   (5xx) are recorded with the server's answer.
//! - [`outbox`] holds the table's reads and writes (the order's
//!   notifications for `GET /api/v1/orders/{id}`, the backlog for
//!   `/healthz`).

pub mod outbox;
pub mod render;
pub mod sender;

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::Digest;

use crate::store::writes::Arg;
use crate::workflow::context::OrderData;
use crate::workflow::defs::Definitions;

/// The compiled `notifications.xml`.
#[derive(Debug)]
pub struct NotificationDefs {
    /// The language of recipients whose language nobody says.
    pub default_language: &'static str,
    pub templates: &'static [TemplateDef],
    pub rules: &'static [NotifyRuleDef],
}

impl NotificationDefs {
    /// No notifications (the file is absent).
    pub const NONE: NotificationDefs = NotificationDefs {
        default_language: "en",
        templates: &[],
        rules: &[],
    };

    pub fn template(&self, name: &str) -> Option<&'static TemplateDef> {
        self.templates.iter().find(|t| t.name == name)
    }
}

#[derive(Debug)]
pub struct TemplateDef {
    pub name: &'static str,
    pub texts: &'static [TemplateText],
}

impl TemplateDef {
    /// The text in `language`, else in `fallback`, else the first.
    pub fn text(&self, language: &str, fallback: &str) -> &'static TemplateText {
        self.texts
            .iter()
            .find(|t| t.language == language)
            .or_else(|| self.texts.iter().find(|t| t.language == fallback))
            .unwrap_or(&self.texts[0])
    }
}

#[derive(Debug)]
pub struct TemplateText {
    pub language: &'static str,
    pub subject: &'static str,
    pub body: &'static str,
}

/// Who made a step happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Requester,
    Staff,
    /// The engine itself (submission, autorun states).
    Engine,
}

#[derive(Debug)]
pub struct NotifyRuleDef {
    /// `None`: any workflow.
    pub workflow: Option<u16>,
    /// The state entered; `INSERTED` is the submission.
    pub state: Option<&'static str>,
    pub action: Option<&'static str>,
    pub by: Option<Trigger>,
    /// Empty: every order type.
    pub order_types: &'static [&'static str],
    /// Index into [`NotificationDefs::templates`].
    pub template: u16,
    pub recipients: &'static [RecipientDef],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientDef {
    Requester,
    /// The device's admin (asked of the domain).
    Admin,
    /// The device's deputies (asked of the domain).
    Deputies,
    /// The e-mail addresses in this order field.
    Notify(&'static str),
    /// The configured staff mailbox.
    Staff,
    /// The persons the arguments of this PDP obligation name.
    Obligation(&'static str),
}

/// The device's people, as a domain names them (person keys).
#[derive(Debug, Clone, Default)]
pub struct DevicePeople {
    pub admins: Vec<String>,
    pub deputies: Vec<String>,
}

/// A person's mailbox, as a domain knows it.
#[derive(Debug, Clone)]
pub struct PersonMail {
    pub address: String,
    /// A display name for the `To:` header.
    pub name: Option<String>,
    /// The person's language (`de`, `en`), if the domain knows it.
    pub language: Option<String>,
}

/// A state an order entered, with the rules it matches.
#[derive(Debug, Clone)]
pub struct Event {
    /// Index of the entry in the order's history (0: INSERTED).
    pub seq: usize,
    pub from: Option<&'static str>,
    pub to: String,
    pub action: Option<&'static str>,
    pub trigger: Trigger,
    pub comment: Option<String>,
    /// Indices into [`NotificationDefs::rules`].
    pub rules: Vec<usize>,
}

/// What a workflow run collects for its notifications (part of
/// `store::Pending`).
#[derive(Debug, Default)]
pub struct Collected {
    pub(crate) events: Vec<Event>,
    /// Obligations of the run's authorization decisions: (id, persons).
    pub(crate) obligations: Vec<(&'static str, Vec<String>)>,
    /// The device's people, once asked.
    pub(crate) people: Option<DevicePeople>,
}

impl Collected {
    /// Whether a matched rule names the device's admin or deputies and the
    /// domain has not been asked yet.
    pub(crate) fn needs_people(&self, defs: &Definitions) -> bool {
        self.people.is_none()
            && self.events.iter().flat_map(|e| &e.rules).any(|&r| {
                defs.notifications.rules[r]
                    .recipients
                    .iter()
                    .any(|x| matches!(x, RecipientDef::Admin | RecipientDef::Deputies))
            })
    }
}

/// Notes that `order` entered `to` (from `from`, by `action`, triggered by
/// `trigger`) with the rules that match; nothing when none do.
#[allow(clippy::too_many_arguments)] // the facts of one state change
pub(crate) fn record_event(
    defs: &'static Definitions,
    collected: &mut Collected,
    order: &OrderData,
    seq: usize,
    from: Option<&'static str>,
    to: &str,
    action: Option<&'static str>,
    trigger: Trigger,
    comment: Option<&str>,
) {
    let n = defs.notifications;
    if n.rules.is_empty() {
        return;
    }
    let workflow = order.order_type.workflow;
    let rules: Vec<usize> = n
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.workflow.is_none_or(|w| w == workflow)
                && r.state.is_none_or(|s| s == to)
                && r.action.is_none_or(|a| Some(a) == action)
                && r.by.is_none_or(|b| b == trigger)
                && (r.order_types.is_empty() || r.order_types.contains(&order.order_type.name))
        })
        .map(|(i, _)| i)
        .collect();
    if rules.is_empty() {
        return;
    }
    collected.events.push(Event {
        seq,
        from,
        to: to.to_owned(),
        action,
        trigger,
        comment: comment.map(str::to_owned),
        rules,
    });
}

/// A field value as a mail shows it.
pub fn show_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            items.iter().map(show_value).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// The placeholder values of an event (all but `link` and `recipient`,
/// which the sender fills in).
pub fn vars(order: &OrderData, state: &str, event: &Event) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert(
        "order.id".into(),
        order.id.map(|i| i.to_string()).unwrap_or_default(),
    );
    v.insert("order.type".into(), order.order_type.name.to_owned());
    v.insert("order.state".into(), state.to_owned());
    v.insert(
        "order.previous_state".into(),
        event.from.unwrap_or_default().to_owned(),
    );
    v.insert(
        "order.action".into(),
        event.action.unwrap_or_default().to_owned(),
    );
    v.insert("order.requester".into(), order.requester.clone());
    v.insert(
        "order.key".into(),
        order.key().unwrap_or_default().to_owned(),
    );
    v.insert(
        "order.comment".into(),
        event.comment.clone().unwrap_or_default(),
    );
    let mut all = String::new();
    for (name, value) in &order.fields {
        let shown = show_value(value);
        if !shown.is_empty() {
            all.push_str(&format!("  {name}: {shown}\n"));
        }
        v.insert(format!("fields.{name}"), shown);
    }
    v.insert("fields".into(), all.trim_end().to_owned());
    let changed = order
        .changes
        .iter()
        .map(|(f, [old, new])| format!("  {f}: {} -> {}", show_value(old), show_value(new)))
        .collect::<Vec<_>>()
        .join("\n");
    v.insert("changed".into(), changed);
    let findings = |list: &[crate::workflow::context::Finding]| {
        list.iter()
            .map(|f| match &f.field {
                Some(field) => format!("  {field}: {}", f.message),
                None => format!("  {}", f.message),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    v.insert("errors".into(), findings(&order.errors));
    v.insert("warnings".into(), findings(&order.warnings));
    v
}

/// A stable `Message-ID` for (order, history entry, recipient): a resend
/// after a crash carries the same one, so a receiver can drop the copy.
pub fn message_id(order_id: i64, seq: usize, recipient: &str, domain: &str) -> String {
    let digest = sha2::Sha256::digest(recipient.as_bytes());
    format!(
        "<auftrag.{order_id}.{seq}.{}@{domain}>",
        hex::encode(&digest[..8])
    )
}

/// The outbox rows of a workflow run: one per (event, recipient), the
/// recipients of one event deduplicated (a requester who is also the admin
/// gets one mail).
pub(crate) fn rows_for(
    defs: &'static Definitions,
    order: &OrderData,
    states: &[crate::store::history::StateEntry],
    collected: Collected,
    created_ms: i64,
) -> Vec<Vec<Arg>> {
    let Some(order_id) = order.id else {
        return Vec::new();
    };
    let n = defs.notifications;
    let people = collected.people.unwrap_or_default();
    let mut rows = Vec::new();
    for event in &collected.events {
        let state = states
            .get(event.seq)
            .map_or(event.to.as_str(), |s| s.state.as_str());
        let vars = serde_json::to_string(&vars(order, state, event)).unwrap_or_default();
        let transition = match (event.from, event.action) {
            (Some(from), Some(action)) => format!("{from} -> {} ({action})", event.to),
            (Some(from), None) => format!("{from} -> {}", event.to),
            _ => event.to.clone(),
        };
        let mut seen: Vec<String> = Vec::new();
        for &r in &event.rules {
            let rule = &n.rules[r];
            let template = n.templates[usize::from(rule.template)].name;
            let mut specs: Vec<String> = Vec::new();
            for recipient in rule.recipients {
                match recipient {
                    RecipientDef::Requester => specs.push(format!("person:{}", order.requester)),
                    RecipientDef::Admin => {
                        specs.extend(people.admins.iter().map(|p| format!("person:{p}")))
                    }
                    RecipientDef::Deputies => {
                        specs.extend(people.deputies.iter().map(|p| format!("person:{p}")))
                    }
                    RecipientDef::Staff => specs.push("staff".into()),
                    RecipientDef::Notify(field) => {
                        let values = match order.fields.get(*field) {
                            Some(serde_json::Value::Array(a)) => a.clone(),
                            Some(v) => vec![v.clone()],
                            None => Vec::new(),
                        };
                        specs.extend(
                            values
                                .iter()
                                .filter_map(|v| v.as_str())
                                .map(str::trim)
                                // only addresses: a malformed value (a NUL,
                                // a 100 KB text) is the order's syntax
                                // error, never a recipient
                                .filter(|s| s.len() <= 254 && s.parse::<lettre::Address>().is_ok())
                                .map(|s| format!("address:{s}")),
                        );
                    }
                    RecipientDef::Obligation(name) => specs.extend(
                        collected
                            .obligations
                            .iter()
                            .filter(|(id, _)| id == name)
                            .flat_map(|(_, persons)| persons.iter().map(|p| format!("person:{p}"))),
                    ),
                }
            }
            for spec in specs {
                if seen.contains(&spec) {
                    continue;
                }
                seen.push(spec.clone());
                rows.push(vec![
                    Arg::Int(order_id),
                    Arg::Int(event.seq as i64),
                    transition.clone().into(),
                    template.into(),
                    spec.into(),
                    vars.clone().into(),
                    "PENDING".into(),
                    Arg::Int(created_ms),
                    Arg::Int(created_ms),
                ]);
            }
        }
    }
    rows
}

/// The columns [`rows_for`] fills, for the insert.
pub(crate) const OUTBOX_INSERT: &str = "auftrag_outbox (order_id, seq, transition, template, \
     recipient, vars, status, next_ms, created_ms)";

/// Woken when a transaction with mails committed: the senders of this
/// process look at once instead of at their next poll.
pub(crate) static NEW_MAIL: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

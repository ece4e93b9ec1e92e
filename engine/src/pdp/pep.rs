//! The policy enforcement point: the order engine asks the compiled policies
//! whether the requester may place an order, and keeps the answer with its
//! explanation in the order's history.

use serde::Serialize;
use sqlx::AnyConnection;

use super::ast::PolicyNode;
use super::eval::{Decision, Response, decide};
use super::pip::{PipCtx, Source, resolve};
use super::request::AttributeDef;
use crate::error::HandlerError;
use crate::workflow::context::{CheckCtx, OrderData};

/// A deployment's compiled authorization: attributes, where their values
/// come from, and the root of the policies (`attributes.xml`, `policies.xml`).
pub struct Authorization {
    pub attributes: &'static [AttributeDef],
    /// One per attribute, same order.
    pub sources: &'static [Source],
    pub policies: &'static PolicyNode,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("attributes", &self.attributes.len())
            .field("policies", &self.policies)
            .finish()
    }
}

/// A decision as the history keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded<'a> {
    /// `PERS_KEY` of the person asking.
    pub subject: &'a str,
    pub order_type: &'a str,
    #[serde(flatten)]
    pub response: &'a Response,
}

/// Resolves the attributes (each resolver once) and decides whether
/// `subject` may place `order`.
pub async fn decide_order(
    conn: &mut AnyConnection,
    auth: &'static Authorization,
    order: &OrderData,
    subject: &str,
) -> Response {
    decide_action(conn, auth, order, subject, order.order_type.name).await
}

/// Decides whether `subject` may do `action` ([`super::pip::READ_ORDER`],
/// [`super::pip::STAFF_ACTION`], or an order type) on `order`.
pub async fn decide_action(
    conn: &mut AnyConnection,
    auth: &'static Authorization,
    order: &OrderData,
    subject: &str,
    action: &str,
) -> Response {
    decide_with(&mut PipCtx::new(conn, order, subject), auth, action).await
}

/// Whether `person` may read `order`: the `read_order` policy decides when
/// the domain has policies, else the requester and staff may.
pub async fn may_read(
    conn: &mut AnyConnection,
    defs: &'static crate::workflow::defs::Definitions,
    order: &OrderData,
    person: &str,
) -> Result<bool, crate::error::EngineError> {
    Ok(match defs.authorization {
        Some(auth) => {
            decide_action(conn, auth, order, person, super::READ_ORDER)
                .await
                .decision
                == Decision::Permit
        }
        None => order.requester == person || crate::store::is_staff(conn, person).await?,
    })
}

/// Decides whether `ctx.subject` may do `action` on `ctx.order`, resolving
/// the attributes in `ctx` (its memo and stage: see [`PipCtx`]).
pub async fn decide_with(
    ctx: &mut PipCtx<'_>,
    auth: &'static Authorization,
    action: &str,
) -> Response {
    decide_keeping(ctx, auth, action).await.0
}

/// [`decide_with`], and the values of the attributes marked `recorded`
/// (see [`super::pip::recorded_facts`]).
async fn decide_keeping(
    ctx: &mut PipCtx<'_>,
    auth: &'static Authorization,
    action: &str,
) -> (Response, crate::workflow::context::Fields) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let request = resolve(ctx, auth.attributes, auth.sources, action, now).await;
    let response = decide(auth.policies, &request);
    let decision = match response.decision {
        Decision::Permit => "Permit",
        Decision::Deny => "Deny",
        Decision::NotApplicable => "NotApplicable",
        Decision::Indeterminate(_) => "Indeterminate",
    };
    metrics::counter!(
        "auftrag_decisions_total",
        "policy" => response.explanation.policy.unwrap_or(""),
        "rule" => response.explanation.rule.unwrap_or(""),
        "decision" => decision
    )
    .increment(1);
    let facts = super::pip::recorded_facts(&request);
    (response, facts)
}

/// One line for a person: the decision and why.
pub fn summary(response: &Response) -> String {
    summary_with(response, |_| true)
}

/// Whether an attribute's value may be shown to the person a decision is
/// about: their own facts (`subject.…`) and what they asked (`action.…`);
/// the resource's (a device's admin, deputies, org) are for staff.
fn own_fact(name: &str) -> bool {
    name.starts_with("subject.") || name.starts_with("action.")
}

/// [`summary`] for the person the decision is about: the resource's
/// attribute values are named but not shown (they stay in the decision
/// log, which staff read).
pub fn summary_for_subject(response: &Response) -> String {
    summary_with(response, own_fact)
}

/// Removes from a recorded decision (as [`decisions_of`] reads it) the
/// values of attributes that are not the subject's own facts, for readers
/// who are not staff.
///
/// [`decisions_of`]: crate::store::decisions_of
pub fn redact_for_requester(decision: &mut serde_json::Value) {
    if let Some(attributes) = decision
        .pointer_mut("/explanation/attributes")
        .and_then(|a| a.as_array_mut())
    {
        for pair in attributes.iter_mut() {
            let shown = pair.get(0).and_then(|n| n.as_str()).is_some_and(own_fact);
            if !shown && let Some(value) = pair.get_mut(1) {
                *value = serde_json::Value::String("(not shown)".into());
            }
        }
    }
}

fn summary_with(response: &Response, show: impl Fn(&str) -> bool) -> String {
    let e = &response.explanation;
    let by = match (e.policy, e.rule) {
        (Some(p), Some(r)) => format!("policy `{p}`, rule `{r}`"),
        (Some(p), None) => format!("policy `{p}`"),
        _ => "no rule applies".to_owned(),
    };
    let values = e
        .attributes
        .iter()
        .map(|(name, v)| match v {
            Some(_) if !show(name) => format!("{name} = (not shown)"),
            Some(v) => format!("{name} = {}", serde_json::to_string(v).unwrap_or_default()),
            None => format!("{name} = (none)"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let error = e
        .error
        .as_ref()
        .map(|err| format!("; {err}"))
        .unwrap_or_default();
    let decision = match response.decision {
        Decision::Permit => "Permit".to_owned(),
        Decision::Deny => "Deny".to_owned(),
        Decision::NotApplicable => "NotApplicable".to_owned(),
        Decision::Indeterminate(i) => format!("Indeterminate{{{i:?}}}"),
    };
    format!("{decision} by {by} ({values}){error}")
}

/// The built-in check `authorization` ([`crate::builtin::authorization`]): the requester
/// must be permitted by the policies. Anything but Permit is reported (an
/// error or a warning, as `checks.xml` says) with the explanation. At the
/// engine stage the decision is appended to the order's decision log when
/// the order's row is written, in the order's transaction, and the values
/// of the attributes marked `recorded` become the order's
/// [`OrderData::facts`]: what it was about when it was decided.
pub async fn authorize(
    ctx: &mut CheckCtx<'_>,
    auth: &'static Authorization,
) -> Result<(), HandlerError> {
    let subject = ctx.order.requester.clone();
    let mut pip = PipCtx::new(ctx.conn, ctx.order, &subject);
    pip.stage = Some(ctx.stage);
    pip.memo = std::mem::take(&mut ctx.memo);
    let (response, facts) = decide_keeping(&mut pip, auth, ctx.order.order_type.name).await;
    ctx.memo = pip.memo;
    if ctx.order.id.is_some() {
        ctx.facts = Some(facts);
        let recorded = Recorded {
            subject: &subject,
            order_type: ctx.order.order_type.name,
            response: &response,
        };
        let json = serde_json::to_string(&recorded)
            .map_err(|e| HandlerError::Failed(format!("encoding decision: {e}")))?;
        ctx.decisions.push((crate::store::history::now(), json));
        for o in &response.obligations {
            let persons: Vec<String> = response
                .arguments
                .iter()
                .filter(|(id, _, _)| *id == o.id)
                .filter_map(|(_, _, v)| v.as_ref())
                .flat_map(person_keys)
                .collect();
            ctx.obligations.push((o.id, persons));
        }
    }
    if response.decision != Decision::Permit {
        ctx.report(format!(
            "person {subject} may not place a `{}` order: {}",
            ctx.order.order_type.name,
            summary_for_subject(&response)
        ));
    }
    Ok(())
}

/// The person keys an obligation argument's value names (a text, a number
/// or a set of them).
fn person_keys(v: &super::request::Value) -> Vec<String> {
    use super::request::Value;
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Integer(i) => vec![i.to_string()],
        Value::Set(items) => items.iter().flat_map(person_keys).collect(),
        _ => Vec::new(),
    }
}

/// Resolves an `action` as given by a person: an order type name, or the
/// one order type it is the start of (`change` → `change_device`).
pub fn order_type_for(
    defs: &'static crate::workflow::defs::Definitions,
    action: &str,
) -> Result<&'static crate::workflow::defs::OrderTypeDef, crate::error::EngineError> {
    if let Some(t) = defs.order_type(action) {
        return Ok(t);
    }
    let matches: Vec<_> = defs
        .order_types
        .iter()
        .filter(|t| t.name.starts_with(action))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        _ => Err(crate::error::EngineError::UnknownOrderType(
            action.to_owned(),
        )),
    }
}

/// Explains whether `person` may place an order of type `action` about
/// `key` (the order type's key field, e.g. the host), without placing it.
pub async fn explain(
    engine: &crate::http::server::Engine,
    person: &str,
    action: &str,
    key: Option<&str>,
) -> Result<Response, crate::error::EngineError> {
    let defs = engine.defs;
    let auth = defs.authorization.ok_or_else(|| {
        crate::error::EngineError::Conflict("these definitions have no policies.xml".into())
    })?;
    crate::store::search_text("person", person)?;
    if let Some(k) = key {
        crate::store::search_text("host", k)?;
    }
    let order_type = order_type_for(defs, action)?;
    let mut fields = crate::workflow::context::Fields::new();
    if let (Some(k), Some(field)) = (key, order_type.key_field) {
        fields.insert(field.to_owned(), serde_json::Value::String(k.to_owned()));
    }
    let order = OrderData {
        id: None,
        order_type,
        requester: person.to_owned(),
        fields,
        errors: Vec::new(),
        warnings: Vec::new(),
        accepted: Vec::new(),
        changes: Default::default(),
        facts: None,
    };
    let mut conn = engine.store.pool.acquire().await?;
    Ok(decide_order(&mut conn, auth, &order, person).await)
}

//! The policy information point: resolvers that read attribute values, named
//! as `source` in `attributes.xml`. The policy enforcement point calls every
//! resolver the policies can need once per decision, then decides on the
//! resolved values without further I/O.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::request::{AttrId, AttributeDef, Request, Value};
use crate::error::HandlerError;
use crate::workflow::context::{Memo, OrderData};

/// A resolver: the value of one attribute for the current request (`None`:
/// it has none).
pub type ResolverFn =
    for<'a, 'b> fn(&'a mut PipCtx<'b>) -> BoxFuture<'a, Result<Option<Value>, HandlerError>>;

/// The action of a request to read an order and its history.
pub const READ_ORDER: &str = "read_order";
/// The action of a request to accept, edit or reject a waiting order.
pub const STAFF_ACTION: &str = "staff_action";
/// The action of a request to roll an order back
/// (`POST /api/v1/orders/{id}/rollback`).
pub const ROLLBACK_ORDER: &str = "rollback_order";

/// How an attribute gets its value.
pub enum Source {
    /// The person asking (the request's subject).
    Subject,
    /// The action asked for: the order type when an order is placed,
    /// [`READ_ORDER`] when one is read, [`STAFF_ACTION`] for staff actions,
    /// [`ROLLBACK_ORDER`] for a rollback.
    Action,
    /// The time of the decision.
    Now,
    /// A field of the order.
    Field(&'static str),
    /// The names of the order's filled fields (a bag of strings): what the
    /// order sets.
    Fields,
    /// The person who placed the order (`source="requester"`).
    Requester,
    /// The order's type (`source="order_type"`), whatever is asked of it.
    OrderType,
    /// A Rust resolver (`source` in `attributes.xml`).
    Resolver(ResolverFn),
}

/// What resolvers see.
pub struct PipCtx<'a> {
    pub conn: &'a mut AnyConnection,
    pub order: &'a OrderData,
    /// `PERS_KEY` of the person asking.
    pub subject: &'a str,
    /// Values several resolvers derive from (e.g. the device the order is
    /// about), shared with the checks of the same transaction when the
    /// decision is part of a check run (see [`Memo`]).
    pub memo: Memo,
    /// The stage of the check run the decision is part of; `None` for
    /// decisions outside one (reading an order, staff actions, explain). At
    /// the engine stage the resolvers read inside the order's write
    /// transaction and may lock what the order is about.
    pub stage: Option<crate::workflow::defs::Stage>,
}

impl<'a> PipCtx<'a> {
    pub fn new(conn: &'a mut AnyConnection, order: &'a OrderData, subject: &'a str) -> Self {
        Self {
            conn,
            order,
            subject,
            memo: Memo::default(),
            stage: None,
        }
    }

    /// What was kept of the stored order's decision (attribute name →
    /// value, see [`OrderData::facts`]) when this decision is about a stored
    /// order outside a check run (reading it, staff actions); `None` when the
    /// order is being decided (its facts are resolved anew) or nothing was
    /// kept. Resolvers of attributes that are not kept read the kept facts
    /// they build on here (e.g. the device the order was about).
    pub fn recorded(&self) -> Option<&crate::workflow::context::Fields> {
        if self.stage.is_none() && self.order.id.is_some() {
            self.order.facts.as_ref()
        } else {
            None
        }
    }
}

/// Resolves every attribute for a decision on `ctx.order` asked by
/// `ctx.subject`: each source is asked once. A failing resolver makes its
/// attribute an error value (the policies reading it become
/// Indeterminate), not a failed request.
pub async fn resolve(
    ctx: &mut PipCtx<'_>,
    attributes: &'static [AttributeDef],
    sources: &'static [Source],
    action: &str,
    now: i64,
) -> Request {
    resolve_some(ctx, attributes, sources, action, now, |_, _| true).await
}

/// Whether an attribute's value depends on the order asked about: its
/// resource attributes, and the sources that read the order (its fields,
/// requester, type). The others — the subject's resolvers, the action, the
/// time — depend on who asks, what and when only; that is the contract of
/// a resolver of a `subject`, `action` or `environment` attribute.
pub fn depends_on_order(def: &AttributeDef, source: &Source) -> bool {
    def.category == super::Category::Resource
        || matches!(
            source,
            Source::Field(_) | Source::Fields | Source::Requester | Source::OrderType
        )
}

/// [`resolve`], asking only the sources of the attributes `wanted` keeps;
/// the others have no value.
pub async fn resolve_some(
    ctx: &mut PipCtx<'_>,
    attributes: &'static [AttributeDef],
    sources: &'static [Source],
    action: &str,
    now: i64,
    wanted: impl Fn(&AttributeDef, &Source) -> bool,
) -> Request {
    let mut request = Request::new(attributes);
    for (i, source) in sources.iter().enumerate() {
        let id = i as AttrId;
        let def = &attributes[i];
        if !wanted(def, source) {
            continue;
        }
        if def.recorded
            && let Some(facts) = ctx.recorded()
        {
            // the value kept with the order; none kept: none
            if let Some(v) = facts
                .get(def.name)
                .and_then(|v| Value::from_json(def.ty, def.multi, v))
            {
                request.set(id, v);
            }
            continue;
        }
        let value = match source {
            Source::Subject => Ok(Some(Value::String(ctx.subject.to_owned()))),
            Source::Action => Ok(Some(Value::String(action.to_owned()))),
            Source::Now => Ok(Some(Value::Time(now))),
            Source::Field(f) => Ok(ctx.order.text(f).map(|v| Value::String(v.to_owned()))),
            Source::Fields => Ok(Some(Value::Set(
                ctx.order
                    .order_type
                    .fields
                    .iter()
                    .filter(|f| ctx.order.is_filled(f.name))
                    .map(|f| Value::String(f.name.to_owned()))
                    .collect(),
            ))),
            Source::Requester => Ok(Some(Value::String(ctx.order.requester.clone()))),
            Source::OrderType => Ok(Some(Value::String(ctx.order.order_type.name.to_owned()))),
            Source::Resolver(f) => f(ctx).await,
        };
        match value {
            Ok(Some(v)) => {
                request.set(id, v);
            }
            Ok(None) => {}
            Err(e) => {
                request.set_error(id, e.to_string());
            }
        }
    }
    request
}

/// The values of the attributes marked `recorded` in a resolved request, as
/// kept with the order (attribute name → JSON; attributes without a value,
/// or whose resolver failed, are left out).
pub fn recorded_facts(request: &Request) -> crate::workflow::context::Fields {
    request
        .attributes
        .iter()
        .filter(|a| a.recorded)
        .filter_map(|a| match &request.values[usize::from(a.id)] {
            Some(Ok(v)) => serde_json::to_value(v)
                .ok()
                .map(|json| (a.name.to_owned(), json)),
            _ => None,
        })
        .collect()
}

//! Actions every workflow can bind in `actions.xml`
//! (`auftrag_engine::builtin::…`), and the built-in check `authorization`
//! that `checks.xml` binds by name. Domain actions such as executing an
//! order live with the domain.

use crate::error::HandlerError;
use crate::workflow::checks::run_checks;
use crate::workflow::context::{ActionCtx, CheckCtx, Finding};
use crate::workflow::defs::{Actor, Stage};

/// The Perl Workflow `null` action: does nothing; used where a state only
/// decides where to go next.
pub async fn null(_ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    Ok(())
}

/// Runs the engine-stage checks and stores their errors and warnings in the
/// context, replacing those of an earlier run. Accepted warnings are not
/// raised again.
pub async fn check_request(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let mut report = run_checks(ctx.conn, ctx.defs, ctx.order, Stage::Engine, ctx.memo).await?;
    ctx.pending.decisions.append(&mut report.decisions);
    if let Some(facts) = report.facts.take() {
        ctx.order.facts = Some(facts);
    }
    ctx.pending
        .notify
        .obligations
        .append(&mut report.obligations);
    ctx.order.errors = report.errors;
    ctx.order.warnings = report.warnings;
    Ok(())
}

fn summary(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| match &f.field {
            Some(field) => format!("{field}: {}", f.message),
            None => f.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Records the errors as the comment of the resulting state (ABORTED), the
/// reason the requester is told.
pub async fn handle_err(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    ctx.comment = Some(summary(&ctx.order.errors));
    Ok(())
}

/// Records the warnings as the comment of the resulting state (WAITING): why
/// a person has to look at the order.
pub async fn handle_warn(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    ctx.comment = Some(summary(&ctx.order.warnings));
    Ok(())
}

fn who(ctx: &ActionCtx<'_>) -> String {
    match ctx.actor {
        Some(p) => format!("{} {}", ctx.role.map_or("", role_name), p.person)
            .trim()
            .to_owned(),
        None => "the engine".to_owned(),
    }
}

fn role_name(role: Actor) -> &'static str {
    match role {
        Actor::Requester => "requester",
        Actor::Staff => "staff",
    }
}

fn with_comment(ctx: &ActionCtx<'_>, what: String) -> String {
    match ctx
        .input
        .comment
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        Some(c) => format!("{what}: {c}"),
        None => what,
    }
}

/// Stops the order: withdrawn by its requester or rejected by staff.
pub async fn abort(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let what = match ctx.role {
        Some(Actor::Requester) => format!("withdrawn by {}", who(ctx)),
        _ => format!("rejected by {}", who(ctx)),
    };
    ctx.comment = Some(with_comment(ctx, what));
    Ok(())
}

/// Staff accept the current warnings; the following check does not raise
/// them again.
pub async fn accept(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let accepted = std::mem::take(&mut ctx.order.warnings);
    let what = format!("warnings accepted by {}: {}", who(ctx), summary(&accepted));
    ctx.order.accepted.extend(accepted);
    ctx.comment = Some(with_comment(ctx, what));
    Ok(())
}

/// Staff change field values (validated by the caller); the order is checked again.
pub async fn change_field(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let Some(fields) = &ctx.input.fields else {
        return Err(HandlerError::Failed(
            "change_field needs new field values".into(),
        ));
    };
    let mut changed = Vec::new();
    for (name, value) in fields {
        let old = ctx.order.fields.insert(name.clone(), value.clone());
        if old.as_ref() != Some(value) {
            changed.push(format!(
                "{name} {} → {}",
                old.map_or("(empty)".to_owned(), |v| v.to_string()),
                value
            ));
        }
    }
    // what the checks and resolvers derived from the old fields is stale
    ctx.memo.clear();
    let what = format!("fields changed by {}: {}", who(ctx), changed.join(", "));
    ctx.comment = Some(with_comment(ctx, what));
    Ok(())
}

/// The built-in check `authorization` (`<global><check>authorization</check></global>`
/// in `checks.xml`; the build requires `policies.xml` for it): the requester
/// may place the order, as the compiled policies decide
/// ([`crate::pdp::authorize`]). The decision and its explanation go into
/// the order's history; a refusal names the deciding policy and the
/// attribute values it read.
pub async fn authorization(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(auth) = ctx.authorization else {
        return Err(HandlerError::Failed(
            "the built-in check `authorization` needs policies.xml in the definitions".into(),
        ));
    };
    crate::pdp::authorize(ctx, auth).await
}

/// Registers the built-in check as `#[check]` does: a global check (it
/// judges no field).
#[doc(hidden)]
#[allow(non_camel_case_types, dead_code)]
pub struct authorization {}

impl authorization {
    #[doc(hidden)]
    pub const AUFTRAG_HANDLER: u8 = 1;
    #[doc(hidden)]
    pub const AUFTRAG_FIELDS: u32 = 0;

    /// The check's future, boxed, for the generated tables (as `#[check]`
    /// makes it: the future's code is compiled here, not with the tables).
    #[doc(hidden)]
    #[inline(never)]
    pub fn auftrag_boxed<'a>(
        ctx: &'a mut CheckCtx<'_>,
    ) -> crate::BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(authorization(ctx))
    }
}

/// Registers the built-in actions for the definitions, as `#[action]` of
/// `auftrag-macros` does for domain handlers.
macro_rules! registered_actions {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code)]
            pub struct $name {}

            impl $name {
                #[doc(hidden)]
                pub const AUFTRAG_HANDLER: u8 = 2;

                /// The action's future, boxed, for the generated tables.
                #[doc(hidden)]
                #[inline(never)]
                pub fn auftrag_boxed<'a>(
                    ctx: &'a mut ActionCtx<'_>,
                ) -> crate::BoxFuture<'a, Result<(), HandlerError>> {
                    Box::pin($name(ctx))
                }
            }
        )*
    };
}

registered_actions!(
    null,
    check_request,
    handle_err,
    handle_warn,
    abort,
    accept,
    change_field
);

//! The check runner: decides which checks of `checks.xml` apply to an order
//! (global ones always, field ones when the field is filled), runs them and
//! sorts their findings into errors and warnings by the severity of the stage.

use sqlx::AnyConnection;

use crate::error::HandlerError;
use crate::workflow::context::{CheckCtx, Finding, OrderData};
use crate::workflow::defs::{Definitions, Severity, Stage};

/// Errors and warnings of one check run.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Authorization decisions taken by the checks, for the order's log.
    #[serde(skip)]
    pub(crate) decisions: Vec<crate::store::PendingDecision>,
    /// The order's facts as an authorization check found them.
    #[serde(skip)]
    pub(crate) facts: Option<crate::workflow::context::Fields>,
    /// The persons the decisions' obligations name, for the notifications.
    #[serde(skip)]
    pub(crate) obligations: Vec<(&'static str, Vec<String>)>,
}

/// The names of the checks that apply to `order` at `stage`, in run order
/// (thesis Listing 4.5, `determine_checks`).
pub fn determine_checks(defs: &Definitions, order: &OrderData, stage: Stage) -> Vec<&'static str> {
    applicable(defs, order, stage)
        .map(|b| defs.checks[usize::from(b.check)].name)
        .collect()
}

fn applicable<'d>(
    defs: &'d Definitions,
    order: &'d OrderData,
    stage: Stage,
) -> impl Iterator<Item = &'d crate::workflow::defs::CheckBinding> {
    defs.check_bindings.iter().filter(move |b| {
        b.applies_to(order.order_type.name)
            && b.severity(stage) != Severity::Off
            && b.field.is_none_or(|f| order.is_filled(f))
    })
}

/// The name under which the built-in type check reports.
pub const SYNTAX_CHECK: &str = "syntax";

/// Runs every applicable check. First the syntax of every filled field: the
/// built-in `syntax` check parses it with its type (see [`crate::workflow::types`]),
/// unless `checks.xml` binds a check marked `syntax="yes"` to the field,
/// which judges it instead. The other checks of a field whose syntax is wrong
/// do not run, so a check only ever sees values of its field's type.
/// Warnings the order's staff already accepted are left out at the engine
/// stage; errors are never left out.
pub async fn run_checks(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    order: &OrderData,
    stage: Stage,
    memo: &mut crate::workflow::context::Memo,
) -> Result<CheckReport, HandlerError> {
    let mut report = CheckReport::default();
    let mut broken: Vec<&'static str> = Vec::new();
    let bindings: Vec<&crate::workflow::defs::CheckBinding> =
        applicable(defs, order, stage).collect();
    for def in order.order_type.fields {
        if !order.is_filled(def.name) {
            continue;
        }
        let judged_by_check = bindings
            .iter()
            .any(|b| b.syntax && b.field == Some(def.name));
        let mut problems = Vec::new();
        if let Some(v) = order.fields.get(def.name) {
            if judged_by_check {
                // the check judges the syntax; no field holds control
                // characters or overlong text all the same
                crate::workflow::types::check_characters(def, def.name, v, &mut problems);
            } else {
                crate::workflow::types::check_value(def, def.name, v, &mut problems);
            }
        }
        if !problems.is_empty() {
            broken.push(def.name);
        }
        for (field, message) in problems {
            report.errors.push(Finding {
                check: SYNTAX_CHECK.to_owned(),
                field: Some(field),
                message,
            });
        }
    }
    let (syntax, others): (Vec<_>, Vec<_>) = bindings.into_iter().partition(|b| b.syntax);
    for binding in syntax {
        if binding.field.is_some_and(|f| broken.contains(&f)) {
            continue;
        }
        run_binding(
            conn,
            defs,
            order,
            binding,
            stage,
            memo,
            &mut report,
            &mut broken,
        )
        .await?;
    }
    // The other checks, global ones too, see only fields whose syntax is
    // valid: a malformed value (a NUL, a 100 KB text) never reaches a
    // check, a policy resolver or the database.
    let valid;
    let order = if broken.is_empty() {
        order
    } else {
        let mut o = order.clone();
        o.fields.retain(|name, _| !broken.contains(&name.as_str()));
        valid = o;
        &valid
    };
    for binding in others {
        if binding.field.is_some_and(|f| broken.contains(&f)) {
            continue;
        }
        run_binding(
            conn,
            defs,
            order,
            binding,
            stage,
            memo,
            &mut report,
            &mut broken,
        )
        .await?;
    }
    for (severity, findings) in [("error", &report.errors), ("warning", &report.warnings)] {
        for f in findings {
            metrics::counter!(
                "auftrag_check_findings_total",
                "check" => f.check.clone(),
                "severity" => severity,
                "stage" => stage.name()
            )
            .increment(1);
        }
    }
    Ok(report)
}

/// Runs the check of one binding and sorts its findings.
#[allow(clippy::too_many_arguments)]
async fn run_binding(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    order: &OrderData,
    binding: &crate::workflow::defs::CheckBinding,
    stage: Stage,
    memo: &mut crate::workflow::context::Memo,
    report: &mut CheckReport,
    broken: &mut Vec<&'static str>,
) -> Result<(), HandlerError> {
    let check = &defs.checks[usize::from(binding.check)];
    let mut ctx = CheckCtx::new(&mut *conn, order, binding.field, stage);
    ctx.authorization = defs.authorization;
    ctx.memo = std::mem::take(memo);
    let outcome = (check.handler)(&mut ctx).await;
    *memo = std::mem::take(&mut ctx.memo);
    report.decisions.append(&mut ctx.decisions);
    report.obligations.append(&mut ctx.obligations);
    if let Some(facts) = ctx.facts.take() {
        report.facts = Some(facts);
    }
    outcome?;
    let findings = ctx.into_findings();
    if binding.syntax
        && !findings.is_empty()
        && let Some(f) = binding.field
    {
        broken.push(f);
    }
    for (field, message) in findings {
        let finding = Finding {
            check: check.name.to_owned(),
            field,
            message,
        };
        match binding.severity(stage) {
            Severity::Error => report.errors.push(finding),
            Severity::Warning if stage == Stage::Engine && order.accepted.contains(&finding) => {}
            Severity::Warning => report.warnings.push(finding),
            Severity::Off => {}
        }
    }
    Ok(())
}

//! The check runner: decides which checks of `checks.xml` apply to an order
//! (global ones always, field ones when the field is filled), runs them and
//! sorts their findings into errors and warnings by the severity of the stage.

use sqlx::AnyConnection;

use crate::context::{CheckCtx, Finding, OrderData};
use crate::defs::{Definitions, Severity, Stage};
use crate::error::HandlerError;

/// Errors and warnings of one check run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CheckReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
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
) -> impl Iterator<Item = &'d crate::defs::CheckBinding> {
    defs.check_bindings.iter().filter(move |b| {
        b.applies_to(order.order_type.name)
            && b.severity(stage) != Severity::Off
            && b.field.is_none_or(|f| order.is_filled(f))
    })
}

/// Runs every applicable check. Warnings the order's staff already accepted
/// are left out at the engine stage; errors are never left out.
pub async fn run_checks(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    order: &OrderData,
    stage: Stage,
) -> Result<CheckReport, HandlerError> {
    let mut report = CheckReport::default();
    for binding in applicable(defs, order, stage) {
        let check = &defs.checks[usize::from(binding.check)];
        let mut ctx = CheckCtx::new(&mut *conn, order, binding.field, stage);
        (check.handler)(&mut ctx).await?;
        for (field, message) in ctx.into_findings() {
            let finding = Finding {
                check: check.name.to_owned(),
                field,
                message,
            };
            match binding.severity(stage) {
                Severity::Error => report.errors.push(finding),
                Severity::Warning
                    if stage == Stage::Engine && order.accepted.contains(&finding) => {}
                Severity::Warning => report.warnings.push(finding),
                Severity::Off => {}
            }
        }
    }
    Ok(report)
}

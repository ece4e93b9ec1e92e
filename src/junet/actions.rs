//! Action handlers named in `definitions/actions.xml` that touch the device
//! database. They run inside the transaction that records the order's new
//! state, so an order is either applied and COMPLETED or neither.

use auftrag_engine::HandlerError;
use auftrag_engine::context::ActionCtx;
use auftrag_macros::action;

use super::execute;
use crate::generated::{ChangeDevice, DeleteDevice, NameDeputy, RegisterDevice};

/// Executes a checked order against the device database.
#[action]
pub async fn run_request(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    // the checks passed, so the fields parse
    match ctx.order.order_type.name {
        ChangeDevice::NAME => execute::change(ctx).await,
        RegisterDevice::NAME => execute::register(ctx).await,
        DeleteDevice::NAME => execute::delete(ctx).await,
        NameDeputy::NAME => execute::name_deputy(ctx).await,
        other => Err(HandlerError::Failed(format!(
            "orders of type `{other}` are not executed automatically"
        ))),
    }
}

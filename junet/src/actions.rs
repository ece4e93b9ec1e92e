//! Action handlers named in `definitions/actions.xml` that touch the device
//! database. They run inside the transaction that records the order's new
//! state, so an order is either applied and COMPLETED or neither.

use auftrag_engine::HandlerError;
use auftrag_engine::context::ActionCtx;
use auftrag_macros::action;

use super::execute;
use auftrag_junet_types::{ChangeDevice, DeleteDevice, EndDeputy, NameDeputy, RegisterDevice};

/// Executes a checked order against the device database.
#[action]
pub async fn run_request(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    // the checks passed, so the fields parse
    match ctx.order.order_type.name {
        ChangeDevice::NAME => execute::change(ctx).await,
        RegisterDevice::NAME => {
            execute::register(ctx).await?;
            print_label(ctx).await
        }
        DeleteDevice::NAME => execute::delete(ctx).await,
        NameDeputy::NAME => execute::name_deputy(ctx).await,
        EndDeputy::NAME => super::deputies::end(ctx).await,
        other => Err(HandlerError::Failed(format!(
            "orders of type `{other}` are not executed automatically"
        ))),
    }
}

/// The queue of `definitions/queues.xml` that barcode labels of registered
/// devices are printed from (a PRINT queue; a test checks its type).
pub const LABEL_QUEUE: auftrag_engine::jobs::Queue = auftrag_junet_types::queues::LABELS;

/// Every registered device gets a barcode label: a PRINT job for the agency,
/// created in the order's transaction, so there is a label exactly when the
/// device was registered. The job data is the label's text: host name, the
/// order, and the hardware address of each interface.
async fn print_label(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let host = ctx.order.text("host").unwrap_or_default().to_owned();
    let macs: Vec<String> = ctx
        .order
        .fields
        .get("interfaces")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|i| i.get("hwa").and_then(|m| m.as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let label = format!(
        "{host}\norder {}\n{}\n",
        ctx.order.id.unwrap_or_default(),
        macs.join("\n")
    );
    auftrag_engine::jobs::enqueue_for_order(ctx, LABEL_QUEUE, label.as_bytes()).await?;
    Ok(())
}

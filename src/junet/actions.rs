//! Action handlers named in `definitions/actions.xml` that touch the device
//! database. They run inside the transaction that records the order's new
//! state, so an order is either applied and COMPLETED or neither.

use auftrag_engine::HandlerError;
use auftrag_engine::context::ActionCtx;
use auftrag_macros::action;
use sqlx::Row;

use super::checks::{normalize_mac, parse_mac};
use super::resolve_host;
use crate::generated::ChangeDevice;

/// Executes a checked order against the device database.
#[action]
pub async fn run_request(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    if ctx.order.order_type.name == ChangeDevice::NAME {
        // the checks passed, so the fields parse
        let order = ChangeDevice::from_order(ctx.order)?;
        let host = order.host.to_string();
        let hwa = order.hwa.map(|m| m.to_string());
        return change_device(ctx, &host, hwa.as_deref()).await;
    }
    Err(HandlerError::Failed(format!(
        "orders of type `{}` are not executed automatically yet",
        ctx.order.order_type.name
    )))
}

async fn change_device(
    ctx: &mut ActionCtx<'_>,
    host: &str,
    hwa: Option<&str>,
) -> Result<(), HandlerError> {
    let target = resolve_host(ctx.conn, host).await?.ok_or_else(|| {
        HandlerError::Failed(format!(
            "host `{host}` vanished between check and execution"
        ))
    })?;
    if let Some(hwa) = hwa {
        let new = normalize_mac(&parse_mac(hwa).map_err(HandlerError::Failed)?);
        // Lock the row before reading the old value, so that two orders on
        // one interface record a consistent [old, new] chain (on PostgreSQL
        // a plain read would not wait; this no-op update does, on both backends).
        sqlx::query("UPDATE x_port SET HARDW_ADDR = HARDW_ADDR WHERE PT_OBJ_ID = $1")
            .bind(target.port)
            .execute(&mut *ctx.conn)
            .await?;
        let old: Option<String> = sqlx::query("SELECT HARDW_ADDR FROM x_port WHERE PT_OBJ_ID = $1")
            .bind(target.port)
            .fetch_one(&mut *ctx.conn)
            .await?
            .try_get(0)?;
        if old.as_deref() != Some(new.as_str()) {
            sqlx::query("UPDATE x_port SET HARDW_ADDR = $1 WHERE PT_OBJ_ID = $2")
                .bind(&new)
                .bind(target.port)
                .execute(&mut *ctx.conn)
                .await?;
            ctx.order.record_change("hwa", old, new);
        }
    }
    Ok(())
}

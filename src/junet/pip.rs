//! Attribute resolvers (the PIP) named in `definitions/attributes.xml`: they
//! read the device database for the policy decision point.

use auftrag_engine::HandlerError;
use auftrag_engine::pdp::{PipCtx, Value};
use sqlx::Row;

use super::{pers_key, resolve_host};

/// The device the order is about (`host`), looked up once per decision.
async fn device(ctx: &mut PipCtx<'_>) -> Result<Option<i64>, HandlerError> {
    if let Some(device) = ctx.memo::<Option<i64>>("device") {
        return Ok(device);
    }
    let device = match ctx.order.text("host").map(str::to_owned) {
        Some(host) => resolve_host(ctx.conn, &host).await?.map(|t| t.device),
        None => None,
    };
    ctx.remember("device", device);
    Ok(device)
}

fn subject(ctx: &PipCtx<'_>) -> i64 {
    pers_key(ctx.subject).unwrap_or(-1)
}

async fn exists(ctx: &mut PipCtx<'_>, sql: &'static str) -> Result<Option<Value>, HandlerError> {
    let key = subject(ctx);
    let found = sqlx::query(sql)
        .bind(key)
        .fetch_optional(&mut *ctx.conn)
        .await?
        .is_some();
    Ok(Some(Value::Boolean(found)))
}

pub async fn is_employee(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    exists(
        ctx,
        "SELECT 1 FROM d_pers WHERE PERS_KEY = $1 AND ORG IS NOT NULL AND ORG <> ''",
    )
    .await
}

pub async fn is_admin(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    exists(
        ctx,
        "SELECT 1 FROM x_link WHERE CLASS_L = 'ADMIN' AND OBJ_ID_L = $1 LIMIT 1",
    )
    .await
}

pub async fn is_itb(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    exists(
        ctx,
        "SELECT 1 FROM auftrag_it_officers WHERE PERS_KEY = $1 LIMIT 1",
    )
    .await
}

pub async fn itb_orgs(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let key = subject(ctx);
    let orgs: Vec<String> =
        sqlx::query_scalar("SELECT ORG FROM auftrag_it_officers WHERE PERS_KEY = $1 ORDER BY ORG")
            .bind(key)
            .fetch_all(&mut *ctx.conn)
            .await?;
    Ok(Some(Value::Set(
        orgs.into_iter().map(Value::String).collect(),
    )))
}

pub async fn is_staff(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let staff = auftrag_engine::store::is_staff(ctx.conn, ctx.subject)
        .await
        .map_err(|e| HandlerError::Failed(e.to_string()))?;
    Ok(Some(Value::Boolean(staff)))
}

pub async fn email(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let key = subject(ctx);
    let email: Option<Option<String>> =
        sqlx::query_scalar("SELECT EMAIL FROM d_pers WHERE PERS_KEY = $1")
            .bind(key)
            .fetch_optional(&mut *ctx.conn)
            .await?;
    Ok(email.flatten().map(Value::String))
}

/// A `name_deputy` order without a host and without an org unit: for all
/// devices of the requester.
pub async fn all_devices(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let all = ctx.order.order_type.name == "name_deputy"
        && ctx.order.text("host").is_none()
        && ctx.order.text("org").is_none();
    Ok(Some(Value::Boolean(all)))
}

pub async fn device_admin(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let Some(device) = device(ctx).await? else {
        return Ok(None);
    };
    Ok(super::device_admin(ctx.conn, device)
        .await?
        .map(|a| Value::String(a.to_string())))
}

/// The org unit the order is about: the device's (`DV_LOC_ORG`), or, for a
/// `name_deputy` order for an org unit, that unit.
pub async fn device_org(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let Some(device) = device(ctx).await? else {
        return Ok(ctx.order.text("org").map(|o| Value::String(o.to_owned())));
    };
    let org: Option<Option<String>> =
        sqlx::query_scalar("SELECT DV_LOC_ORG FROM x_device WHERE DV_OBJ_ID = $1")
            .bind(device)
            .fetch_optional(&mut *ctx.conn)
            .await?;
    Ok(org.flatten().map(Value::String))
}

/// Deputyships that cover the device: for it alone, for all devices of its
/// admin, or for its org unit. Rows of (deputy, until).
async fn deputyships(ctx: &mut PipCtx<'_>) -> Result<Vec<(i64, Option<String>)>, HandlerError> {
    if let Some(rows) = ctx.memo::<Vec<(i64, Option<String>)>>("deputyships") {
        return Ok(rows);
    }
    let Some(device) = device(ctx).await? else {
        return Ok(Vec::new());
    };
    // Three indexed lookups rather than one OR that scans the table.
    let rows = sqlx::query(
        "SELECT DEPUTY, UNTIL FROM auftrag_deputies WHERE DEVICE = $1 \
         UNION ALL \
         SELECT DEPUTY, UNTIL FROM auftrag_deputies WHERE DEVICE IS NULL AND ORG IS NULL AND NAMED_BY IN \
           (SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'ADMIN') \
         UNION ALL \
         SELECT DEPUTY, UNTIL FROM auftrag_deputies WHERE ORG IN \
           (SELECT DV_LOC_ORG FROM x_device WHERE DV_OBJ_ID = $1)",
    )
    .bind(device)
    .fetch_all(&mut *ctx.conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    ctx.remember("deputyships", rows.clone());
    Ok(rows)
}

pub async fn deputies(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let rows = deputyships(ctx).await?;
    let mut people: Vec<String> = rows.iter().map(|(d, _)| d.to_string()).collect();
    people.sort();
    people.dedup();
    Ok(Some(Value::Set(
        people.into_iter().map(Value::String).collect(),
    )))
}

/// When the asking person's deputyship for the device ends (the latest, if
/// several); far in the future when one is open-ended; none when they are
/// no deputy of it.
pub async fn deputy_until(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let me = subject(ctx);
    let rows = deputyships(ctx).await?;
    let mut until: Option<i64> = None;
    for (deputy, end) in rows.into_iter().filter(|(d, _)| *d == me) {
        let end = match end {
            None => i64::MAX / 2,
            Some(text) => {
                time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        HandlerError::Failed(format!(
                            "deputyship of {deputy} has a bad end `{text}`: {e}"
                        ))
                    })?
                    .unix_timestamp()
            }
        };
        until = Some(until.map_or(end, |u| u.max(end)));
    }
    Ok(until.map(Value::Time))
}

/// The person who placed the order.
pub async fn requester(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(Some(Value::String(ctx.order.requester.clone())))
}

//! Deputyships (thesis rules 3, 4 and 6): how `name_deputy` begins or
//! renews one and `end_deputy` shortens or ends it, and which rows of
//! `auftrag_deputies` an order's scope means.
//!
//! A deputyship hands on somebody's rights for a while: for one device (the
//! rights of the device's admin: the row keeps that admin in `ADMIN`, and
//! it holds only while the device has that admin — a change of the admin
//! deletes it), for all devices an admin administers (`DEVICE` and `ORG`
//! null, `NAMED_BY` = `ADMIN` = that admin), or for every device of an org
//! unit (`ORG`, named by its IT officer or staff). One deputy has at most
//! one deputyship per scope: naming them again sets its end.

use auftrag_engine::HandlerError;
use auftrag_engine::context::{ActionCtx, OrderData};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{DeputyScope, deputy_scope, pers_key, resolve_host_memo};
use auftrag_junet_types::{EndDeputy, NameDeputy};

fn failed(message: impl Into<String>) -> HandlerError {
    HandlerError::Failed(message.into())
}

/// The rows of `auftrag_deputies` an order's scope and deputy mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// One device and the admin whose rights its deputyships hand on now.
    Device {
        device: i64,
        admin: i64,
    },
    /// All devices of this admin.
    AllOf(i64),
    Org(String),
}

impl Rows {
    /// The condition on `auftrag_deputies` (after `DEPUTY = $1`), with its
    /// parameters from `$2`; `valid`: only deputyships that hold (for a
    /// device, those of its present admin), else also the ones of earlier
    /// admins.
    fn condition(&self, valid: bool) -> (String, Vec<Arg>) {
        match self {
            Rows::Device { device, admin } if valid => (
                "DEVICE = $2 AND ADMIN = $3".into(),
                vec![Arg::I(*device), Arg::I(*admin)],
            ),
            Rows::Device { device, .. } => ("DEVICE = $2".into(), vec![Arg::I(*device)]),
            Rows::AllOf(admin) => (
                "DEVICE IS NULL AND ORG IS NULL AND NAMED_BY = $2".into(),
                vec![Arg::I(*admin)],
            ),
            Rows::Org(org) => ("ORG = $2".into(), vec![Arg::S(org.clone())]),
        }
    }
}

enum Arg {
    I(i64),
    S(String),
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::I(i) => q.bind(i),
            Arg::S(s) => q.bind(s),
        };
    }
    q
}

/// The rows the order's scope means; `Err` says why there are none to
/// mean (a host that names no device, a device without admin, a requester
/// or deputy that is no person key).
pub async fn rows_of(
    conn: &mut AnyConnection,
    memo: &mut auftrag_engine::context::Memo,
    order: &OrderData,
) -> Result<Result<Rows, String>, HandlerError> {
    let Some(scope) = deputy_scope(order) else {
        return Ok(Err("the scope's field is missing".into()));
    };
    Ok(Ok(match scope {
        DeputyScope::Device(host) => {
            let Some(target) = resolve_host_memo(conn, memo, host).await? else {
                return Ok(Err(format!("there is no device `{host}`")));
            };
            let Some(admin) = super::device_admin(conn, target.device).await? else {
                return Ok(Err(format!("device `{host}` has no admin")));
            };
            Rows::Device {
                device: target.device,
                admin,
            }
        }
        DeputyScope::MyDevices => match pers_key(&order.requester) {
            Some(me) => Rows::AllOf(me),
            None => return Ok(Err(format!("`{}` is no person key", order.requester))),
        },
        DeputyScope::Org(org) => Rows::Org(org.to_owned()),
    }))
}

/// The ends of `deputy`'s deputyships in `rows` that hold (`None`: open-ended).
pub async fn ends(
    conn: &mut AnyConnection,
    deputy: i64,
    rows: &Rows,
) -> Result<Vec<Option<String>>, HandlerError> {
    let (cond, args) = rows.condition(true);
    let sql = format!("SELECT UNTIL FROM auftrag_deputies WHERE DEPUTY = $1 AND {cond}");
    let found = bind(sqlx::query(&sql).bind(deputy), args)
        .fetch_all(&mut *conn)
        .await?;
    Ok(found
        .iter()
        .map(|r| r.try_get::<Option<String>, _>(0))
        .collect::<Result<_, _>>()?)
}

/// The latest of several ends (`None`, open-ended, is the latest).
pub fn latest(ends: &[Option<String>]) -> Option<Option<String>> {
    ends.iter().cloned().reduce(|a, b| match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    })
}

/// The stored end of a deputyship whose last day is `day`.
pub fn end_of(day: impl std::fmt::Display) -> String {
    format!("{day}T23:59:59.000Z")
}

fn deputy_of(order: &OrderData) -> Result<i64, HandlerError> {
    order
        .text("deputy")
        .and_then(pers_key)
        .ok_or_else(|| failed("deputy is no PERS_KEY"))
}

async fn rows_for_execution(ctx: &mut ActionCtx<'_>) -> Result<Rows, HandlerError> {
    rows_of(ctx.conn, ctx.memo, ctx.order)
        .await?
        .map_err(|why| failed(format!("{why} (since the checks)")))
}

/// `name_deputy`: begins the deputyship, or sets the end of the one the
/// deputy has for the scope (rows of earlier admins of the device go).
pub async fn name(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let named_by = pers_key(&ctx.order.requester).ok_or_else(|| {
        failed(format!(
            "requester `{}` is no PERS_KEY",
            ctx.order.requester
        ))
    })?;
    let deputy = deputy_of(ctx.order)?;
    let until = NameDeputy::from_order(ctx.order)?.until.map(end_of);
    let rows = rows_for_execution(ctx).await?;
    let before = latest(&ends(ctx.conn, deputy, &rows).await?);
    let (cond, args) = rows.condition(false);
    let sql = format!("DELETE FROM auftrag_deputies WHERE DEPUTY = $1 AND {cond}");
    bind(sqlx::query(&sql).bind(deputy), args)
        .execute(&mut *ctx.conn)
        .await?;
    let (device, org, admin) = match &rows {
        Rows::Device { device, admin } => (Some(*device), None, Some(*admin)),
        Rows::AllOf(admin) => (None, None, Some(*admin)),
        Rows::Org(org) => (None, Some(org.clone()), None),
    };
    sqlx::query(
        "INSERT INTO auftrag_deputies (DEPUTY, NAMED_BY, DEVICE, ORG, UNTIL, CREATED_AT, ADMIN) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(deputy)
    .bind(named_by)
    .bind(device)
    .bind(org)
    .bind(until.clone())
    .bind(auftrag_engine::store::history::now())
    .bind(admin)
    .execute(&mut *ctx.conn)
    .await?;
    match before {
        Some(old) => {
            if old != until {
                ctx.order.record_change("until", old, until);
            }
        }
        None => {
            ctx.order
                .record_change("deputy", Value::Null, deputy.to_string());
            if let Some(until) = until {
                ctx.order.record_change("until", Value::Null, until);
            }
        }
    }
    Ok(())
}

/// `end_deputy`: a new, earlier end (`until`), or the deputyship ends now
/// (its rows go, with those of earlier admins of the device).
pub async fn end(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let o = EndDeputy::from_order(ctx.order)?;
    let deputy = deputy_of(ctx.order)?;
    let rows = rows_for_execution(ctx).await?;
    let before = latest(&ends(ctx.conn, deputy, &rows).await?).ok_or_else(|| {
        failed(format!(
            "{deputy} is no longer deputy here (since the checks)"
        ))
    })?;
    match o.until {
        Some(day) => {
            let until = end_of(day);
            let (cond, args) = rows.condition(true);
            // the end's parameter after the condition's
            let sql = format!(
                "UPDATE auftrag_deputies SET UNTIL = ${} WHERE DEPUTY = $1 AND {cond}",
                args.len() + 2
            );
            bind(sqlx::query(&sql).bind(deputy), args)
                .bind(until.clone())
                .execute(&mut *ctx.conn)
                .await?;
            ctx.order.record_change("until", before, until);
        }
        None => {
            let (cond, args) = rows.condition(false);
            let sql = format!("DELETE FROM auftrag_deputies WHERE DEPUTY = $1 AND {cond}");
            bind(sqlx::query(&sql).bind(deputy), args)
                .execute(&mut *ctx.conn)
                .await?;
            ctx.order
                .record_change("deputy", deputy.to_string(), Value::Null);
            if let Some(until) = before {
                ctx.order.record_change("until", until, Value::Null);
            }
        }
    }
    Ok(())
}

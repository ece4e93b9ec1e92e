//! The JuNet side of the mail notifications: who a device's admin and
//! deputies are, and a person's mailbox (`d_pers.EMAIL`). `d_pers` has no
//! language column (the thesis's tables keep their columns), so every
//! person gets the default language (`serve --mail-language`, else
//! `default_language` of notifications.xml).

use auftrag_engine::EngineError;
use auftrag_engine::context::{Memo, OrderData};
use auftrag_engine::notify::{DevicePeople, PersonMail};
use auftrag_engine::pdp::pip::PipCtx;
use sqlx::{AnyConnection, Row};

use super::pers_key;

/// The admins and deputies of the device an order is about. A registration
/// names its admin in its fields (the device does not exist yet); other
/// orders name the device by `host`, whose facts the policies read.
pub async fn device_people(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    order: &OrderData,
) -> Result<DevicePeople, EngineError> {
    if order.order_type.name == "register_device" {
        return Ok(DevicePeople {
            admins: order.text("admin").map(str::to_owned).into_iter().collect(),
            deputies: Vec::new(),
        });
    }
    let mut ctx = PipCtx::new(conn, order, &order.requester);
    ctx.memo = std::mem::take(memo);
    let people = super::pip::device_people(&mut ctx).await;
    *memo = std::mem::take(&mut ctx.memo);
    let (admin, deputies) = people.map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(DevicePeople {
        admins: admin.map(|a| a.to_string()).into_iter().collect(),
        deputies: deputies.into_iter().map(|d| d.to_string()).collect(),
    })
}

/// A person's address and name from `d_pers`.
pub async fn person_mail(
    conn: &mut AnyConnection,
    person: &str,
) -> Result<Option<PersonMail>, EngineError> {
    let Some(key) = pers_key(person) else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT EMAIL, VORNAME, NAME FROM d_pers WHERE PERS_KEY = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let email: Option<String> = row.try_get(0)?;
    let first: Option<String> = row.try_get(1)?;
    let last: Option<String> = row.try_get(2)?;
    Ok(email
        .filter(|e| !e.trim().is_empty())
        .map(|address| PersonMail {
            address: address.trim().to_owned(),
            name: Some(
                [first, last]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .filter(|n| !n.is_empty()),
            language: None,
        }))
}

//! Check functions named in `definitions/checks.xml`. Each reports problems
//! through the context; whether a problem is an error or a warning is decided
//! per stage in the XML, not here.

use std::str::FromStr;

use auftrag_engine::HandlerError;
use auftrag_engine::context::CheckCtx;
use auftrag_engine::types::Hostname;
use auftrag_macros::check;
use macaddr::MacAddr6;

use super::resolve_host_memo;

// The checks of register, change, delete and deputy orders (issue 4).
pub use super::order_checks::*;

/// The canonical form of a hardware address in `x_port.HARDW_ADDR`:
/// lower-case hex, colon separated.
pub fn normalize_mac(mac: &MacAddr6) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(17);
    for (i, b) in mac.as_bytes().iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Parses a hardware address as users write it (`00:1A:2B:3C:4D:5E`,
/// `00-1a-2b-3c-4d-5e`, `001a.2b3c.4d5e`).
pub fn parse_mac(value: &str) -> Result<MacAddr6, String> {
    let mac = MacAddr6::from_str(value.trim()).map_err(|_| {
        format!(
            "`{value}` is not a hardware address; write six hex bytes such as 00:1a:2b:3c:4d:5e"
        )
    })?;
    if mac.is_nil() {
        return Err(format!(
            "`{value}` is the all-zero address, which no interface has"
        ));
    }
    if mac.is_broadcast() || mac.is_multicast() {
        return Err(format!(
            "`{value}` is a group (multicast) address, not the address of an interface"
        ));
    }
    Ok(mac)
}

/// The host names an interface in the device database.
#[check(field = "hostname")]
pub async fn check_host_exists(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(host) = ctx.value().map(str::to_owned) else {
        return Ok(());
    };
    if resolve_host_memo(ctx.conn, &mut ctx.memo, &host)
        .await?
        .is_none()
    {
        ctx.report(format!(
            "there is no interface `{host}` in the device database; give its fully qualified name"
        ));
    }
    Ok(())
}

/// The hardware address is well-formed and names an interface (not the
/// all-zero or a group address, which parse but no interface has). Replaces
/// the built-in syntax check of `hwa` (`syntax="yes"` in checks.xml).
#[check(field = "mac")]
pub async fn check_hwa_syntax(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    if let Some(value) = ctx.value().map(str::to_owned)
        && let Err(message) = parse_mac(&value)
    {
        ctx.report(message);
    }
    Ok(())
}

/// No other interface has this hardware address. (The same device can sit at
/// two sites, so the engine only warns; the portal refuses.)
#[check(field = "mac")]
pub async fn check_hwa_unique(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(mac) = ctx.value().and_then(|v| parse_mac(v).ok()) else {
        return Ok(()); // check_hwa_syntax reports it
    };
    let mac = normalize_mac(&mac);
    let own_port = match ctx.order.text("host").map(str::to_owned) {
        Some(host) => resolve_host_memo(ctx.conn, &mut ctx.memo, &host)
            .await?
            .map(|t| t.port),
        None => None,
    };
    // the users the order's plan looked up, or a query of its own
    let known = super::order_checks::usage_of(ctx)
        .await?
        .and_then(|u| u.users("mac", &mac).map(<[i64]>::to_vec));
    let users: Vec<i64> = match known {
        Some(users) => users,
        None => {
            sqlx::query_scalar(
                "SELECT PT_OBJ_ID FROM x_port WHERE LOWER(HARDW_ADDR) = $1 ORDER BY PT_OBJ_ID",
            )
            .bind(&mac)
            .fetch_all(&mut *ctx.conn)
            .await?
        }
    };
    let own: Vec<i64> = own_port.into_iter().collect();
    if let Some(names) = super::order_checks::others_named(ctx.conn, &users, &own).await? {
        ctx.report(format!("hardware address {mac} is already used by {names}"));
    }
    Ok(())
}

#[check(field = "hostname")]
pub async fn check_host_free(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(host) = ctx.typed::<Hostname>() else {
        return Ok(());
    };
    if resolve_host_memo(ctx.conn, &mut ctx.memo, host.as_str())
        .await?
        .is_some()
    {
        ctx.report(format!(
            "`{host}` is already registered; order a change_device instead"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_addresses_are_stored_in_one_spelling() {
        for written in ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"] {
            let mac = parse_mac(written).unwrap();
            assert_eq!(normalize_mac(&mac), "00:1a:2b:3c:4d:5e", "{written}");
        }
        let mac = parse_mac("F0:0D:A0:09:FF:10").unwrap();
        assert_eq!(normalize_mac(&mac), "f0:0d:a0:09:ff:10");
    }
}

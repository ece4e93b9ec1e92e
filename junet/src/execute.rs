//! Execution of checked orders against the device database: register,
//! change and delete a device, name a deputy. Everything runs on the order's
//! own transaction (`ctx.conn`), which also records the order's new state:
//! an order is applied and COMPLETED, or neither. Before it returns, each
//! execution verifies the thesis's invariants for the device it touched
//! (one ADMIN link, at least one PORT link, one canonical alias per
//! interface, one interface per subnet); a violation fails the action and
//! rolls the order back.

use auftrag_engine::HandlerError;
use auftrag_engine::context::ActionCtx;
use auftrag_engine::types::Hostname;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use super::checks::normalize_mac;
use super::plan::{self, Iface, PortRow, device_ports, label_of, new_object_id, split_alias};
use super::{pers_key, resolve_host_memo};
use auftrag_engine::store::writes::Arg;
use auftrag_junet_types::{ChangeDevice, DeleteDevice};

fn failed(message: impl Into<String>) -> HandlerError {
    HandlerError::Failed(message.into())
}

fn yes_no(b: bool) -> &'static str {
    if b { "Y" } else { "N" }
}

fn requester_key(ctx: &ActionCtx<'_>) -> Result<i64, HandlerError> {
    pers_key(&ctx.order.requester).ok_or_else(|| {
        failed(format!(
            "requester `{}` is no PERS_KEY",
            ctx.order.requester
        ))
    })
}

/// The values of a new `x_port` row, in column order (PT_OBJ_ID,
/// PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA).
fn port_row(port: i64, iface: &Iface) -> Result<Vec<Arg>, HandlerError> {
    let subnet = iface.subnet.as_ref().ok_or_else(|| {
        failed(format!(
            "{}: unknown subnet {}",
            iface.field("net"),
            iface.net
        ))
    })?;
    let (gua, lla) = iface.ipv6_addresses().map_err(failed)?;
    Ok(vec![
        port.into(),
        iface.ipv4.map(|ip| ip.to_string()).into(),
        subnet.id.into(),
        normalize_mac(&iface.hwa).into(),
        yes_no(iface.ssh.unwrap_or(false)).into(),
        gua.and(iface.v6_type.unwrap_or(plan::V6Type::Eui64).column())
            .map(str::to_owned)
            .into(),
        lla.map(|a| a.to_string()).into(),
        gua.map(|a| a.to_string()).into(),
    ])
}

/// Inserts a port row (no link, no aliases) with a new id; returns the id.
async fn insert_port_row(conn: &mut AnyConnection, iface: &Iface) -> Result<i64, HandlerError> {
    // the row's values after its id, whose place takes a new-id expression
    let values = port_row(0, iface)?.into_iter().skip(1);
    let sql = format!(
        "INSERT INTO x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA) \
         VALUES ({}, $1, $2, $3, $4, $5, $6, $7) RETURNING PT_OBJ_ID",
        new_object_id(conn, "x_port")
    );
    let mut query = sqlx::query(&sql);
    for v in values {
        query = v.bind(query);
    }
    Ok(query.fetch_one(&mut *conn).await?.try_get(0)?)
}

/// Inserts a port with its PORT link and aliases; returns its id.
async fn insert_port(
    conn: &mut AnyConnection,
    device: i64,
    class: &str,
    iface: &Iface,
) -> Result<i64, HandlerError> {
    let port = insert_port_row(conn, iface).await?;
    insert_links(conn, class, device, &[("PORT", port)]).await?;
    let aliases: Vec<(i64, &Hostname, bool)> =
        iface.aliases.iter().map(|(a, c)| (port, a, *c)).collect();
    insert_aliases(conn, &aliases).await?;
    Ok(port)
}

/// Links a device to objects (`(CLASS_L, OBJ_ID_L)`), in one statement.
async fn insert_links(
    conn: &mut AnyConnection,
    class: &str,
    device: i64,
    links: &[(&str, i64)],
) -> Result<(), HandlerError> {
    if links.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..links.len())
        .map(|i| format!("($1, $2, ${}, ${})", 2 * i + 3, 2 * i + 4))
        .collect();
    let sql = format!(
        "INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(class).bind(device);
    for (class_l, id) in links {
        query = query.bind(*class_l).bind(*id);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Inserts aliases `(port, name, canonical)`, in one statement.
async fn insert_aliases(
    conn: &mut AnyConnection,
    aliases: &[(i64, &Hostname, bool)],
) -> Result<(), HandlerError> {
    if aliases.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..aliases.len())
        .map(|i| {
            let n = 4 * i;
            format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4)
        })
        .collect();
    let sql = format!(
        "INSERT INTO n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (port, alias, canonical) in aliases {
        let (name, domain) = split_alias(alias)
            .ok_or_else(|| failed(format!("alias `{alias}` is not fully qualified")))?;
        query = query
            .bind(name)
            .bind(domain)
            .bind(*port)
            .bind(yes_no(*canonical));
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

async fn delete_port(conn: &mut AnyConnection, device: i64, port: i64) -> Result<(), HandlerError> {
    sqlx::query("DELETE FROM n_devname WHERE PT_OBJ_ID = $1")
        .bind(port)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'PORT' AND OBJ_ID_L = $2")
        .bind(device)
        .bind(port)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM x_port WHERE PT_OBJ_ID = $1")
        .bind(port)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Reads the device row and locks it until the order commits (PostgreSQL:
/// `FOR UPDATE`, so two orders on one device are applied one after the
/// other; SQLite's write transaction is exclusive already) — unless the
/// policy resolvers already did so, before the checks read the device.
/// Returns the row ([`plan::DEVICE_COLUMNS`]) and whether it was locked
/// only now (what the checks read may be stale then).
async fn lock_device(
    ctx: &mut ActionCtx<'_>,
    device: i64,
) -> Result<(std::sync::Arc<plan::DeviceRow>, bool), HandlerError> {
    if let Some(row) = ctx.memo.get::<plan::DeviceRow>(&plan::locked_memo(device)) {
        return Ok((row, false));
    }
    let lock = plan::is_postgres(ctx.conn);
    let row = plan::device_row(ctx.conn, device, lock)
        .await?
        .ok_or_else(|| {
            failed(format!(
                "device {device} vanished between check and execution"
            ))
        })?;
    Ok((std::sync::Arc::new(row), true))
}

/// The thesis's invariants for one device; an error names the broken one.
/// One query: the device's ports with their aliases and its ADMIN links.
pub async fn verify_device(conn: &mut AnyConnection, device: i64) -> Result<(), HandlerError> {
    let rows = sqlx::query(
        "SELECT l.OBJ_ID_L, p.NET_OBJ_ID, n.CANONICAL, \
                (SELECT COUNT(*) FROM x_link a WHERE a.OBJ_ID_H = $1 AND a.CLASS_L = 'ADMIN') \
         FROM x_link l LEFT JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L \
         LEFT JOIN n_devname n ON n.PT_OBJ_ID = l.OBJ_ID_L \
         WHERE l.OBJ_ID_H = $1 AND l.CLASS_L = 'PORT' ORDER BY l.OBJ_ID_L",
    )
    .bind(device)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Err(failed(format!("device {device} would have no interface")));
    };
    let admins: i64 = first.try_get(3)?;
    if admins != 1 {
        return Err(failed(format!(
            "device {device} would have {admins} ADMIN links, not one"
        )));
    }
    // (port, subnet, canonical aliases)
    let mut ports: Vec<(i64, Option<i64>, usize)> = Vec::new();
    for r in &rows {
        let port: i64 = r.try_get(0)?;
        let canonical: Option<String> = r.try_get(2)?;
        if ports.last().is_none_or(|p| p.0 != port) {
            ports.push((port, r.try_get(1)?, 0));
        }
        if let Some(p) = ports.last_mut()
            && canonical.as_deref() == Some("Y")
        {
            p.2 += 1;
        }
    }
    let mut nets = Vec::new();
    for (port, net, canonical) in ports {
        if canonical != 1 {
            return Err(failed(format!(
                "interface {port} of device {device} would have {canonical} canonical aliases, not one"
            )));
        }
        if let Some(net) = net {
            if nets.contains(&net) {
                return Err(failed(format!(
                    "device {device} would have two interfaces in subnet {net}"
                )));
            }
            nets.push(net);
        }
    }
    Ok(())
}

/// The thesis's invariants for a device `register` writes, judged on what
/// it writes (the rows are the plan's, and no other transaction can see or
/// change the device before this one commits): one ADMIN link (written
/// once), at least one interface, one canonical alias per interface, one
/// interface per subnet.
fn verify_new_device(plan: &plan::Plan, device: i64) -> Result<(), HandlerError> {
    if plan.ifaces.is_empty() {
        return Err(failed(format!("device {device} would have no interface")));
    }
    let mut nets = Vec::new();
    for (i, iface) in plan.ifaces.iter().enumerate() {
        let canonical = iface.aliases.iter().filter(|(_, c)| *c).count();
        if canonical != 1 {
            return Err(failed(format!(
                "interface {i} of device {device} would have {canonical} canonical aliases, not one"
            )));
        }
        let net = iface.subnet.as_ref().map(|s| s.id);
        if net.is_some() && nets.contains(&net) {
            return Err(failed(format!(
                "device {device} would have two interfaces in subnet {}",
                iface.net
            )));
        }
        nets.push(net);
    }
    Ok(())
}

fn port_json(p: &PortRow) -> Value {
    json!(p.canonical())
}

/// `register_device`: the device, its ADMIN and USER links, its interfaces
/// with PORT links and aliases.
pub async fn register(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let o = plan::registration(ctx.memo, ctx.order)?;
    // The checks' plan: built in this transaction, under the order's locks.
    let plan = match ctx
        .memo
        .get::<Option<std::sync::Arc<plan::Plan>>>(plan::PLAN_MEMO)
        .and_then(|p| (*p).clone())
    {
        Some(plan) => plan,
        None => std::sync::Arc::new(
            plan::plan(ctx.conn, ctx.memo, ctx.order)
                .await?
                .ok_or_else(|| failed("the order's fields do not parse"))?,
        ),
    };
    if let Some((field, message)) = plan.problems.first() {
        return Err(failed(format!("{field}: {message}")));
    }
    let admin = match &o.admin {
        Some(a) => a
            .as_str()
            .parse::<i64>()
            .map_err(|_| failed("admin is no PERS_KEY"))?,
        None => requester_key(ctx)?,
    };
    let org = match o.org.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(org) => Some(org.to_owned()),
        None => match ctx
            .memo
            .get::<Option<Option<String>>>(&plan::person_memo(admin))
        {
            Some(org) => (*org).clone().flatten(),
            None => sqlx::query_scalar::<_, Option<String>>(
                "SELECT ORG FROM d_pers WHERE PERS_KEY = $1",
            )
            .bind(admin)
            .fetch_optional(&mut *ctx.conn)
            .await?
            .flatten(),
        },
    };
    let class = o.dv_class.name();
    let org_fact = org.clone();
    // ids first, then the device, its interfaces, links and aliases in one
    // round trip
    let (device, ports) = plan::object_ids(ctx.conn, ctx.memo, plan.ifaces.len()).await?;
    // sent with the order's row (nothing in the transaction reads them)
    let writes = ctx.defer();
    writes.insert(
        "x_device (DV_OBJ_ID, DV_LABEL, SERIAL, DV_CLASS, TYPE, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA, ARRIVAL)",
        vec![vec![
            device.into(),
            label_of(&o.host).into(),
            o.serial.clone().into(),
            class.into(),
            o.dv_type.clone().into(),
            o.geb.as_str().into(),
            o.raum.as_str().into(),
            org.into(),
            yes_no(o.persdata.unwrap_or(false)).into(),
            o.arrival.map(|d| d.to_string()).into(),
        ]],
    );
    let mut links: Vec<Vec<Arg>> = vec![vec![
        class.into(),
        device.into(),
        "ADMIN".into(),
        admin.into(),
    ]];
    for user in user_keys(o.users.as_deref())? {
        if user != admin {
            links.push(vec![
                class.into(),
                device.into(),
                "USER".into(),
                user.into(),
            ]);
        }
    }
    let mut port_rows = Vec::new();
    let mut aliases = Vec::new();
    for (iface, port) in plan.ifaces.iter().zip(&ports) {
        port_rows.push(port_row(*port, iface)?);
        links.push(vec![
            class.into(),
            device.into(),
            "PORT".into(),
            (*port).into(),
        ]);
        for (alias, canonical) in &iface.aliases {
            let (name, domain) = split_alias(alias)
                .ok_or_else(|| failed(format!("alias `{alias}` is not fully qualified")))?;
            aliases.push(vec![
                name.into(),
                domain.into(),
                (*port).into(),
                yes_no(*canonical).into(),
            ]);
        }
    }
    writes.insert(
        "x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA)",
        port_rows,
    );
    writes.insert("x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L)", links);
    writes.insert("n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL)", aliases);

    verify_new_device(&plan, device)?;
    let fields: Vec<(String, Value)> = ctx
        .order
        .fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in fields {
        ctx.order.record_change(&k, Value::Null, v);
    }
    ctx.order.record_change("device", Value::Null, device);
    // A registration is about the device it made: who may read it is
    // decided on that device, its admin and org unit (not on a device that
    // has its name later).
    let facts = ctx.order.facts.get_or_insert_with(Default::default);
    facts.insert(super::pip::RECORDED_DEVICE.to_owned(), json!(device));
    facts.insert(
        super::pip::RECORDED_ADMIN.to_owned(),
        json!(admin.to_string()),
    );
    match org_fact {
        Some(org) => facts.insert(super::pip::RECORDED_ORG.to_owned(), json!(org)),
        None => facts.remove(super::pip::RECORDED_ORG),
    };
    Ok(())
}

fn user_keys(users: Option<&[auftrag_engine::types::PersonRef]>) -> Result<Vec<i64>, HandlerError> {
    let mut keys: Vec<i64> = users
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p.as_str()
                .parse::<i64>()
                .map_err(|_| failed(format!("{p} is no PERS_KEY")))
        })
        .collect::<Result<_, _>>()?;
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

async fn current_users(conn: &mut AnyConnection, device: i64) -> Result<Vec<i64>, HandlerError> {
    Ok(sqlx::query_scalar(
        "SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'USER' ORDER BY OBJ_ID_L",
    )
    .bind(device)
    .fetch_all(&mut *conn)
    .await?)
}

/// Replaces the USER links of a device (the admin is no user of their own device).
async fn set_users(
    conn: &mut AnyConnection,
    device: i64,
    class: &str,
    admin: i64,
    users: &[i64],
) -> Result<(), HandlerError> {
    sqlx::query("DELETE FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'USER'")
        .bind(device)
        .execute(&mut *conn)
        .await?;
    add_users(conn, device, class, admin, users).await
}

/// Links `users` to a device as USER (not its admin).
async fn add_users(
    conn: &mut AnyConnection,
    device: i64,
    class: &str,
    admin: i64,
    users: &[i64],
) -> Result<(), HandlerError> {
    let links: Vec<(&str, i64)> = users
        .iter()
        .filter(|u| **u != admin)
        .map(|u| ("USER", *u))
        .collect();
    insert_links(conn, class, device, &links).await
}

/// `change_device`: every field given; `[old, new]` recorded for each that changed.
pub async fn change(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let o = plan::change_of(ctx.memo, ctx.order)?;
    let target = resolve_host_memo(ctx.conn, ctx.memo, o.host.as_str())
        .await?
        .ok_or_else(|| {
            failed(format!(
                "host `{}` vanished between check and execution",
                o.host
            ))
        })?;
    let device = target.device;
    let (row, locked_now) = lock_device(ctx, device).await?;
    // The device's ports as they are now that it is locked: on PostgreSQL a
    // concurrent order may have changed them since the checks read them,
    // unless the device was locked before (SQLite's write transaction has
    // been exclusive since its start).
    if locked_now && plan::is_postgres(ctx.conn) {
        ctx.memo.remove(&plan::ports_memo(device));
    }
    let plan = plan::plan(ctx.conn, ctx.memo, ctx.order)
        .await?
        .ok_or_else(|| failed("the order's fields do not parse"))?;
    if let Some((field, message)) = plan.problems.first() {
        return Err(failed(format!("{field}: {message}")));
    }

    // device columns
    let columns: [(&str, &str, Option<String>); 8] = [
        ("label", "DV_LABEL", o.label.as_ref().map(label_of)),
        (
            "dv_class",
            "DV_CLASS",
            o.dv_class.map(|c| c.name().to_owned()),
        ),
        ("dv_type", "TYPE", o.dv_type.clone()),
        ("serial", "SERIAL", o.serial.clone()),
        (
            "geb",
            "DV_BUILDING",
            o.geb.as_ref().map(|g| g.as_str().to_owned()),
        ),
        (
            "raum",
            "DV_ROOM",
            o.raum.as_ref().map(|r| r.as_str().to_owned()),
        ),
        ("org", "DV_LOC_ORG", o.org.clone()),
        (
            "persdata",
            "PERSDATA",
            o.persdata.map(|b| yes_no(b).to_owned()),
        ),
    ];
    let mut class = row[1].clone().unwrap_or_else(|| "OTHER".to_owned());
    for (i, (field, column, new)) in columns.into_iter().enumerate() {
        let Some(new) = new else { continue };
        let old: Option<String> = row[i].clone();
        if old.as_deref() == Some(new.as_str()) {
            continue;
        }
        // column names come from the fixed list above
        sqlx::query(&format!(
            "UPDATE x_device SET {column} = $1 WHERE DV_OBJ_ID = $2"
        ))
        .bind(&new)
        .bind(device)
        .execute(&mut *ctx.conn)
        .await?;
        if field == "dv_class" {
            sqlx::query("UPDATE x_link SET CLASS_H = $1 WHERE OBJ_ID_H = $2")
                .bind(&new)
                .bind(device)
                .execute(&mut *ctx.conn)
                .await?;
            class.clone_from(&new);
        }
        ctx.order.record_change(field, old, new);
    }

    // admin and users
    let old_admin = if o.admin.is_some() || o.users.is_some() {
        super::device_admin(ctx.conn, device).await?
    } else {
        None
    };
    let mut admin = old_admin.unwrap_or(-1);
    if let Some(new) = &o.admin {
        let new: i64 = new
            .as_str()
            .parse()
            .map_err(|_| failed("admin is no PERS_KEY"))?;
        if Some(new) != old_admin {
            sqlx::query("DELETE FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'ADMIN'")
                .bind(device)
                .execute(&mut *ctx.conn)
                .await?;
            sqlx::query("INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES ($1, $2, 'ADMIN', $3)")
                .bind(&class)
                .bind(device)
                .bind(new)
                .execute(&mut *ctx.conn)
                .await?;
            ctx.order
                .record_change("admin", old_admin.map(|a| a.to_string()), new.to_string());
            admin = new;
            // A deputyship for the device handed on its admin's rights: it
            // ends with the admin's tenure (thesis rule 3).
            let deputies: Vec<i64> = sqlx::query_scalar(
                "SELECT DEPUTY FROM auftrag_deputies WHERE DEVICE = $1 ORDER BY DEPUTY",
            )
            .bind(device)
            .fetch_all(&mut *ctx.conn)
            .await?;
            if !deputies.is_empty() {
                sqlx::query("DELETE FROM auftrag_deputies WHERE DEVICE = $1")
                    .bind(device)
                    .execute(&mut *ctx.conn)
                    .await?;
                let names: Vec<String> = deputies.iter().map(i64::to_string).collect();
                ctx.order
                    .record_change("deputies", names, Vec::<String>::new());
            }
        }
    }
    if o.users.is_some() || o.admin.is_some() {
        let old_users = current_users(ctx.conn, device).await?;
        let new_users: Vec<i64> = match &o.users {
            Some(u) => user_keys(Some(u))?,
            None => old_users.clone(),
        }
        .into_iter()
        .filter(|u| *u != admin)
        .collect();
        if new_users != old_users {
            set_users(ctx.conn, device, &class, admin, &new_users).await?;
            let s = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>();
            ctx.order
                .record_change("users", s(&old_users), s(&new_users));
        }
    }

    // interfaces
    let before = plan::device_ports_memo(ctx.conn, ctx.memo, device).await?;
    for port in &plan.removed_ports {
        delete_port(ctx.conn, device, *port).await?;
    }
    for iface in &plan.ifaces {
        match iface.port {
            Some(port) => {
                let current = before
                    .iter()
                    .find(|p| p.port == port)
                    .ok_or_else(|| failed(format!("interface {port} vanished")))?;
                change_port(ctx, &o, current, iface).await?;
            }
            None => {
                insert_port(ctx.conn, device, &class, iface).await?;
            }
        }
    }
    // Only what the order touched can break an invariant: the device is
    // locked (SQLite: the transaction is exclusive), and its invariants held
    // when it was locked.
    let touches_invariants = o.admin.is_some()
        || !plan.removed_ports.is_empty()
        || plan
            .ifaces
            .iter()
            .any(|i| i.port.is_none() || i.aliases_changed || i.addr_changed);
    if touches_invariants {
        // the interface's deferred update first: what follows reads it
        ctx.flush().await?;
    }
    if !plan.removed_ports.is_empty() || plan.ifaces.iter().any(|i| i.port.is_none()) {
        let after = device_ports(ctx.conn, device).await?;
        let names = |ports: &[PortRow]| ports.iter().map(port_json).collect::<Vec<_>>();
        ctx.order
            .record_change("interfaces", names(&before), names(&after));
    }
    if touches_invariants {
        verify_device(ctx.conn, device).await?;
    }
    Ok(())
}

/// Applies the changes of the host interface.
async fn change_port(
    ctx: &mut ActionCtx<'_>,
    o: &ChangeDevice,
    current: &PortRow,
    iface: &Iface,
) -> Result<(), HandlerError> {
    let port = current.port;
    // The old values as read after the device was locked (see `change`):
    // every order that changes this interface holds that lock first.
    let old_hwa = current.hwa.clone();
    let old_ipv4 = current.ipv4.clone();
    let old_net = current.net;
    let old_ssh = current.ssh.clone();
    let old_type = current.v6_type.clone();
    let old_gua = current.gua.clone();
    let old_lla = current.lla.clone();

    let mut set: Vec<(&str, Option<String>)> = Vec::new();
    if o.hwa.is_some() {
        let new = normalize_mac(&iface.hwa);
        if old_hwa.as_deref() != Some(new.as_str()) {
            set.push(("HARDW_ADDR", Some(new.clone())));
            ctx.order.record_change("hwa", old_hwa.clone(), new);
        }
    }
    if o.net.is_some()
        && let Some(subnet) = &iface.subnet
        && old_net != Some(subnet.id)
    {
        set.push(("NET_OBJ_ID", Some(subnet.id.to_string())));
        let old = match old_net {
            Some(id) => plan::subnet_by_id_memo(ctx.conn, ctx.memo, id)
                .await?
                .map(|s| s.net.to_string()),
            None => None,
        };
        ctx.order.record_change("net", old, subnet.net.to_string());
    }
    if o.ipv4.is_some() {
        let new = iface.ipv4.map(|ip| ip.to_string());
        if new != old_ipv4 {
            set.push(("PT_DEV_ADDR", new.clone()));
            ctx.order.record_change("ipv4", old_ipv4.clone(), new);
        }
    }
    if let Some(ssh) = o.ssh {
        let new = yes_no(ssh).to_owned();
        if old_ssh.as_deref() != Some(new.as_str()) {
            set.push(("SSH", Some(new.clone())));
            ctx.order.record_change("ssh", old_ssh.clone(), new);
        }
    }
    if iface.v6_changed {
        let (gua, lla) = iface.ipv6_addresses().map_err(failed)?;
        let new_type = gua
            .and(iface.v6_type.unwrap_or(plan::V6Type::Eui64).column())
            .map(str::to_owned);
        let new_gua = gua.map(|a| a.to_string());
        let new_lla = lla.map(|a| a.to_string());
        if new_type != old_type {
            set.push(("INET6_ADDR_TYPE", new_type.clone()));
            ctx.order
                .record_change("inet6_addr_type", old_type.clone(), new_type);
        }
        if new_gua != old_gua {
            set.push(("GUA", new_gua.clone()));
            ctx.order.record_change("ipv6", old_gua.clone(), new_gua);
        }
        if new_lla != old_lla {
            set.push(("LLA", new_lla));
        }
    }
    if !set.is_empty() {
        // one statement, sent with the order's row (`change` flushes it when
        // it reads the interfaces again); the column names come from the
        // fixed list above
        let writes = ctx.defer();
        let assignments: Vec<String> = set
            .into_iter()
            .map(|(column, value)| {
                let v = writes.arg(value);
                match column {
                    "NET_OBJ_ID" => format!("{column} = CAST({v} AS BIGINT)"),
                    _ => format!("{column} = {v}"),
                }
            })
            .collect();
        let p = writes.arg(port);
        writes.push(format!(
            "UPDATE x_port SET {} WHERE PT_OBJ_ID = {p}",
            assignments.join(", ")
        ));
    }
    if iface.aliases_changed {
        let old = current.alias_names();
        for (name, domain) in
            sqlx::query("SELECT DN_NAME, DOMAIN FROM n_devname WHERE PT_OBJ_ID = $1")
                .bind(port)
                .fetch_all(&mut *ctx.conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        {
            let full = format!("{name}.{domain}").to_ascii_lowercase();
            match iface.aliases.iter().find(|(a, _)| a.as_str() == full) {
                None => {
                    sqlx::query("DELETE FROM n_devname WHERE DN_NAME = $1 AND DOMAIN = $2")
                        .bind(&name)
                        .bind(&domain)
                        .execute(&mut *ctx.conn)
                        .await?;
                }
                Some((_, canonical)) => {
                    sqlx::query(
                        "UPDATE n_devname SET CANONICAL = $1 WHERE DN_NAME = $2 AND DOMAIN = $3",
                    )
                    .bind(yes_no(*canonical))
                    .bind(&name)
                    .bind(&domain)
                    .execute(&mut *ctx.conn)
                    .await?;
                }
            }
        }
        for alias in &iface.new_aliases {
            let canonical = iface.aliases.iter().any(|(a, c)| a == alias && *c);
            insert_aliases(ctx.conn, &[(port, alias, canonical)]).await?;
        }
        let new: Vec<String> = iface
            .aliases
            .iter()
            .map(|(a, c)| {
                if *c {
                    format!("{a} (canonical)")
                } else {
                    a.to_string()
                }
            })
            .collect();
        let old: Vec<String> = old
            .iter()
            .zip(&current.aliases)
            .map(|(a, (_, _, c))| {
                if *c {
                    format!("{a} (canonical)")
                } else {
                    a.clone()
                }
            })
            .collect();
        if old != new {
            ctx.order.record_change("aliases", old, new);
        }
    }
    Ok(())
}

/// `delete_device`: the device with its ports, aliases, links and the
/// deputyships for it alone.
pub async fn delete(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    let o = DeleteDevice::from_order(ctx.order)?;
    let target = resolve_host_memo(ctx.conn, ctx.memo, o.host.as_str())
        .await?
        .ok_or_else(|| {
            failed(format!(
                "host `{}` vanished between check and execution",
                o.host
            ))
        })?;
    let device = target.device;
    let row = lock_device(ctx, device).await?.0;
    // as the policy resolvers read them with the device's facts (PostgreSQL)
    let ports = plan::device_ports_memo(ctx.conn, ctx.memo, device).await?;
    let kept = removed_data(ctx.conn, device).await?;
    // Sent with the order's row, set-based: aliases, then ports (aliases
    // reference them), then links, deputyships for the device alone and the
    // device.
    let writes = ctx.defer();
    let d = writes.arg(device);
    for sql in [
        format!(
            "DELETE FROM n_devname WHERE PT_OBJ_ID IN \
             (SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = {d} AND CLASS_L = 'PORT')"
        ),
        format!(
            "DELETE FROM x_port WHERE PT_OBJ_ID IN \
             (SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = {d} AND CLASS_L = 'PORT')"
        ),
        format!("DELETE FROM x_link WHERE OBJ_ID_H = {d}"),
        format!("DELETE FROM auftrag_deputies WHERE DEVICE = {d}"),
        format!("DELETE FROM x_device WHERE DV_OBJ_ID = {d}"),
    ] {
        writes.push(sql);
    }
    // What is removed, in the fields of `register_device`, so that the
    // deletion can be rolled back (`super::rollback`): the device's data,
    // its admin and users, its interfaces with their aliases, and the
    // deputyships that end with it.
    ctx.order.record_change("device", device, Value::Null);
    let columns = [
        "label", "dv_class", "dv_type", "serial", "geb", "raum", "org", "persdata",
    ];
    for (field, value) in columns.into_iter().zip(row.iter()) {
        if let Some(value) = value {
            ctx.order.record_change(field, value.clone(), Value::Null);
        }
    }
    if let Some(arrival) = kept.arrival {
        ctx.order.record_change("arrival", arrival, Value::Null);
    }
    if let Some(admin) = kept.admin {
        ctx.order.record_change("admin", admin, Value::Null);
    }
    if !kept.users.is_empty() {
        ctx.order.record_change("users", kept.users, Value::Null);
    }
    if !kept.deputies.is_empty() {
        ctx.order
            .record_change("deputies", kept.deputies, Value::Null);
    }
    ctx.order.record_change(
        "interfaces",
        ports.iter().map(interface_record).collect::<Vec<_>>(),
        Value::Null,
    );
    Ok(())
}

/// What a deletion removes besides the device row and its ports.
#[derive(Default)]
struct Removed {
    arrival: Option<String>,
    admin: Option<String>,
    users: Vec<String>,
    /// `{"deputy", "until"}` of the deputyships for the device alone.
    deputies: Vec<Value>,
}

/// Reads the device's ADMIN and USER links, its arrival day and its
/// deputyships, in one query.
async fn removed_data(conn: &mut AnyConnection, device: i64) -> Result<Removed, HandlerError> {
    let rows = sqlx::query(
        "SELECT CLASS_L, CAST(OBJ_ID_L AS TEXT), NULL FROM x_link \
           WHERE OBJ_ID_H = $1 AND CLASS_L IN ('ADMIN', 'USER') \
         UNION ALL SELECT 'ARRIVAL', ARRIVAL, NULL FROM x_device WHERE DV_OBJ_ID = $1 \
         UNION ALL SELECT 'DEPUTY', CAST(DEPUTY AS TEXT), UNTIL FROM auftrag_deputies WHERE DEVICE = $1 \
         ORDER BY 1, 2",
    )
    .bind(device)
    .fetch_all(&mut *conn)
    .await?;
    let mut removed = Removed::default();
    for r in &rows {
        let kind: String = r.try_get(0)?;
        let value: Option<String> = r.try_get(1)?;
        let until: Option<String> = r.try_get(2)?;
        match (kind.as_str(), value) {
            ("ADMIN", Some(v)) => removed.admin = Some(v),
            ("USER", Some(v)) => removed.users.push(v),
            ("ARRIVAL", v) => removed.arrival = v,
            ("DEPUTY", Some(v)) => removed.deputies.push(json!({"deputy": v, "until": until})),
            _ => {}
        }
    }
    removed
        .users
        .sort_by_key(|u| u.parse::<i64>().unwrap_or(i64::MAX));
    Ok(removed)
}

/// An interface as `register_device` takes it (`interfaces[]`): subnet,
/// addresses, SSH, how its IPv6 address is made and its aliases.
fn interface_record(p: &PortRow) -> Value {
    let mut record = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            record.insert(k.to_owned(), Value::String(v));
        }
    };
    put("net", p.subnet.as_ref().map(|s| s.net.to_string()));
    put("ipv4", p.ipv4.clone());
    put("hwa", p.hwa.clone());
    put("ssh", p.ssh.clone());
    // the column says EUI64 or 4to6; an address without one was given by hand
    match (&p.v6_type, &p.gua) {
        (Some(t), _) => put("inet6_addr_type", Some(t.clone())),
        (None, Some(gua)) => {
            put("inet6_addr_type", Some("manual".to_owned()));
            put("ipv6", Some(gua.clone()));
        }
        (None, None) => {}
    }
    let aliases: Vec<Value> = p
        .aliases
        .iter()
        .map(|(name, domain, canonical)| {
            json!({"name": format!("{name}.{domain}"), "canonical": yes_no(*canonical)})
        })
        .collect();
    record.insert("aliases".to_owned(), Value::Array(aliases));
    Value::Object(record)
}

/// `name_deputy`: see [`super::deputies::name`].
pub async fn name_deputy(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
    super::deputies::name(ctx).await
}

//! The checks of register, change, delete and deputy orders (thesis §2,
//! issue 4), named in `definitions/checks.xml` and re-exported by
//! [`super::checks`]. Interface checks judge the [`Plan`]: the interfaces
//! as the order would leave them.
//!
//! Checks that guard uniqueness (IPv4, alias, host name) first take the
//! order's advisory locks ([`plan::lock_keys`]), so that on PostgreSQL two
//! orders for the same address are checked one after the other, each seeing
//! what the other committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use auftrag_engine::HandlerError;
use auftrag_engine::context::CheckCtx;
use auftrag_engine::defs::Stage;
use auftrag_engine::types::{Date, Hostname, PersonRef};
use auftrag_macros::check;

use super::checks::{normalize_mac, parse_mac};
use super::plan::{self, Plan, USAGE_MEMO, Usage, Wanted, label_of, person_memo, split_alias};
use super::resolve_host_memo;
use auftrag_junet_types::{ChangeDevice, EndDeputy, RegisterDevice};

/// The order's plan, built once per transaction (the checks share it, a
/// registration's execution reuses it) right after the first check asks;
/// building it takes the order's locks, so every check reads after a
/// concurrent order with the same keys has committed. What the checks need
/// to know about the values the order introduces is read with it, in one
/// query ([`Usage`]); for a registration, whose values are all in its
/// fields, that query also brings the plan's subnets and the new device's
/// object ids, before the plan is built.
async fn plan_of(ctx: &mut CheckCtx<'_>) -> Result<Option<Arc<Plan>>, HandlerError> {
    if let Some(plan) = ctx.memo.get::<Option<Arc<Plan>>>(plan::PLAN_MEMO) {
        return Ok((*plan).clone());
    }
    // The values a registration or a change introduces are all in its
    // fields: lock them, then read in one query what the checks and the
    // plan need (who uses the values, the subnets, the persons named; a
    // change's ports, a registration's new ids), then build the plan.
    let wanted = match ctx.order.order_type.name {
        RegisterDevice::NAME => plan::registration(&mut ctx.memo, ctx.order).ok().map(|o| {
            let mut wanted = Wanted::of_registration(&o, ctx.order);
            if ctx.stage == Stage::Engine {
                wanted.ids = Some(o.interfaces.len());
            }
            wanted
        }),
        ChangeDevice::NAME => match plan::change_of(&mut ctx.memo, ctx.order) {
            Ok(o) => {
                let mut wanted = Wanted::of_change(&o, ctx.order);
                if let Some(target) =
                    resolve_host_memo(ctx.conn, &mut ctx.memo, o.host.as_str()).await?
                    && ctx
                        .memo
                        .get::<Vec<plan::PortRow>>(&plan::ports_memo(target.device))
                        .is_none()
                {
                    wanted.ports_of = Some(target.device);
                }
                Some(wanted)
            }
            Err(_) => None,
        },
        _ => None,
    };
    // (the policy resolvers may have read them already, with the device)
    if let Some(wanted) = &wanted
        && ctx.memo.get::<Usage>(USAGE_MEMO).is_none()
    {
        if ctx.memo.get::<()>(plan::KEYS_LOCKED).is_none() {
            plan::lock_keys(ctx.conn, ctx.stage, wanted.lock_keys()).await?;
        }
        load_usage(ctx, wanted).await?;
    }
    let plan = plan::plan(ctx.conn, &mut ctx.memo, ctx.order)
        .await?
        .map(Arc::new);
    ctx.memo.put(plan::PLAN_MEMO, plan.clone());
    Ok(plan)
}

async fn load_usage(ctx: &mut CheckCtx<'_>, wanted: &Wanted) -> Result<(), HandlerError> {
    let usage = Usage::load(ctx.conn, &mut ctx.memo, wanted).await?;
    plan::remember_usage(&mut ctx.memo, usage);
    Ok(())
}

/// Who uses the values the order introduces, read with the plan.
pub(crate) async fn usage_of(ctx: &mut CheckCtx<'_>) -> Result<Option<Arc<Usage>>, HandlerError> {
    plan_of(ctx).await?;
    Ok(ctx.memo.get::<Usage>(USAGE_MEMO))
}

/// The names of `users` other than `replaced`, for a message; `None` when
/// there are none.
pub(crate) async fn others_named(
    conn: &mut sqlx::AnyConnection,
    users: &[i64],
    replaced: &[i64],
) -> Result<Option<String>, HandlerError> {
    let others: Vec<i64> = users
        .iter()
        .copied()
        .filter(|p| !replaced.contains(p))
        .collect();
    if others.is_empty() {
        Ok(None)
    } else {
        Ok(Some(port_names(conn, &others).await?))
    }
}

async fn locked_plan(ctx: &mut CheckCtx<'_>) -> Result<Option<Arc<Plan>>, HandlerError> {
    plan_of(ctx).await
}

/// The canonical names of ports, for messages.
async fn port_names(conn: &mut sqlx::AnyConnection, ports: &[i64]) -> Result<String, HandlerError> {
    let mut names = Vec::new();
    for port in ports {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT MIN(DN_NAME || '.' || DOMAIN) FROM n_devname WHERE PT_OBJ_ID = $1 AND CANONICAL = 'Y'",
        )
        .bind(port)
        .fetch_one(&mut *conn)
        .await?;
        names.push(name.unwrap_or_else(|| format!("port {port}")));
    }
    Ok(names.join(", "))
}

/// The order's contradictions: interfaces or aliases to remove that the
/// device lacks, removing every interface, moving without a new address.
#[check]
pub async fn check_change_consistent(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    if let Some(plan) = plan_of(ctx).await? {
        for (field, message) in &plan.problems {
            ctx.report_field(field, message.clone());
        }
    }
    Ok(())
}

/// Every interface's subnet is a JuNet subnet, and has IPv4 on when the
/// interface gets an IPv4 address.
#[check]
pub async fn check_subnet(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    for i in plan.ifaces.iter().filter(|i| i.addr_changed) {
        match &i.subnet {
            None => ctx.report_field(
                &i.field("net"),
                format!(
                    "{} is not a subnet of JuNet (n_netname); give the range of an existing subnet",
                    i.net
                ),
            ),
            Some(s) if !s.v4_on && i.ipv4.is_some() => ctx.report_field(
                &i.field("ipv4"),
                format!("subnet {} has IPv4 off; leave ipv4 empty", s.net),
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The IPv4 address lies inside the interface's subnet and is neither its
/// network nor its broadcast address.
#[check]
pub async fn check_ipv4_in_subnet(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    for i in plan.ifaces.iter().filter(|i| i.addr_changed) {
        let Some(ip) = i.ipv4 else { continue };
        let net = i.net;
        let message = if !net.contains(&ip) {
            Some(format!("{ip} is not inside the subnet {net}"))
        } else if net.prefix_len() < 31 && ip == net.network() {
            Some(format!("{ip} is the network address of {net}"))
        } else if net.prefix_len() < 31 && ip == net.broadcast() {
            Some(format!("{ip} is the broadcast address of {net}"))
        } else {
            None
        };
        if let Some(m) = message {
            ctx.report_field(&i.field("ipv4"), m);
        }
    }
    Ok(())
}

/// No other interface has the IPv4 address (nor another interface of the
/// same order).
#[check]
pub async fn check_ipv4_free(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let (Some(plan), Some(usage)) = (locked_plan(ctx).await?, usage_of(ctx).await?) else {
        return Ok(());
    };
    let replaced = plan.replaced_ports();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for i in plan.ifaces.iter().filter(|i| i.addr_changed) {
        let Some(ip) = i.ipv4 else { continue };
        let ip = ip.to_string();
        if let Some(first) = seen.get(&ip) {
            ctx.report_field(
                &i.field("ipv4"),
                format!("{ip} is given twice in this order (also {first})"),
            );
            continue;
        }
        seen.insert(ip.clone(), i.field("ipv4"));
        let users = usage.users("ipv4", &ip).unwrap_or_default().to_vec();
        if let Some(names) = others_named(ctx.conn, &users, &replaced).await? {
            ctx.report_field(&i.field("ipv4"), format!("{ip} is already used by {names}"));
        }
    }
    Ok(())
}

/// The hardware address of a new interface names an interface (not the
/// all-zero or a group address, which parse but no interface has).
#[check]
pub async fn check_interface_hwa(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    for i in plan.ifaces.iter().filter(|i| !i.path.is_empty()) {
        if let Err(m) = parse_mac(&i.hwa.to_string()) {
            ctx.report_field(&i.field("hwa"), m);
        }
    }
    Ok(())
}

/// No other interface has the hardware address of a new interface. (The
/// same device can sit at two sites: a warning in the engine, an error in
/// the portal.)
#[check]
pub async fn check_interface_hwa_unique(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let (Some(plan), Some(usage)) = (plan_of(ctx).await?, usage_of(ctx).await?) else {
        return Ok(());
    };
    let replaced = plan.replaced_ports();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for i in plan.ifaces.iter().filter(|i| !i.path.is_empty()) {
        let mac = normalize_mac(&i.hwa);
        if let Some(first) = seen.get(&mac) {
            ctx.report_field(
                &i.field("hwa"),
                format!("hardware address {mac} is given twice in this order (also {first})"),
            );
            continue;
        }
        seen.insert(mac.clone(), i.field("hwa"));
        let users = usage.users("mac", &mac).unwrap_or_default().to_vec();
        if let Some(names) = others_named(ctx.conn, &users, &replaced).await? {
            ctx.report_field(
                &i.field("hwa"),
                format!("hardware address {mac} is already used by {names}"),
            );
        }
    }
    Ok(())
}

/// Every alias the order adds is fully qualified and exists nowhere else in
/// the network (`n_devname`'s key is name and domain).
#[check]
pub async fn check_alias_unique(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let (Some(plan), Some(usage)) = (locked_plan(ctx).await?, usage_of(ctx).await?) else {
        return Ok(());
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for i in &plan.ifaces {
        for alias in &i.new_aliases {
            let field = i.field("aliases");
            let Some((name, domain)) = split_alias(alias) else {
                ctx.report_field(
                    &field,
                    format!("alias `{alias}` is not fully qualified; write name and domain, e.g. {alias}.zam.kfa-juelich.de"),
                );
                continue;
            };
            if let Some(first) = seen.get(alias.as_str()) {
                ctx.report_field(
                    &field,
                    format!("alias `{alias}` is given twice in this order (also in {first})"),
                );
                continue;
            }
            seen.insert(alias.to_string(), field.clone());
            // an alias the order removes from this interface may come back
            if plan
                .removed_aliases
                .contains(&(name.clone(), domain.clone()))
            {
                continue;
            }
            let owner: Option<i64> = usage
                .users("alias", alias.as_str())
                .and_then(|u| u.first().copied());
            match owner {
                Some(port) if Some(port) == i.port => ctx.report_field(
                    &field,
                    format!("`{alias}` is already an alias of this interface"),
                ),
                Some(port) if !plan.removed_ports.contains(&port) => {
                    let names = port_names(ctx.conn, &[port]).await?;
                    ctx.report_field(
                        &field,
                        format!("alias `{alias}` is already used by {names}; an alias exists once in the whole network"),
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every interface the order creates or whose aliases it changes has
/// exactly one canonical alias.
#[check]
pub async fn check_canonical_alias(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    for i in plan.ifaces.iter().filter(|i| i.aliases_changed) {
        let canonical: Vec<&str> = i
            .aliases
            .iter()
            .filter(|(_, c)| *c)
            .map(|(a, _)| a.as_str())
            .collect();
        match canonical.len() {
            1 => {}
            0 if i.aliases.is_empty() => ctx.report_field(
                &i.field("aliases"),
                "an interface needs at least one alias, its canonical name".to_owned(),
            ),
            0 => ctx.report_field(
                &i.field("aliases"),
                "no alias is marked canonical; mark exactly one with \"canonical\": \"Y\"".to_owned(),
            ),
            _ => ctx.report_field(
                &i.field("aliases"),
                format!(
                    "{} aliases are marked canonical ({}); an interface has exactly one canonical name",
                    canonical.len(),
                    canonical.join(", ")
                ),
            ),
        }
    }
    Ok(())
}

/// A device has one interface per subnet.
#[check]
pub async fn check_one_interface_per_subnet(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    let mut taken: BTreeMap<i64, String> = BTreeMap::new();
    for (port, net) in &plan.kept_ports {
        if let Some(net) = net {
            taken.insert(*net, format!("port {port}"));
        }
    }
    for i in &plan.ifaces {
        let Some(subnet) = &i.subnet else { continue };
        match taken.get(&subnet.id) {
            Some(other) => {
                let other = match other
                    .strip_prefix("port ")
                    .and_then(|p| p.parse::<i64>().ok())
                {
                    Some(port) => port_names(ctx.conn, &[port]).await?,
                    None => other.clone(),
                };
                ctx.report_field(
                    &i.field("net"),
                    format!(
                        "the device already has an interface in subnet {} ({other}); a device has one interface per subnet",
                        subnet.net
                    ),
                );
            }
            None => {
                taken.insert(subnet.id, i.field("net"));
            }
        }
    }
    Ok(())
}

/// When the subnet has IPv6 on, the interface's address comes from the
/// subnet prefix and the EUI-64 of the MAC or the IPv4 (4to6); an address
/// given by hand (manual) must lie inside the prefix and be free. When the
/// subnet has IPv6 off, the order gives no IPv6 settings.
#[check]
pub async fn check_ipv6(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(plan) = plan_of(ctx).await? else {
        return Ok(());
    };
    let replaced = plan.replaced_ports();
    for i in plan.ifaces.iter().filter(|i| i.v6_changed) {
        let Some(subnet) = &i.subnet else { continue };
        let explicit = i.path.is_empty() && ctx.order.is_filled("inet6_addr_type")
            || !i.path.is_empty() && i.v6_type.is_some();
        if !subnet.v6_on {
            if i.ipv6.is_some() && (!i.path.is_empty() || ctx.order.is_filled("ipv6")) {
                ctx.report_field(
                    &i.field("ipv6"),
                    format!("subnet {} has IPv6 off; leave ipv6 empty", subnet.net),
                );
            } else if explicit {
                ctx.report_field(
                    &i.field("inet6_addr_type"),
                    format!(
                        "subnet {} has IPv6 off; leave inet6_addr_type empty",
                        subnet.net
                    ),
                );
            }
            continue;
        }
        let kind = i.v6_type.unwrap_or(plan::V6Type::Eui64);
        match i.ipv6_addresses() {
            Err(m) => ctx.report_field(
                &i.field(if kind == plan::V6Type::Manual {
                    "ipv6"
                } else {
                    "inet6_addr_type"
                }),
                m,
            ),
            Ok((Some(gua), _)) => {
                if kind != plan::V6Type::Manual
                    && let Some(given) = i.ipv6
                    && given != gua
                {
                    ctx.report_field(
                        &i.field("ipv6"),
                        format!(
                            "{given} is not the {} address of this interface, which is {gua}; leave ipv6 empty or choose inet6_addr_type manual",
                            kind.name()
                        ),
                    );
                    continue;
                }
                let users: Vec<i64> =
                    sqlx::query_scalar("SELECT PT_OBJ_ID FROM x_port WHERE GUA = $1")
                        .bind(gua.to_string())
                        .fetch_all(&mut *ctx.conn)
                        .await?;
                if let Some(names) = others_named(ctx.conn, &users, &replaced).await? {
                    ctx.report_field(
                        &i.field("ipv6"),
                        format!("IPv6 address {gua} is already used by {names}"),
                    );
                }
            }
            Ok((None, _)) => {}
        }
    }
    Ok(())
}

/// The device label a registration or a change sets is free.
#[check(field = "hostname")]
pub async fn check_label_free(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(host) = ctx.typed::<Hostname>() else {
        return Ok(());
    };
    let label = label_of(&host);
    // building the plan takes all of the order's keys at once
    if plan_of(ctx).await?.is_none() {
        plan::lock_keys(ctx.conn, ctx.stage, vec![format!("host:{label}")]).await?;
    }
    let own = match ctx.order.text("host").map(str::to_owned) {
        Some(h) if ctx.field == Some("label") => resolve_host_memo(ctx.conn, &mut ctx.memo, &h)
            .await?
            .map(|t| t.device),
        _ => None,
    };
    let known = usage_of(ctx)
        .await?
        .and_then(|u| u.users("label", &label).map(<[i64]>::to_vec));
    let users: Vec<i64> = match known {
        Some(users) => users,
        None => {
            sqlx::query_scalar("SELECT DV_OBJ_ID FROM x_device WHERE LOWER(DV_LABEL) = $1")
                .bind(&label)
                .fetch_all(&mut *ctx.conn)
                .await?
        }
    };
    if users.iter().any(|d| Some(*d) != own) {
        ctx.report(format!(
            "the device label `{label}` is already taken; choose another host name"
        ));
    }
    Ok(())
}

async fn person_exists(ctx: &mut CheckCtx<'_>, person: &PersonRef) -> Result<bool, HandlerError> {
    let Ok(key) = person.as_str().parse::<i64>() else {
        return Ok(false);
    };
    if let Some(org) = ctx.memo.get::<Option<Option<String>>>(&person_memo(key)) {
        return Ok(org.is_some());
    }
    let org: Option<Option<String>> =
        sqlx::query_scalar("SELECT ORG FROM d_pers WHERE PERS_KEY = $1")
            .bind(key)
            .fetch_optional(&mut *ctx.conn)
            .await?;
    let found = org.is_some();
    ctx.memo.put(person_memo(key), org);
    Ok(found)
}

/// The person a field names (admin, deputy) — or every person of a list
/// (users) — exists in `d_pers`.
#[check(field = "person")]
pub async fn check_person_exists(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let Some(field) = ctx.field else {
        return Ok(());
    };
    // a registration's or change's plan looks the persons up with the rest
    plan_of(ctx).await?;
    let persons: Vec<(String, PersonRef)> = match ctx.order.fields.get(field) {
        Some(serde_json::Value::Array(_)) => ctx
            .order
            .typed::<Vec<PersonRef>>(field)
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("{field}[{i}]"), p))
            .collect(),
        _ => ctx
            .typed::<PersonRef>()
            .map(|p| (field.to_owned(), p))
            .into_iter()
            .collect(),
    };
    for (path, person) in persons {
        if let Err(why) = super::canonical_person(person.as_str()) {
            ctx.report_field(&path, why);
            continue;
        }
        if !person_exists(ctx, &person).await? {
            ctx.report_field(
                &path,
                format!("there is no person {person} in the person database (d_pers)"),
            );
        }
    }
    Ok(())
}

/// A deputyship is for one device (`host`), all devices the requester
/// administers (scope `my_devices`) or an org unit (`org`): one of them,
/// said by `scope` or by exactly one of host and org (neither is refused
/// rather than guessed); `org` is trimmed, and one of only spaces is none.
/// It ends today or later; nobody deputises for themselves. `end_deputy`
/// ends a deputyship the deputy has for the scope, at an earlier day
/// (`until`) or now.
#[check]
pub async fn check_deputyship(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
    let order = ctx.order;
    let mut problems = 0;
    let mut report = |ctx: &mut CheckCtx<'_>, field: &str, message: &str| {
        problems += 1;
        ctx.report_field(field, message);
    };
    let host = order.text("host").is_some_and(|h| !h.trim().is_empty());
    let org = super::order_org(order).is_some();
    let ending = order.order_type.name == EndDeputy::NAME;
    match order.text("scope") {
        Some("device") => {
            if !host {
                report(ctx, "host", "scope `device` needs the device's host");
            }
            if org {
                report(ctx, "org", "scope `device` is one device: give no org");
            }
        }
        Some("org") => {
            if !org {
                report(ctx, "org", "scope `org` needs the org unit");
            }
            if host {
                report(
                    ctx,
                    "host",
                    "scope `org` is every device of the org unit: give no host",
                );
            }
        }
        Some("my_devices") if host || org => {
            report(
                ctx,
                if host { "host" } else { "org" },
                "scope `my_devices` is all devices you administer: give neither host nor org",
            );
        }
        Some("my_devices") => {}
        _ if host && org => report(
            ctx,
            "org",
            "give either host (one device) or org (an organisation unit), not both",
        ),
        _ if !host && !org => report(
            ctx,
            "scope",
            "say which deputyship: `host` for one device, `org` for an org unit \
             (scope `org`), or scope `my_devices` for all devices you administer",
        ),
        _ => {}
    }
    let deputy = order.text("deputy").unwrap_or_default();
    if !ending && deputy == order.requester {
        report(ctx, "deputy", "a person cannot be their own deputy");
    }
    let until = order.typed::<Date>("until").ok().flatten();
    let today: Date = time::OffsetDateTime::now_utc().date();
    if let Some(until) = until
        && until < today
    {
        report(
            ctx,
            "until",
            &format!("{until} is in the past; a deputyship ends today or later"),
        );
    }
    if !ending || problems > 0 {
        return Ok(());
    }
    let Some(key) = super::pers_key(deputy) else {
        return Ok(()); // check_person_exists says why
    };
    let rows = match super::deputies::rows_of(ctx.conn, &mut ctx.memo, ctx.order).await? {
        Ok(rows) => rows,
        // check_host_exists says it for a host
        Err(_) if host => return Ok(()),
        Err(why) => {
            ctx.report_field("scope", why);
            return Ok(());
        }
    };
    let ends = super::deputies::ends(ctx.conn, key, &rows).await?;
    match super::deputies::latest(&ends) {
        None => ctx.report_field(
            "deputy",
            format!("{deputy} has no deputyship for this scope to end"),
        ),
        Some(Some(present)) if until.is_some_and(|u| super::deputies::end_of(u) >= present) => {
            ctx.report_field(
                "until",
                format!(
                    "the deputyship ends {present} already; end_deputy only brings the end forward (name_deputy sets a later one)"
                ),
            );
        }
        Some(_) => {}
    }
    Ok(())
}

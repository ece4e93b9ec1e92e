//! Attribute resolvers (the PIP) named in `definitions/attributes.xml`: they
//! read the device database for the policy decision point.

use auftrag_engine::HandlerError;
use auftrag_engine::pdp::{PipCtx, Value};
use auftrag_macros::resolver;
use sqlx::Row;

use std::sync::Arc;

use super::plan::{self, DEVICE_COLUMNS, DeviceRow, Wanted, is_postgres, locked_memo};
use super::{pers_key, resolve_host_memo};
use auftrag_junet_types::{ChangeDevice, RegisterDevice};

/// The kept attribute (`record="yes"` in attributes.xml) that names the
/// device an order was about.
pub const RECORDED_DEVICE: &str = "resource.device";
/// … its admin and org unit then.
pub const RECORDED_ADMIN: &str = "resource.admin";
pub const RECORDED_ORG: &str = "resource.org";
use auftrag_engine::defs::Stage;

/// The device the order is about (`host`), looked up once per transaction.
/// For a stored order, the device it was about when it was decided (its
/// kept `resource.device`); a registration is about the device it makes,
/// not one that has its name already; a deputyship for an org unit or all
/// devices of the requester is about no one device.
async fn device(ctx: &mut PipCtx<'_>) -> Result<Option<i64>, HandlerError> {
    if let Some(facts) = ctx.recorded() {
        return Ok(facts
            .get(RECORDED_DEVICE)
            .and_then(serde_json::Value::as_i64));
    }
    if ctx.order.order_type.name == RegisterDevice::NAME
        || (super::is_deputyship(ctx.order)
            && !matches!(
                super::deputy_scope(ctx.order),
                Some(super::DeputyScope::Device(_))
            ))
    {
        return Ok(None);
    }
    let Some(host) = ctx.order.text("host").map(str::to_owned) else {
        return Ok(None);
    };
    Ok(resolve_host_memo(ctx.conn, &mut ctx.memo, &host)
        .await?
        .map(|t| t.device))
}

fn subject(ctx: &PipCtx<'_>) -> i64 {
    pers_key(ctx.subject).unwrap_or(-1)
}

/// What the policies read about the person asking, in one query.
#[derive(Debug, Default)]
struct Person {
    /// Has a row in `d_pers` with an org unit.
    employee: bool,
    email: Option<String>,
    /// Is the ADMIN of some device.
    admin: bool,
    /// The org units the person is IT officer of.
    itb_orgs: Vec<String>,
    staff: bool,
    /// The devices, admins (all their devices) and org units the person
    /// is a deputy for now (deputyships whose end has not passed; one for
    /// a device only while the device has the admin who handed it on).
    deputy_devices: Vec<i64>,
    deputy_admins: Vec<String>,
    deputy_orgs: Vec<String>,
}

/// Whether a deputyship with this end (`None`: open-ended) holds at `now`;
/// an end that is no RFC 3339 time holds no longer.
fn holds(until: Option<&str>, now: i64) -> bool {
    until.is_none_or(|text| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|end| now <= end.unix_timestamp())
    })
}

async fn person(ctx: &mut PipCtx<'_>) -> Result<Arc<Person>, HandlerError> {
    let key = ["junet.person:", ctx.subject].concat();
    if let Some(person) = ctx.memo.get::<Person>(&key) {
        return Ok(person);
    }
    // The host the order is about is resolved in the same round trip (the
    // resource attributes come next).
    let host = ctx
        .order
        .text("host")
        .filter(|h| {
            ctx.memo
                .get::<Option<super::Target>>(&super::host_memo(h))
                .is_none()
        })
        .map(str::to_owned);
    let mut binds = vec![subject(ctx).to_string(), ctx.subject.to_owned()];
    let host_alias = host.as_deref().map(|h| super::host_binds(h, &mut binds));
    // In the order's transaction on PostgreSQL, the advisory locks of the
    // values the order introduces are taken here too, in the next to last
    // arm: the reads of this statement may predate them, every later one
    // sees what an order that held them committed (the uniqueness checks
    // read later). The last arm then locks the device the host names
    // (`FOR UPDATE`; see `locked_device_facts`, which reads its facts in
    // the next statement).
    let in_order_tx = ctx.stage == Some(Stage::Engine) && is_postgres(ctx.conn);
    let keys = if in_order_tx {
        plan::order_lock_keys(&mut ctx.memo, ctx.order)
    } else {
        Vec::new()
    };
    let lock_device = in_order_tx && host_alias.is_some();
    let locks_from = binds.len() + 1;
    binds.extend(keys.iter().cloned());
    static TEXTS: super::Texts<(Option<bool>, usize, bool)> = super::Texts::new();
    let sql = TEXTS.get(
        (host_alias, keys.len(), lock_device),
        |&(host_alias, locks, lock_device)| person_sql(host_alias, locks_from, locks, lock_device),
    );
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b.as_str());
    }
    let rows = query.fetch_all(&mut *ctx.conn).await?;
    if !keys.is_empty() {
        ctx.memo.put(plan::KEYS_LOCKED, ());
    }
    if lock_device {
        for row in rows
            .iter()
            .filter(|r| r.try_get::<&str, _>(0).ok() == Some("device"))
        {
            let (id, json): (i64, String) = (row.try_get(3)?, row.try_get(1)?);
            let device: DeviceRow = serde_json::from_str(&json).map_err(|e| {
                HandlerError::Failed(format!("device {id} read back as `{json}`: {e}"))
            })?;
            ctx.memo.put(locked_memo(id), device);
        }
        ctx.memo.put(HOST_DEVICE_LOCKED, ());
    }
    if let Some(host) = &host {
        let target = super::host_target(&rows)?;
        ctx.memo.put(super::host_memo(host), target);
    }
    let mut p = Person::default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for row in &rows {
        let kind: String = row.try_get(0)?;
        let a: Option<String> = row.try_get(1)?;
        match kind.as_str() {
            "pers" => {
                p.employee = a.as_deref().is_some_and(|org| !org.is_empty());
                p.email = row.try_get(2)?;
            }
            "admin" => p.admin = true,
            "itb" => p.itb_orgs.extend(a),
            "staff" => p.staff = true,
            "deputy_device" | "deputy_admin" | "deputy_org" if holds(a.as_deref(), now) => {
                match kind.as_str() {
                    "deputy_device" => p.deputy_devices.extend(row.try_get::<Option<i64>, _>(3)?),
                    "deputy_admin" => p
                        .deputy_admins
                        .extend(row.try_get::<Option<i64>, _>(3)?.map(|k| k.to_string())),
                    _ => p.deputy_orgs.extend(row.try_get::<Option<String>, _>(2)?),
                }
            }
            _ => {}
        }
    }
    p.itb_orgs.sort();
    for v in [&mut p.deputy_admins, &mut p.deputy_orgs] {
        v.sort();
        v.dedup();
    }
    p.deputy_devices.sort_unstable();
    p.deputy_devices.dedup();
    Ok(ctx.memo.put(key, p))
}

/// The text of [`person`]'s statement: the person arms, then (`host_alias`
/// given) those resolving the order's host, then the advisory locks
/// (`locks` keys, parameters from `locks_from`), then, if `lock_device`,
/// the rows of the devices the host may name, locked, as JSON arrays of
/// [`DEVICE_COLUMNS`] (the host's arms are a `WITH` query then, read by
/// both).
fn person_sql(
    host_alias: Option<bool>,
    locks_from: usize,
    locks: usize,
    lock_device: bool,
) -> String {
    // (NULLs typed: PostgreSQL types a UNION's columns arm by arm)
    let mut arms = vec![
        "SELECT 'pers', ORG, EMAIL, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) FROM d_pers WHERE PERS_KEY = CAST($1 AS BIGINT)".to_owned(),
        "SELECT 'admin', NULL, NULL, NULL, NULL WHERE EXISTS \
         (SELECT 1 FROM x_link WHERE CLASS_L = 'ADMIN' AND OBJ_ID_L = CAST($1 AS BIGINT))"
            .to_owned(),
        "SELECT 'itb', ORG, NULL, NULL, NULL FROM auftrag_it_officers WHERE PERS_KEY = CAST($1 AS BIGINT)"
            .to_owned(),
        "SELECT 'staff', NULL, NULL, NULL, NULL WHERE EXISTS \
         (SELECT 1 FROM auftrag_staff WHERE person = $2)"
            .to_owned(),
        // the person's deputyships (ends filtered in Rust, see `Person`):
        // for one device while it has the admin whose rights it hands on,
        "SELECT 'deputy_device', d.UNTIL, NULL, d.DEVICE, NULL FROM auftrag_deputies d \
         CROSS JOIN x_link l WHERE d.DEPUTY = CAST($1 AS BIGINT) AND d.DEVICE IS NOT NULL \
         AND l.OBJ_ID_H = d.DEVICE AND l.CLASS_L = 'ADMIN' AND l.OBJ_ID_L = d.ADMIN"
            .to_owned(),
        // for all devices of an admin,
        "SELECT 'deputy_admin', d.UNTIL, NULL, d.NAMED_BY, NULL FROM auftrag_deputies d \
         WHERE d.DEPUTY = CAST($1 AS BIGINT) AND d.DEVICE IS NULL AND d.ORG IS NULL"
            .to_owned(),
        // for an org unit
        "SELECT 'deputy_org', d.UNTIL, d.ORG, NULL, NULL FROM auftrag_deputies d \
         WHERE d.DEPUTY = CAST($1 AS BIGINT) AND d.ORG IS NOT NULL"
            .to_owned(),
    ];
    let mut with = String::new();
    if let Some(alias) = host_alias {
        let host = super::host_arms_sql(alias, 3);
        if lock_device {
            with = format!(
                "WITH h (kind, label, nothing, device, port) AS ({}) ",
                host.join(" UNION ALL ")
            );
            arms.push("SELECT kind, label, nothing, device, port FROM h".to_owned());
        } else {
            arms.extend(host);
        }
    }
    if locks > 0 {
        let locks: Vec<String> = (locks_from..locks_from + locks)
            .map(|n| format!("pg_advisory_xact_lock(hashtextextended(${n}, 0))"))
            .collect();
        arms.push(format!(
            "SELECT 'locks', CAST(COUNT(*) AS TEXT), NULL, NULL, NULL FROM (SELECT {}) AS l",
            locks.join(", ")
        ));
    }
    if lock_device {
        // in the order of their ids: two orders whose hosts both name two
        // devices lock them in the same order
        arms.push(format!(
            "SELECT 'device', CAST(json_build_array({DEVICE_COLUMNS}) AS TEXT), NULL, DV_OBJ_ID, NULL \
             FROM (SELECT DV_OBJ_ID, {DEVICE_COLUMNS} FROM x_device \
             WHERE DV_OBJ_ID IN (SELECT device FROM h) ORDER BY DV_OBJ_ID FOR UPDATE) AS x"
        ));
    }
    with + &arms.join(" UNION ALL ")
}

/// Set in the memo once [`person`] has locked the devices the order's host
/// may name: the host's device is among them ([`locked_memo`]) unless it
/// is gone.
const HOST_DEVICE_LOCKED: &str = "junet.host-device-locked";

/// [`device_facts`] in the order's write transaction on PostgreSQL. First the
/// device row is locked until the order commits (`FOR UPDATE`); then —
/// in a statement of its own, so that it sees what an order that held the
/// lock before committed — its admin and deputyships are read together
/// with its interfaces and, for a change that takes no advisory locks, with
/// what the uniqueness checks need ([`plan::Usage`]). So the decision, the
/// checks and the execution see the device as it stays, and execution
/// neither locks nor reads it again.
async fn locked_device_facts(ctx: &mut PipCtx<'_>, device: i64) -> Result<Device, HandlerError> {
    // the order's advisory keys first, whatever order attributes.xml gives
    // the resolvers in (see `person`): the same lock order for every order;
    // `person` locks the device too when it resolves the host
    person(ctx).await?;
    let row = if let Some(row) = ctx.memo.get::<DeviceRow>(&locked_memo(device)) {
        Some((*row).clone())
    } else if ctx.memo.get::<()>(HOST_DEVICE_LOCKED).is_some() {
        None
    } else {
        plan::device_row(ctx.conn, device, true).await?
    };
    let Some(row) = row else {
        // gone since the host was resolved: no facts
        return Ok(Device::default());
    };
    let mut wanted = match ctx.order.order_type.name {
        ChangeDevice::NAME => match plan::change_of(&mut ctx.memo, ctx.order) {
            // the advisory keys, if any, are held already (see `person`)
            Ok(o) => Some(Wanted::of_change(&o, ctx.order)).filter(|w| {
                w.lock_keys().is_empty() || ctx.memo.get::<()>(plan::KEYS_LOCKED).is_some()
            }),
            Err(_) => None,
        },
        _ => None,
    }
    .unwrap_or_default();
    let prefetched = !wanted.values.is_empty() || !wanted.persons.is_empty();
    wanted.ports_of = Some(device);
    wanted.facts_of = Some(device);
    let usage = plan::Usage::load(ctx.conn, &mut ctx.memo, &wanted).await?;
    let d = Device {
        admin: usage.admin,
        org: row[6].clone(),
        deputyships: usage.deputyships.clone(),
    };
    if prefetched {
        plan::remember_usage(&mut ctx.memo, usage);
    }
    ctx.memo.put(locked_memo(device), row);
    Ok(d)
}

/// What the policies read about the device the order is about, in one
/// query: its admin, its org unit and the deputyships that cover it (for it
/// alone or for all devices of its admin, while it has the admin who named
/// them; or for its org unit).
#[derive(Debug, Default)]
struct Device {
    admin: Option<i64>,
    org: Option<String>,
    /// (deputy, until)
    deputyships: Vec<(i64, Option<String>)>,
}

async fn device_facts(ctx: &mut PipCtx<'_>) -> Result<Option<Arc<Device>>, HandlerError> {
    let Some(device) = device(ctx).await? else {
        return Ok(None);
    };
    let key = super::id_key("junet.device:", device);
    if let Some(facts) = ctx.memo.get::<Device>(&key) {
        return Ok(Some(facts));
    }
    if ctx.stage == Some(Stage::Engine) && is_postgres(ctx.conn) {
        let d = locked_device_facts(ctx, device).await?;
        return Ok(Some(ctx.memo.put(key, d)));
    }
    // An indexed lookup per arm rather than one OR that scans the table;
    // `CROSS JOIN` fixes the join order on SQLite (whose statistics would
    // pick the index on DEVICE for `DEVICE IS NULL`, or none for ORG), and
    // is a plain join to PostgreSQL. In SQLite's order transaction (which is
    // exclusive: the device stays as read) the whole device row comes along,
    // for execution.
    let with_row = ctx.stage == Some(Stage::Engine);
    let device_arms: String = if with_row {
        DEVICE_COLUMNS
            .split(", ")
            .enumerate()
            .map(|(i, c)| {
                format!(" UNION ALL SELECT 'dev{i}', NULL, {c} FROM x_device WHERE DV_OBJ_ID = $1")
            })
            .collect()
    } else {
        " UNION ALL SELECT 'dev6', NULL, DV_LOC_ORG FROM x_device WHERE DV_OBJ_ID = $1".to_owned()
    };
    let sql = format!(
        "SELECT 'admin', OBJ_ID_L, NULL FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'ADMIN' \
         UNION ALL SELECT 'deputy', d.DEPUTY, d.UNTIL FROM x_link l CROSS JOIN auftrag_deputies d \
           WHERE l.OBJ_ID_H = $1 AND l.CLASS_L = 'ADMIN' AND d.DEVICE = $1 AND d.ADMIN = l.OBJ_ID_L \
         UNION ALL SELECT 'deputy', d.DEPUTY, d.UNTIL FROM x_link l CROSS JOIN auftrag_deputies d \
           WHERE l.OBJ_ID_H = $1 AND l.CLASS_L = 'ADMIN' AND d.NAMED_BY = l.OBJ_ID_L \
           AND d.DEVICE IS NULL AND d.ORG IS NULL \
         UNION ALL SELECT 'deputy', d.DEPUTY, d.UNTIL FROM x_device x CROSS JOIN auftrag_deputies d \
           WHERE x.DV_OBJ_ID = $1 AND d.ORG = x.DV_LOC_ORG{device_arms}"
    );
    let rows = sqlx::query(&sql)
        .bind(device)
        .fetch_all(&mut *ctx.conn)
        .await?;
    let mut d = Device::default();
    let mut row: DeviceRow = vec![None; 8];
    let mut found = false;
    for r in &rows {
        let kind: String = r.try_get(0)?;
        let id: Option<i64> = r.try_get(1)?;
        let text: Option<String> = r.try_get(2)?;
        match (kind.as_str(), id) {
            ("admin", Some(admin)) => d.admin = d.admin.or(Some(admin)),
            ("deputy", Some(deputy)) => d.deputyships.push((deputy, text)),
            (dev, _) if dev.starts_with("dev") => {
                found = true;
                if let Some(i) = dev[3..].parse::<usize>().ok().filter(|i| *i < 8) {
                    row[i] = text;
                }
            }
            _ => {}
        }
    }
    d.org.clone_from(&row[6]);
    if with_row && found {
        ctx.memo.put(locked_memo(device), row);
    }
    Ok(Some(ctx.memo.put(key, d)))
}

#[resolver]
pub async fn is_employee(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(Some(Value::Boolean(person(ctx).await?.employee)))
}

#[resolver]
pub async fn is_admin(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(Some(Value::Boolean(person(ctx).await?.admin)))
}

#[resolver]
pub async fn is_itb(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(Some(Value::Boolean(
        !person(ctx).await?.itb_orgs.is_empty(),
    )))
}

#[resolver]
pub async fn itb_orgs(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let orgs = person(ctx).await?.itb_orgs.clone();
    Ok(Some(Value::Set(
        orgs.into_iter().map(Value::String).collect(),
    )))
}

#[resolver]
pub async fn is_staff(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(Some(Value::Boolean(person(ctx).await?.staff)))
}

#[resolver]
pub async fn email(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(person(ctx).await?.email.clone().map(Value::String))
}

/// A `name_deputy` or `end_deputy` order for all devices the requester
/// administers (scope `my_devices`, or neither host nor org).
#[resolver]
pub async fn all_devices(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let all = super::is_deputyship(ctx.order)
        && super::deputy_scope(ctx.order) == Some(super::DeputyScope::MyDevices);
    Ok(Some(Value::Boolean(all)))
}

/// The device the order is about (its `DV_OBJ_ID`), if its host names one.
#[resolver]
pub async fn device_id(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(device(ctx).await?.map(Value::Integer))
}

#[resolver]
pub async fn device_admin(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    Ok(device_facts(ctx)
        .await?
        .and_then(|d| d.admin)
        .map(|a| Value::String(a.to_string())))
}

/// The org unit the order is about: the device's (`DV_LOC_ORG`), or, for a
/// deputyship of an org unit, that unit (trimmed). An order about a host
/// that names no device is about no org unit, whatever its `org` field says.
#[resolver]
pub async fn device_org(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    if let Some(d) = device_facts(ctx).await? {
        return Ok(d.org.clone().map(Value::String));
    }
    Ok(match super::deputy_scope(ctx.order) {
        Some(super::DeputyScope::Org(org)) if super::is_deputyship(ctx.order) => {
            Some(Value::String(org.to_owned()))
        }
        _ => None,
    })
}

/// Deputyships that cover the device; rows of (deputy, until).
async fn deputyships(ctx: &mut PipCtx<'_>) -> Result<Vec<(i64, Option<String>)>, HandlerError> {
    Ok(device_facts(ctx)
        .await?
        .map(|d| d.deputyships.clone())
        .unwrap_or_default())
}

#[resolver]
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
#[resolver]
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

/// The devices the person is a deputy for now (`DV_OBJ_ID`s).
#[resolver]
pub async fn deputy_devices(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let devices = person(ctx).await?.deputy_devices.clone();
    Ok(Some(Value::Set(
        devices.into_iter().map(Value::Integer).collect(),
    )))
}

/// The admins (person keys) for all of whose devices the person is a
/// deputy now.
#[resolver]
pub async fn deputy_admins(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let admins = person(ctx).await?.deputy_admins.clone();
    Ok(Some(Value::Set(
        admins.into_iter().map(Value::String).collect(),
    )))
}

/// The org units the person is a deputy for now.
#[resolver]
pub async fn deputy_orgs(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
    let orgs = person(ctx).await?.deputy_orgs.clone();
    Ok(Some(Value::Set(
        orgs.into_iter().map(Value::String).collect(),
    )))
}

/// The device's admin and deputies (person keys), for the notifications:
/// what the policies read, from the memo when they read it in this
/// transaction, else one query.
pub(crate) async fn device_people(
    ctx: &mut PipCtx<'_>,
) -> Result<(Option<i64>, Vec<i64>), HandlerError> {
    Ok(device_facts(ctx)
        .await?
        .map(|d| (d.admin, d.deputyships.iter().map(|(p, _)| *p).collect()))
        .unwrap_or_default())
}

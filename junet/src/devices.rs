//! `GET /api/v1/devices?host=&admin=me`: the devices a caller may change,
//! with their interfaces and why they may (admin, deputy until …, IT
//! officer of org …) — what the portal shows before a change.

use std::collections::BTreeMap;

use auftrag_engine::EngineError;
use auftrag_engine::context::Principal;
use auftrag_engine::http::server::AppState;
use auftrag_engine::http::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqlx::Row;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::pers_key;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_devices))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Port {
    pub port: i64,
    pub hwa: Option<String>,
    pub ipv4: Option<String>,
    pub net: Option<String>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub device: i64,
    pub host: String,
    pub admin: Option<i64>,
    pub org: Option<String>,
    pub building: Option<String>,
    pub room: Option<String>,
    pub ports: Vec<Port>,
    /// Why the caller may change the device: as its admin, as a deputy
    /// (until the end of the deputyship, for an org unit with it), as IT
    /// officer of its org unit, or as staff.
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// `admin`, `deputy`, `it_officer` or `staff` (in this order).
    pub role: Role,
    /// The deputyship's end (absent: open-ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The org unit of an IT officer, or of a deputyship for an org unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Deputy,
    ItOfficer,
    Staff,
}

/// Why person `$1` may change a device, as rows (kind, device, until, org):
/// the rules 2, 4 and 5 of policies.xml over the device database — the
/// devices they administer, those their deputyships cover (for one device
/// while it has the admin who named it, all devices of an admin, an org
/// unit; ended ones are left out by the caller) and those of the org units
/// they are IT officer of.
const REASONS: &str = "\
    SELECT 'admin' AS kind, l.OBJ_ID_H AS device, CAST(NULL AS TEXT) AS until, CAST(NULL AS TEXT) AS org \
      FROM x_link l WHERE l.CLASS_L = 'ADMIN' AND l.OBJ_ID_L = $1 \
    UNION ALL SELECT 'deputy', d.DEVICE, d.UNTIL, CAST(NULL AS TEXT) FROM auftrag_deputies d \
      JOIN x_link l ON l.OBJ_ID_H = d.DEVICE AND l.CLASS_L = 'ADMIN' AND l.OBJ_ID_L = d.ADMIN \
      WHERE d.DEPUTY = $1 \
    UNION ALL SELECT 'deputy', l.OBJ_ID_H, d.UNTIL, CAST(NULL AS TEXT) FROM auftrag_deputies d \
      JOIN x_link l ON l.CLASS_L = 'ADMIN' AND l.OBJ_ID_L = d.NAMED_BY \
      WHERE d.DEPUTY = $1 AND d.DEVICE IS NULL AND d.ORG IS NULL \
    UNION ALL SELECT 'deputy', x.DV_OBJ_ID, d.UNTIL, d.ORG FROM auftrag_deputies d \
      JOIN x_device x ON x.DV_LOC_ORG = d.ORG WHERE d.DEPUTY = $1 \
    UNION ALL SELECT 'it_officer', x.DV_OBJ_ID, CAST(NULL AS TEXT), i.ORG FROM auftrag_it_officers i \
      JOIN x_device x ON x.DV_LOC_ORG = i.ORG WHERE i.PERS_KEY = $1";

/// The reasons of [`REASONS`] for person `me` that hold now, by device.
async fn reasons_of(
    conn: &mut sqlx::AnyConnection,
    me: i64,
) -> Result<BTreeMap<i64, Vec<Reason>>, sqlx::Error> {
    let now = auftrag_engine::store::history::now();
    let rows = sqlx::query(REASONS).bind(me).fetch_all(&mut *conn).await?;
    let mut out: BTreeMap<i64, Vec<Reason>> = BTreeMap::new();
    for row in rows {
        let kind: String = row.try_get(0)?;
        let device: i64 = row.try_get(1)?;
        let until: Option<String> = row.try_get(2)?;
        let org: Option<String> = row.try_get(3)?;
        let role = match kind.as_str() {
            "admin" => Role::Admin,
            "deputy" if until.as_deref().is_some_and(|u| u < now.as_str()) => continue,
            "deputy" => Role::Deputy,
            _ => Role::ItOfficer,
        };
        out.entry(device)
            .or_default()
            .push(Reason { role, until, org });
    }
    for reasons in out.values_mut() {
        reasons.sort();
        reasons.dedup();
    }
    Ok(out)
}

/// The devices the caller may see, with their interfaces.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(("host" = Option<String>, Query), ("admin" = Option<String>, Query, description = "`me` or a PERS_KEY")),
    responses((status = 200, description = "The devices", body = Vec<Device>)))]
async fn list_devices(
    State(state): State<AppState>,
    principal: Principal,
    auftrag_engine::http::ApiQuery(query): auftrag_engine::http::ApiQuery,
) -> ApiResult<Json<Vec<Device>>> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !["host", "admin"].contains(&k.as_str()))
    {
        return Err(Problem::bad_request(format!(
            "unknown query parameter `{unknown}` (known: host, admin)"
        )));
    }
    let me = pers_key(&principal.person);
    let admin_filter = match query.get("admin").map(String::as_str) {
        None | Some("") => None,
        Some("me") => Some(me.unwrap_or(-1)),
        Some(other) => Some(other.parse::<i64>().map_err(|_| {
            Problem::bad_request(format!("`admin` must be `me` or a PERS_KEY, not `{other}`"))
        })?),
    };
    // Staff see every device; everybody else the devices they may change
    // (as admin, deputy or IT officer; `admin=me`: those they administer).
    let staff = principal.is_staff(&state.engine.store).await?;
    if !staff && admin_filter.is_some_and(|a| Some(a) != me) {
        return Err(EngineError::Forbidden(
            "you may list only the devices you may change, or with admin=me those you administer; staff may list all"
                .into(),
        )
        .into());
    }
    let host = query
        .get("host")
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase());

    let mut conn = state
        .engine
        .store
        .pool
        .acquire()
        .await
        .map_err(EngineError::from)?;
    let devices = load(&mut conn, staff, admin_filter, me)
        .await?
        .into_iter()
        .filter(|d| {
            host.as_deref().is_none_or(|h| {
                d.host.eq_ignore_ascii_case(h)
                    || d.ports
                        .iter()
                        .any(|p| p.aliases.iter().any(|a| a.eq_ignore_ascii_case(h)))
            })
        })
        .collect();
    Ok(Json(devices))
}

/// The devices `me` may see: every device (`staff`), those of one admin
/// (`admin_filter`), or those `me` has a reason to change; each with the
/// reasons that hold now.
pub async fn load(
    conn: &mut sqlx::AnyConnection,
    staff: bool,
    admin_filter: Option<i64>,
    me: Option<i64>,
) -> Result<Vec<Device>, EngineError> {
    let mut reasons = reasons_of(&mut *conn, me.unwrap_or(-1))
        .await
        .map_err(EngineError::from)?;
    // which devices: all (staff), one admin's, or those with a reason
    let which = match (staff, admin_filter) {
        (_, Some(_)) => "a.OBJ_ID_L = $1".to_owned(),
        // (bound in every case: PostgreSQL refuses a parameter the
        // statement does not use)
        (true, None) => "$1 = $1".to_owned(),
        (false, None) => format!("d.DV_OBJ_ID IN (SELECT device FROM ({REASONS}) AS r)"),
    };
    let sql = format!(
        "SELECT d.DV_OBJ_ID, d.DV_LABEL, a.OBJ_ID_L AS ADMIN, d.DV_LOC_ORG, d.DV_BUILDING, d.DV_ROOM, \
         p.PT_OBJ_ID, p.HARDW_ADDR, p.PT_DEV_ADDR, n.NN_NAME, dn.DN_NAME || '.' || dn.DOMAIN AS ALIAS \
         FROM x_device d \
         LEFT JOIN x_link a ON a.OBJ_ID_H = d.DV_OBJ_ID AND a.CLASS_L = 'ADMIN' \
         JOIN x_link pl ON pl.OBJ_ID_H = d.DV_OBJ_ID AND pl.CLASS_L = 'PORT' \
         JOIN x_port p ON p.PT_OBJ_ID = pl.OBJ_ID_L \
         LEFT JOIN n_netname n ON n.NN_OBJ_ID = p.NET_OBJ_ID \
         LEFT JOIN n_devname dn ON dn.PT_OBJ_ID = p.PT_OBJ_ID \
         WHERE {which} \
         ORDER BY d.DV_OBJ_ID, p.PT_OBJ_ID, dn.CANONICAL DESC, dn.DN_NAME"
    );
    let rows = sqlx::query(&sql)
        .bind(admin_filter.unwrap_or(me.unwrap_or(-1)))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;

    // One row per alias: fold them into devices → ports → aliases.
    let mut devices: BTreeMap<i64, Device> = BTreeMap::new();
    for row in rows {
        let (device, port) = device_and_port(&row).map_err(EngineError::from)?;
        let alias: Option<String> = row.try_get(10).map_err(EngineError::from)?;
        let device = devices.entry(device.device).or_insert_with(|| {
            let mut d = device;
            d.reasons = reasons.remove(&d.device).unwrap_or_default();
            if staff {
                d.reasons.push(Reason {
                    role: Role::Staff,
                    until: None,
                    org: None,
                });
            }
            d
        });
        if device.ports.last().is_none_or(|p| p.port != port.port) {
            device.ports.push(port);
        }
        if let (Some(alias), Some(port)) = (alias, device.ports.last_mut()) {
            port.aliases.push(alias);
        }
    }
    Ok(devices
        .into_values()
        // a deputyship whose end passed lists no device
        .filter(|d| staff || admin_filter.is_some() || !d.reasons.is_empty())
        .collect())
}

fn device_and_port(row: &sqlx::any::AnyRow) -> Result<(Device, Port), sqlx::Error> {
    Ok((
        Device {
            device: row.try_get(0)?,
            host: row.try_get(1)?,
            admin: row.try_get(2)?,
            org: row.try_get(3)?,
            building: row.try_get(4)?,
            room: row.try_get(5)?,
            ports: Vec::new(),
            reasons: Vec::new(),
        },
        Port {
            port: row.try_get(6)?,
            hwa: row.try_get(7)?,
            ipv4: row.try_get(8)?,
            net: row.try_get(9)?,
            aliases: Vec::new(),
        },
    ))
}

/// The devices `person` may change (as admin, deputy or IT officer) as the
/// "my devices" page lists them ([`auftrag_engine::Domain::my_objects`]).
pub async fn my_objects(
    conn: &mut sqlx::AnyConnection,
    person: &str,
) -> Result<Vec<auftrag_engine::MyObject>, EngineError> {
    let Some(me) = pers_key(person) else {
        return Ok(Vec::new());
    };
    let devices = load(conn, false, None, Some(me)).await?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let roles = d
                .reasons
                .iter()
                .map(|r| {
                    let mut role = match r.role {
                        Role::Admin => "admin".to_owned(),
                        Role::Deputy => "deputy".to_owned(),
                        Role::ItOfficer => "IT officer".to_owned(),
                        Role::Staff => "staff".to_owned(),
                    };
                    if let Some(org) = &r.org {
                        role.push_str(&format!(" ({org})"));
                    }
                    if let Some(until) = &r.until {
                        role.push_str(&format!(" until {until}"));
                    }
                    role
                })
                .collect();
            let mut details = Vec::new();
            if let Some(org) = &d.org {
                details.push(("org".to_owned(), org.clone()));
            }
            let place: Vec<&str> = [d.building.as_deref(), d.room.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !place.is_empty() {
                details.push(("room".to_owned(), place.join(" ")));
            }
            for p in &d.ports {
                let mut v: Vec<String> = [p.ipv4.clone(), p.hwa.clone(), p.net.clone()]
                    .into_iter()
                    .flatten()
                    .collect();
                v.extend(p.aliases.iter().cloned());
                details.push((format!("port {}", p.port), v.join(" · ")));
            }
            // the key an order names it by: the canonical alias of its
            // (first) interface — a label names only a device with one
            auftrag_engine::MyObject {
                key: d
                    .ports
                    .first()
                    .and_then(|p| p.aliases.first())
                    .cloned()
                    .unwrap_or_else(|| d.host.clone()),
                label: d.host,
                roles,
                details,
                order_types: vec!["change_device", "delete_device", "name_deputy"],
            }
        })
        .collect())
}

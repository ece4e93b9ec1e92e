//! `GET /api/v1/devices?host=&admin=me`: the devices a caller may see, with
//! their interfaces — what the portal shows before a change.

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
    // Until the policy engine decides read access: staff see every device,
    // everybody else the devices they administer.
    let admin_filter = if principal.is_staff(&state.engine.store).await? {
        admin_filter
    } else {
        if admin_filter.is_some_and(|a| Some(a) != me) {
            return Err(EngineError::Forbidden(
                "you may list only the devices you administer (admin=me); staff may list all"
                    .into(),
            )
            .into());
        }
        Some(me.unwrap_or(-1))
    };
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
    let rows = sqlx::query(
        "SELECT d.DV_OBJ_ID, d.DV_LABEL, a.OBJ_ID_L AS ADMIN, d.DV_LOC_ORG, d.DV_BUILDING, d.DV_ROOM, \
         p.PT_OBJ_ID, p.HARDW_ADDR, p.PT_DEV_ADDR, n.NN_NAME, dn.DN_NAME || '.' || dn.DOMAIN AS ALIAS \
         FROM x_device d \
         LEFT JOIN x_link a ON a.OBJ_ID_H = d.DV_OBJ_ID AND a.CLASS_L = 'ADMIN' \
         JOIN x_link pl ON pl.OBJ_ID_H = d.DV_OBJ_ID AND pl.CLASS_L = 'PORT' \
         JOIN x_port p ON p.PT_OBJ_ID = pl.OBJ_ID_L \
         LEFT JOIN n_netname n ON n.NN_OBJ_ID = p.NET_OBJ_ID \
         LEFT JOIN n_devname dn ON dn.PT_OBJ_ID = p.PT_OBJ_ID \
         WHERE ($1 = -1000 OR a.OBJ_ID_L = $1) \
         ORDER BY d.DV_OBJ_ID, p.PT_OBJ_ID, dn.CANONICAL DESC, dn.DN_NAME",
    )
    .bind(admin_filter.unwrap_or(-1000))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::from)?;

    // One row per alias: fold them into devices → ports → aliases.
    let mut devices: BTreeMap<i64, Device> = BTreeMap::new();
    for row in rows {
        let (device, port) = device_and_port(&row).map_err(EngineError::from)?;
        let alias: Option<String> = row.try_get(10).map_err(EngineError::from)?;
        let device = devices.entry(device.device).or_insert(device);
        if device.ports.last().is_none_or(|p| p.port != port.port) {
            device.ports.push(port);
        }
        if let (Some(alias), Some(port)) = (alias, device.ports.last_mut()) {
            port.aliases.push(alias);
        }
    }
    let devices = devices
        .into_values()
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

//! The JuNet domain (thesis §2): the device database tables, the check and
//! action handlers named in `definitions/`, demo data and the device listing.
//! The engine knows none of this; it reaches it through [`Junet`].

pub mod actions;
pub mod batch;
pub mod checks;
pub mod demo;
pub mod devices;
pub mod execute;
pub mod generate;
pub mod order_checks;
pub mod pip;
pub mod plan;

use auftrag_engine::context::Memo;
use auftrag_engine::store::Backend;
use auftrag_engine::{BoxFuture, DemoPerson, Domain, EngineError, server::AppState};
use axum::Router;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Row};

use crate::generated;

/// The JuNet order domain.
pub struct Junet;

impl Domain for Junet {
    fn definitions(&self) -> &'static auftrag_engine::defs::Definitions {
        &generated::DEFINITIONS
    }

    fn migrator(&self, backend: Backend) -> Migrator {
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        }
    }

    fn person_exists<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        person: &'a str,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        Box::pin(async move {
            let Some(key) = pers_key(person) else {
                return Ok(false);
            };
            Ok(sqlx::query("SELECT 1 FROM d_pers WHERE PERS_KEY = $1")
                .bind(key)
                .fetch_optional(conn)
                .await?
                .is_some())
        })
    }

    fn seed_demo<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Vec<DemoPerson>, EngineError>> {
        Box::pin(demo::seed(conn))
    }

    fn routes(&self) -> Router<AppState> {
        devices::routes()
    }
}

/// A `PERS_KEY` from the engine's person id (the token subject).
pub fn pers_key(person: &str) -> Option<i64> {
    person.parse().ok()
}

/// The interface and device an order's `host` names.
#[derive(Debug, Clone)]
pub struct Target {
    pub device: i64,
    pub port: i64,
    pub label: String,
}

/// Resolves a host name: the fully qualified alias of an interface
/// (`zam2212.zam.kfa-juelich.de`, thesis Listing 5.3), or the device label
/// (`DV_LABEL`) of a device with exactly one interface.
pub async fn resolve_host(
    conn: &mut AnyConnection,
    host: &str,
) -> Result<Option<Target>, sqlx::Error> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    // One query: the interface with this alias (arm 0), else the device
    // with this label (arm 1), which names it only if it has one interface.
    const BY_LABEL: &str = "SELECT CAST(1 AS BIGINT), l.OBJ_ID_H, l.OBJ_ID_L, d.DV_LABEL FROM x_link l \
         JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H \
         WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_H IN \
         (SELECT DV_OBJ_ID FROM x_device WHERE LOWER(DV_LABEL) = $1)";
    let rows = match host.split_once('.') {
        Some((name, domain)) => {
            sqlx::query(&format!(
                "SELECT CAST(0 AS BIGINT), l.OBJ_ID_H, l.OBJ_ID_L, d.DV_LABEL FROM x_link l \
                 JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H \
                 WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_L IN \
                 (SELECT PT_OBJ_ID FROM n_devname WHERE LOWER(DN_NAME) = $2 AND LOWER(DOMAIN) = $3) \
                 UNION ALL {BY_LABEL}"
            ))
            .bind(&host)
            .bind(name)
            .bind(domain)
            .fetch_all(&mut *conn)
            .await?
        }
        None => sqlx::query(BY_LABEL).bind(&host).fetch_all(&mut *conn).await?,
    };
    let mut by_alias = Vec::new();
    let mut by_label = Vec::new();
    for row in &rows {
        let arm: i64 = row.try_get(0)?;
        let target = Target {
            device: row.try_get(1)?,
            port: row.try_get(2)?,
            label: row.try_get(3)?,
        };
        if arm == 0 {
            by_alias.push(target);
        } else {
            by_label.push(target);
        }
    }
    if !by_alias.is_empty() {
        return Ok(by_alias.into_iter().next());
    }
    Ok(match <[Target; 1]>::try_from(by_label) {
        Ok([one]) => Some(one),
        Err(_) => None,
    })
}

/// [`resolve_host`] once per transaction: the policy resolvers, the checks
/// and the executing action of one order ask for the same host names.
pub async fn resolve_host_memo(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    host: &str,
) -> Result<Option<Target>, sqlx::Error> {
    let key = format!(
        "junet.host:{}",
        host.trim().trim_end_matches('.').to_ascii_lowercase()
    );
    if let Some(target) = memo.get::<Option<Target>>(&key) {
        return Ok((*target).clone());
    }
    let target = resolve_host(conn, host).await?;
    memo.put(key, target.clone());
    Ok(target)
}

/// `PERS_KEY` of the device's administrator (the one ADMIN link).
pub async fn device_admin(
    conn: &mut AnyConnection,
    device: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT OBJ_ID_L FROM x_link WHERE OBJ_ID_H = $1 AND CLASS_L = 'ADMIN'")
        .bind(device)
        .fetch_optional(conn)
        .await
}

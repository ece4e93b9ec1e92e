//! The JuNet domain (thesis §2): the device database tables, the check and
//! action handlers named in `definitions/`, demo data and the device listing.
//! The engine knows none of this; it reaches it through [`Junet`].
//!
//! The handlers use the typed order fields of `auftrag-junet-types`
//! (generated from `orders.xml` and `queues.xml` only); the tables that
//! name the handlers (`DEFINITIONS`) are generated in the `auftrag`
//! package above this crate and handed to [`Junet::new`], so an edit of
//! `workflow.xml`, `checks.xml` or `policies.xml` recompiles neither.

pub mod actions;
pub mod checks;
pub mod demo;
pub mod deputies;
pub mod devices;
pub mod execute;
pub mod generate;
pub mod history;
pub mod notify;
pub mod order_checks;
pub mod pip;
pub mod plan;
pub mod rollback;

use auftrag_engine::context::Memo;
use auftrag_engine::store::Backend;
use auftrag_engine::{BoxFuture, DemoPerson, Domain, EngineError, http::server::AppState};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Row};

/// The JuNet order domain, with the tables compiled from `definitions/`.
pub struct Junet {
    definitions: &'static auftrag_engine::defs::Definitions,
}

impl Junet {
    /// The domain with `definitions`, the tables compiled from JuNet's
    /// `definitions/` (`auftrag::generated::DEFINITIONS`; `auftrag::domain()`
    /// makes it so).
    pub fn new(definitions: &'static auftrag_engine::defs::Definitions) -> Junet {
        Junet { definitions }
    }
}

impl Domain for Junet {
    fn definitions(&self) -> &'static auftrag_engine::defs::Definitions {
        self.definitions
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

    fn device_people<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        memo: &'a mut Memo,
        order: &'a auftrag_engine::context::OrderData,
    ) -> BoxFuture<'a, Result<auftrag_engine::notify::DevicePeople, EngineError>> {
        Box::pin(notify::device_people(conn, memo, order))
    }

    fn person_mail<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        person: &'a str,
    ) -> BoxFuture<'a, Result<Option<auftrag_engine::notify::PersonMail>, EngineError>> {
        Box::pin(notify::person_mail(conn, person))
    }

    fn seed_demo<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Vec<DemoPerson>, EngineError>> {
        Box::pin(demo::seed(conn))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        devices::routes()
    }

    fn my_objects<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        person: &'a str,
    ) -> BoxFuture<'a, Result<Vec<auftrag_engine::MyObject>, EngineError>> {
        Box::pin(devices::my_objects(conn, person))
    }

    fn has_my_objects(&self) -> bool {
        true
    }

    fn check_person_key(&self, person: &str) -> Result<(), String> {
        canonical_person(person).map(drop)
    }

    fn generate<'a>(
        &'a self,
        store: &'a auftrag_engine::store::Store,
        defs: &'static auftrag_engine::defs::Definitions,
        devices: usize,
        seed: u64,
        orders: usize,
        report: &'a (dyn Fn(String) + Send + Sync),
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let network = generate::Network::generate(devices, seed);
            if network.is_loaded(store).await? {
                if orders == 0 {
                    return Err(EngineError::Conflict(
                        "the generated network is loaded already: use a fresh database, or add --orders N"
                            .into(),
                    ));
                }
                report(format!(
                    "demo data: the network (seed {seed}) is loaded already"
                ));
            } else {
                let mut tx = store.pool.begin().await?;
                network.insert(&mut tx).await.map_err(|e| {
                    EngineError::Conflict(format!(
                        "{e}; is other generated data loaded already? Use a fresh database"
                    ))
                })?;
                tx.commit().await?;
                report(format!(
                    "demo data: {} devices, {} ports, {} persons, {} subnets, {} deputyships (seed {seed})",
                    network.devices.len(),
                    network.devices.iter().map(|d| d.ports.len()).sum::<usize>(),
                    network.persons.len(),
                    network.subnets.len(),
                    network.deputies.len(),
                ));
            }
            if orders > 0 {
                let started = std::time::Instant::now();
                history::insert(store, defs, &network, orders, seed, |done| {
                    if done % 100_000 == 0 || done == orders {
                        report(format!("{done} orders written"));
                    }
                })
                .await?;
                report(format!(
                    "demo data: {orders} orders in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
            Ok(())
        })
    }

    fn choices<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        ty: auftrag_engine::defs::FieldType,
    ) -> BoxFuture<'a, Result<Vec<auftrag_engine::Choice>, EngineError>> {
        Box::pin(async move {
            match ty {
                auftrag_engine::defs::FieldType::Subnet => plan::subnet_choices(conn)
                    .await
                    .map_err(|source| EngineError::Handler {
                        action: "subnet choices".into(),
                        source,
                    }),
                _ => Ok(Vec::new()),
            }
        })
    }

    fn inverse(
        &self,
        order: &auftrag_engine::store::history::OrderDocument,
    ) -> Result<auftrag_engine::Inverse, String> {
        rollback::inverse(order)
    }

    fn same_object(
        &self,
        a: &auftrag_engine::ObjectOf<'_>,
        b: &auftrag_engine::ObjectOf<'_>,
    ) -> bool {
        rollback::same_object(a, b)
    }
}

/// A `PERS_KEY` from the engine's person id (the token subject), in its one
/// spelling: decimal digits without a leading zero (`1004`, not `01004` or
/// `+1004`), so that what is compared as a number and what is compared as
/// text (admin, deputy, staff) name the same person. `None` otherwise.
pub fn pers_key(person: &str) -> Option<i64> {
    canonical_person(person).ok()?.parse().ok()
}

/// `person` if it is a `PERS_KEY` in its one spelling (see [`pers_key`]),
/// else why not.
pub fn canonical_person(person: &str) -> Result<&str, String> {
    let digits = !person.is_empty() && person.bytes().all(|b| b.is_ascii_digit());
    if digits && (person == "0" || !person.starts_with('0')) && person.parse::<i64>().is_ok() {
        Ok(person)
    } else if digits {
        Err(format!(
            "`{person}` is not a person key as the device database spells it; write `{}`",
            person.trim_start_matches('0').parse::<u128>().map_or_else(
                |_| "its digits without leading zeros".to_owned(),
                |k| k.to_string()
            )
        ))
    } else {
        Err(format!(
            "`{person}` is not a person key (digits, e.g. 1002)"
        ))
    }
}

/// Which deputyship a `name_deputy` or `end_deputy` order is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeputyScope<'a> {
    /// One device: the one `host` names.
    Device(&'a str),
    /// All devices the requester administers.
    MyDevices,
    /// Every device of an org unit (trimmed).
    Org(&'a str),
}

/// The `org` field of an order, trimmed; `None` when empty or only spaces.
pub fn order_org(order: &auftrag_engine::context::OrderData) -> Option<&str> {
    order.text("org").map(str::trim).filter(|o| !o.is_empty())
}

/// The scope a `name_deputy` or `end_deputy` order says (`scope`), or, left
/// out, the one its fields imply: `host` a device, `org` an org unit,
/// neither all devices of the requester (which `check_deputyship` refuses
/// to guess: it asks for `scope`). The policies, the check and the
/// execution all read the scope here, with `org` trimmed. A scope whose
/// field is missing (`device` without host) is `None`.
pub fn deputy_scope(order: &auftrag_engine::context::OrderData) -> Option<DeputyScope<'_>> {
    let host = order.text("host").map(str::trim).filter(|h| !h.is_empty());
    let org = order_org(order);
    match order.text("scope") {
        Some("device") => host.map(DeputyScope::Device),
        Some("org") => org.map(DeputyScope::Org),
        Some("my_devices") => Some(DeputyScope::MyDevices),
        _ => Some(match (host, org) {
            (Some(h), _) => DeputyScope::Device(h),
            (None, Some(o)) => DeputyScope::Org(o),
            (None, None) => DeputyScope::MyDevices,
        }),
    }
}

/// Whether the order is about a deputyship (`name_deputy`, `end_deputy`).
pub fn is_deputyship(order: &auftrag_engine::context::OrderData) -> bool {
    matches!(order.order_type.name, "name_deputy" | "end_deputy")
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
    let mut binds = Vec::new();
    let sql = host_arms(host, &mut binds).join(" UNION ALL ");
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b.as_str());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    host_target(&rows)
}

/// The `SELECT`s that resolve `host` (see [`resolve_host`]), to run alone or
/// as arms of a larger `UNION ALL`. Their columns: kind (`host.alias` for
/// the interface with this alias, `host.label` for the interfaces of the
/// device with this label), label, NULL, device id, port id. Parameters are
/// numbered after those already in `binds`, to which they are added.
pub(crate) fn host_arms(host: &str, binds: &mut Vec<String>) -> Vec<String> {
    let first = binds.len() + 1;
    let alias = host_binds(host, binds);
    host_arms_sql(alias, first)
}

/// Adds the parameters of [`host_arms`] for `host` to `binds`; whether the
/// host names an alias (`name.domain`) too.
pub(crate) fn host_binds(host: &str, binds: &mut Vec<String>) -> bool {
    let host = normalize_host(host);
    let alias = match host.split_once('.') {
        Some((name, domain)) => {
            binds.push(name.to_owned());
            binds.push(domain.to_owned());
            true
        }
        None => false,
    };
    binds.push(host);
    alias
}

/// The text of [`host_arms`], its parameters numbered from `first`.
pub(crate) fn host_arms_sql(alias: bool, first: usize) -> Vec<String> {
    let mut arms = Vec::new();
    let mut h = first;
    if alias {
        let (n, d) = (first, first + 1);
        arms.push(format!(
            "SELECT 'host.alias', d.DV_LABEL, CAST(NULL AS TEXT), l.OBJ_ID_H, l.OBJ_ID_L FROM x_link l \
             JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H \
             WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_L IN \
             (SELECT PT_OBJ_ID FROM n_devname WHERE LOWER(DN_NAME) = ${n} AND LOWER(DOMAIN) = ${d})"
        ));
        h += 2;
    }
    arms.push(format!(
        "SELECT 'host.label', d.DV_LABEL, CAST(NULL AS TEXT), l.OBJ_ID_H, l.OBJ_ID_L FROM x_link l \
         JOIN x_device d ON d.DV_OBJ_ID = l.OBJ_ID_H \
         WHERE l.CLASS_L = 'PORT' AND l.OBJ_ID_H IN \
         (SELECT DV_OBJ_ID FROM x_device WHERE LOWER(DV_LABEL) = ${h})"
    ));
    arms
}

/// Statement texts made once per shape (what arms a `UNION ALL` has, how
/// many parameters): orders of one kind run the same statement with other
/// values, and building its text anew each time cost more than running it
/// through the driver.
pub(crate) struct Texts<K>(
    std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<K, std::sync::Arc<str>>>>,
);

impl<K: std::hash::Hash + Eq> Texts<K> {
    pub(crate) const fn new() -> Self {
        Self(std::sync::LazyLock::new(Default::default))
    }

    /// The text for `key`, from `build` the first time.
    pub(crate) fn get(&self, key: K, build: impl FnOnce(&K) -> String) -> std::sync::Arc<str> {
        let mut texts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sql) = texts.get(&key) {
            return sql.clone();
        }
        // shapes follow from the order types' fields; this many means
        // something unusual, and the memory starts over
        if texts.len() >= 256 {
            texts.clear();
        }
        let sql: std::sync::Arc<str> = build(&key).into();
        texts.insert(key, sql.clone());
        sql
    }
}

/// The target among the rows of [`host_arms`] (other rows are ignored): the
/// interface with the alias, else the device's only interface.
pub(crate) fn host_target(rows: &[sqlx::any::AnyRow]) -> Result<Option<Target>, sqlx::Error> {
    let mut by_alias = None;
    let mut by_label = Vec::new();
    for row in rows {
        let kind: String = row.try_get(0)?;
        if !kind.starts_with("host.") {
            continue;
        }
        let target = Target {
            label: row.try_get(1)?,
            device: row.try_get(3)?,
            port: row.try_get(4)?,
        };
        if kind == "host.alias" {
            by_alias = by_alias.or(Some(target));
        } else {
            by_label.push(target);
        }
    }
    if by_alias.is_some() {
        return Ok(by_alias);
    }
    Ok(match <[Target; 1]>::try_from(by_label) {
        Ok([one]) => Some(one),
        Err(_) => None,
    })
}

fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A memo key: `prefix` and a number (without `format!`, which costs
/// several times as much; an order makes a few dozen keys).
pub(crate) fn id_key(prefix: &str, id: i64) -> String {
    let mut buf = itoa::Buffer::new();
    let id = buf.format(id);
    let mut key = String::with_capacity(prefix.len() + id.len());
    key.push_str(prefix);
    key.push_str(id);
    key
}

/// Where [`resolve_host_memo`] keeps what a host name resolves to.
pub(crate) fn host_memo(host: &str) -> String {
    let mut key = String::with_capacity(11 + host.len());
    key.push_str("junet.host:");
    key.push_str(&normalize_host(host));
    key
}

/// [`resolve_host`] once per transaction: the policy resolvers, the checks
/// and the executing action of one order ask for the same host names.
pub async fn resolve_host_memo(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    host: &str,
) -> Result<Option<Target>, sqlx::Error> {
    let key = host_memo(host);
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

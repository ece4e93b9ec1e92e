//! What an order domain (JuNet, or a firewall-unlock domain) plugs into the
//! engine beside its compiled definitions.

use futures::future::BoxFuture;
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;

use crate::error::EngineError;
use crate::http::server::AppState;
use crate::store::Backend;
use crate::store::history::OrderDocument;
use crate::workflow::defs::Definitions;

/// A demo person created by `serve --demo`, printed as a `demo-token` line.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    pub role: &'static str,
    pub person: String,
    /// Member of the engine's staff table (may use staff actions).
    pub staff: bool,
}

/// The order that undoes another one ([`Domain::inverse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Inverse {
    /// Its order type (a name of `orders.xml`).
    pub order_type: String,
    pub fields: crate::workflow::context::Fields,
    /// It undoes the object as a whole (a registration's inverse deletes
    /// the device, a deletion's registers it again): then every later order
    /// that changed the object stands in its way, not only those that
    /// changed the same fields.
    pub whole_object: bool,
}

/// What an order was about, as the rollback's conflict rule compares it
/// ([`Domain::same_object`]): its type, requester, key, fields and
/// recorded facts.
#[derive(Debug, Clone, Copy)]
pub struct ObjectOf<'a> {
    pub order_type: &'a str,
    pub requester: &'a str,
    /// The order's key (`host_id`).
    pub key: Option<&'a str>,
    pub fields: &'a crate::workflow::context::Fields,
    /// What it was about when decided (`OrderDocument::facts`).
    pub facts: Option<&'a crate::workflow::context::Fields>,
}

/// An object a person looks after ([`Domain::my_objects`]): JuNet's
/// devices they administer, or may change as deputy or IT officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyObject {
    /// The object's key, the value of the order types' key field
    /// (JuNet: the host name).
    pub key: String,
    /// How the pages show it.
    pub label: String,
    /// Why the person looks after it (`admin`, `deputy until …`,
    /// `it_officer of …`), one entry per reason.
    pub roles: Vec<String>,
    /// What else the page shows about it, as (name, value).
    pub details: Vec<(String, String)>,
    /// The order types that act on it (the page links to placing each,
    /// with the key field filled in); empty: every order type with a key
    /// field.
    pub order_types: Vec<&'static str>,
}

/// A value a form offers for a field type ([`Domain::choices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// What the field gets (`134.94.16.0/24`).
    pub value: String,
    /// What a person reads (`134.94.16.0/24 zam-16: JSC office network`).
    pub label: String,
}

pub trait Domain: Send + Sync + 'static {
    /// The compiled definitions (`generated/`).
    fn definitions(&self) -> &'static Definitions;

    /// Migrations of the domain's own tables for the given backend. They
    /// share sqlx's migration table with the engine's, so their versions must
    /// not collide with the engine's (which use versions below 1000).
    fn migrator(&self, backend: Backend) -> Migrator;

    /// Whether a person with this key exists (tokens are only issued to them).
    fn person_exists<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        person: &'a str,
    ) -> BoxFuture<'a, Result<bool, EngineError>>;

    /// Loads demo data (idempotent) and returns one person per demo role.
    fn seed_demo<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Vec<DemoPerson>, EngineError>>;

    /// The device's admins and deputies (person keys) for the notifications
    /// of `order` (`<to kind="admin|deputies">`), inside the order's
    /// transaction; asked once per workflow run, after a step, so that an
    /// answer can come from `memo` (what the checks read) and is taken
    /// before a later step deletes the device. Default: nobody.
    fn device_people<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _memo: &'a mut crate::workflow::context::Memo,
        _order: &'a crate::workflow::context::OrderData,
    ) -> BoxFuture<'a, Result<crate::notify::DevicePeople, EngineError>> {
        Box::pin(async { Ok(crate::notify::DevicePeople::default()) })
    }

    /// A person's e-mail address, display name and language, for the mail
    /// sender. Default: none (mails to persons fail with that reason).
    fn person_mail<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _person: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::notify::PersonMail>, EngineError>> {
        Box::pin(async { Ok(None) })
    }

    /// The order that undoes `order` (`POST /api/v1/orders/{id}/rollback`):
    /// its type and fields, made from what `order` recorded (`changed`,
    /// `[old, new]`). It is placed like any order, so the checks and
    /// policies judge it. `Err(reason)`: this order cannot be rolled back,
    /// and why (a person reads it in the 409). Default: no order can.
    fn inverse(&self, order: &OrderDocument) -> Result<Inverse, String> {
        Err(format!(
            "orders of type `{}` cannot be rolled back in this domain",
            order.order_type
        ))
    }

    /// Whether two orders are about the same object, for the rollback's
    /// conflict rule (see [`crate::history::rollback`]). Default: the same
    /// key (`host_id`).
    fn same_object(&self, a: &ObjectOf<'_>, b: &ObjectOf<'_>) -> bool {
        a.key.is_some() && a.key == b.key
    }

    /// The objects `person` looks after, for the "my devices" page
    /// (`/ui/devices`). Default: none — the page says so and the
    /// navigation leaves it out (see [`Domain::has_my_objects`]).
    fn my_objects<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _person: &'a str,
    ) -> BoxFuture<'a, Result<Vec<MyObject>, EngineError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The values the forms offer as a select for fields of type `ty`
    /// (JuNet: its subnets); empty (the default): a text input. The checks
    /// judge the value all the same.
    fn choices<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _ty: crate::workflow::defs::FieldType,
    ) -> BoxFuture<'a, Result<Vec<Choice>, EngineError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Refuses a person key the domain would not find as written (the
    /// CLI's `--person`), saying how to write it. Default: any key.
    fn check_person_key(&self, _person: &str) -> Result<(), String> {
        Ok(())
    }

    /// Fills the database with generated data for benchmarks and load
    /// tests (`auftrag demo-data`): `objects` objects (JuNet: devices with
    /// their people and subnets) from `seed`, and a history of `orders`
    /// orders about them. `report` gets the lines to show the operator.
    /// Default: the domain has no generator (a clear refusal).
    fn generate<'a>(
        &'a self,
        _store: &'a crate::store::Store,
        _defs: &'static Definitions,
        _objects: usize,
        _seed: u64,
        _orders: usize,
        _report: &'a (dyn Fn(String) + Send + Sync),
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async {
            Err(EngineError::Conflict(
                "this order domain has no generated demo data".into(),
            ))
        })
    }

    /// Whether the domain answers [`Domain::my_objects`] (the navigation
    /// shows the page only then). Default: no.
    fn has_my_objects(&self) -> bool {
        false
    }

    /// Domain-specific routes (e.g. `GET /api/v1/devices`), merged into the
    /// API; registered with utoipa-axum's `routes!` so they are in the
    /// OpenAPI document.
    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        utoipa_axum::router::OpenApiRouter::new()
    }
}

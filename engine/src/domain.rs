//! What an order domain (JuNet, or a firewall-unlock domain) plugs into the
//! engine beside its compiled definitions.

use futures::future::BoxFuture;
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;

use crate::error::EngineError;
use crate::http::server::AppState;
use crate::store::Backend;
use crate::workflow::defs::Definitions;

/// A demo person created by `serve --demo`, printed as a `demo-token` line.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    pub role: &'static str,
    pub person: String,
    /// Member of the engine's staff table (may use staff actions).
    pub staff: bool,
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

    /// Domain-specific routes (e.g. `GET /api/v1/devices`), merged into the
    /// API; registered with utoipa-axum's `routes!` so they are in the
    /// OpenAPI document.
    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        utoipa_axum::router::OpenApiRouter::new()
    }
}

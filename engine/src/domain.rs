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

    /// Domain-specific routes (e.g. `GET /api/v1/devices`), merged into the
    /// API; registered with utoipa-axum's `routes!` so they are in the
    /// OpenAPI document.
    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        utoipa_axum::router::OpenApiRouter::new()
    }
}

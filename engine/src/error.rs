//! Errors at the engine's boundaries. HTTP maps them to problem+json in
//! [`crate::http::Problem`].

use thiserror::Error;

/// An action or check handler failed for a reason other than a finding
/// (findings are reported through the context and are not errors).
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Failed(String),
}

/// Errors of engine operations, as callers (HTTP, CLI) see them.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("unknown order type `{0}`")]
    UnknownOrderType(String),
    #[error("invalid fields")]
    InvalidFields(Vec<FieldProblem>),
    #[error("order {0} not found")]
    NotFound(i64),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The order changed since the version the request names (`If-Match`).
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("action `{action}` failed: {source}")]
    Handler {
        action: String,
        #[source]
        source: HandlerError,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The transaction this order shared with others was rolled back for
    /// another of them: nothing of it was written; it can run again.
    #[error("{0}; nothing of this order was written, it can be sent again")]
    Aborted(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Internal(String),
}

/// A problem with one submitted field.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

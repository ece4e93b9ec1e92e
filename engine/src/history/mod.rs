//! The order history at scale (thesis §3, §5, §6): searching it, counting
//! it, rolling an order back, and keeping a copy in MongoDB.
//!
//! The SQL database stays the source of truth: an order's effect, its state
//! and its history document (`crate::store::history`) commit in one
//! transaction. Everything here reads from there, or from the MongoDB copy:
//!
//! - [`access`]: which orders a person may read, as a condition on the
//!   stored order that a query can carry (the `read_order` policy,
//!   partially evaluated for the person), so lists and searches filter in
//!   the store instead of after fetching.
//! - [`document`]: the history document as MongoDB keeps it, and the values
//!   derived from an order's states that statistics read ([`Derived`]).
//! - [`mongo`]: the MongoDB collection — created with a `$jsonSchema`
//!   validator generated from the compiled definitions, and its indexes.
//! - [`exporter`]: the transactional outbox (triggers record every write of
//!   an order while the export is on) and the task that copies changed
//!   documents to MongoDB with a version guard.
//! - [`search`] and [`stats`]: `GET /api/v1/history` and `GET /api/v1/stats`,
//!   answered from SQL (SQLite, PostgreSQL) or from MongoDB, with the same
//!   answers.
//! - [`rollback`]: an order that undoes another one
//!   (`POST /api/v1/orders/{id}/rollback`): the domain's inverse
//!   ([`crate::Domain::inverse`]) placed as a new order, refused while a
//!   later order changed the same fields of the same object.

pub mod access;
pub mod document;
pub mod exporter;
pub mod mongo;
pub mod rollback;
pub mod search;
pub mod stats;

pub use document::Derived;

/// The indexes of the MongoDB collection besides the thesis's (requester,
/// host, state): those the searches need.
pub fn mongo_indexes() -> Vec<mongodb::IndexModel> {
    search::search_indexes()
}

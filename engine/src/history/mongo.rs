//! The MongoDB history store (`auftrag serve --history mongodb://…`): the
//! collection of history documents ([`super::document::MongoDocument`]).

use mongodb::bson::Document;

/// The name of the collection of history documents.
pub const COLLECTION: &str = "orders";

/// A connected MongoDB history store.
#[derive(Debug, Clone)]
pub struct HistoryDb {
    pub client: mongodb::Client,
    pub db: mongodb::Database,
    /// The history documents, one per order (`_id` = order id).
    pub orders: mongodb::Collection<Document>,
}

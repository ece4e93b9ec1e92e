//! The MongoDB history store (`auftrag serve --history mongodb://…`): the
//! collection of history documents ([`super::document::MongoDocument`]),
//! created with a `$jsonSchema` validator generated from the compiled
//! definitions, its indexes, and the guarded write of one document.

use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{IndexModel, error::ErrorKind};

use crate::error::EngineError;
use crate::workflow::defs::{Definitions, FieldDef, FieldType};

/// The name of the collection of history documents.
pub const COLLECTION: &str = "orders";

/// A connected MongoDB history store.
#[derive(Debug, Clone)]
pub struct HistoryDb {
    pub client: mongodb::Client,
    pub db: mongodb::Database,
    /// The history documents, one per order (`_id` = order id).
    pub orders: mongodb::Collection<Document>,
    /// The URL without credentials, for messages.
    pub shown_url: String,
}

fn mongo_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("MongoDB history store: {what}: {e}"))
}

/// The URL with any password replaced, for logs and errors.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl HistoryDb {
    /// Parses `url` (`mongodb://HOST:PORT/DB`; the database name is
    /// required) and makes a client. Nothing is contacted yet: the server
    /// may be down at start-up, and the exporter waits for it.
    pub async fn connect(url: &str) -> Result<Self, EngineError> {
        let shown_url = without_password(url);
        let mut options = ClientOptions::parse(url).await.map_err(|e| {
            EngineError::Internal(format!(
                "--history `{shown_url}` is not a MongoDB URL (mongodb://HOST:PORT/DATABASE): {e}"
            ))
        })?;
        let Some(database) = options.default_database.clone() else {
            return Err(EngineError::Internal(format!(
                "--history `{shown_url}` names no database: write mongodb://HOST:PORT/DATABASE"
            )));
        };
        options.app_name = Some("auftrag".into());
        // an unreachable server fails a call within seconds, not the
        // driver's default 30: the exporter retries, searches answer 503
        options.server_selection_timeout = Some(Duration::from_secs(5));
        // the driver's monitor checks the server with this timeout and,
        // when a check times out, interrupts the operations in flight: a
        // server busy with a long aggregation (SecantusDB, single-threaded,
        // answered no check for the 45 s of statistics over 100,000
        // documents) must not cost the aggregation itself
        options.connect_timeout = Some(Duration::from_secs(60));
        options.heartbeat_freq = Some(Duration::from_secs(30));
        // a document counts as exported (its outbox entry is deleted) only
        // once it is in MongoDB's journal: a crash right after must not
        // lose it
        options.write_concern = Some(
            mongodb::options::WriteConcern::builder()
                .journal(true)
                .build(),
        );
        let client = mongodb::Client::with_options(options)
            .map_err(|e| mongo_error("cannot make a client", e))?;
        let db = client.database(&database);
        let orders = db.collection::<Document>(COLLECTION);
        Ok(Self {
            client,
            db,
            orders,
            shown_url,
        })
    }

    /// Creates the collection with its validator when it is missing, or
    /// replaces the validator of an existing one (the definitions may have
    /// changed), and creates the indexes.
    pub async fn ensure(
        &self,
        defs: &'static Definitions,
        indexes: Vec<IndexModel>,
    ) -> Result<(), EngineError> {
        let schema = validator(defs);
        let names = self
            .db
            .list_collection_names()
            .await
            .map_err(|e| mongo_error("listing collections", e))?;
        if names.iter().any(|n| n == COLLECTION) {
            self.db
                .run_command(doc! {
                    "collMod": COLLECTION,
                    "validator": schema,
                    "validationLevel": "strict",
                    "validationAction": "error",
                })
                .await
                .map_err(|e| mongo_error("updating the validator", e))?;
        } else {
            self.db
                .create_collection(COLLECTION)
                .validator(schema)
                .validation_level(mongodb::options::ValidationLevel::Strict)
                .validation_action(mongodb::options::ValidationAction::Error)
                .await
                .map_err(|e| mongo_error("creating the collection", e))?;
        }
        let mut all = base_indexes();
        all.extend(indexes);
        // the facts the read policy's conditions test (`super::access`)
        if let Some(auth) = defs.authorization {
            for a in auth.attributes.iter().filter(|a| a.recorded) {
                all.push(
                    IndexModel::builder()
                        .keys(doc! { format!("facts.{}", a.name): 1, "_id": -1 })
                        .options(
                            IndexOptions::builder()
                                .name(format!("fact_{}", a.name.replace('.', "_")))
                                .build(),
                        )
                        .build(),
                );
            }
        }
        self.orders
            .create_indexes(all)
            .await
            .map_err(|e| mongo_error("creating indexes", e))?;
        Ok(())
    }

    /// Writes `document` (with `_id` and `version`) unless the collection
    /// holds the order at the same or a later version. Returns whether it
    /// was written.
    pub async fn put(&self, document: Document) -> Result<bool, EngineError> {
        let id = document.get("_id").cloned().unwrap_or(Bson::Null);
        let version = document.get("version").cloned().unwrap_or(Bson::Null);
        let result = self
            .orders
            .replace_one(doc! { "_id": id, "version": { "$lt": version } }, document)
            .upsert(true)
            .await;
        match result {
            Ok(_) => Ok(true),
            // the filter missed because a document of this id with a
            // version at least as new is there: the upsert's insert then
            // collides with it, which is the guard doing its work
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) if is_validation_failure(&e) => {
                tracing::error!(
                    error = %e,
                    "MongoDB refused a history document; it is left out of the export"
                );
                Ok(false)
            }
            Err(e) => Err(mongo_error("writing a history document", e)),
        }
    }

    /// Whether the server answers (a `ping`).
    pub async fn ping(&self) -> Result<(), EngineError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(|e| mongo_error("ping", e))
    }
}

/// Whether a write failed on a duplicate `_id` (code 11000).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().all(|w| w.code == 11000)),
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

/// Whether a write failed on the collection's validator (code 121).
pub fn is_validation_failure(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == 121,
        _ => false,
    }
}

/// The thesis's indexes (requester: `auftraggeber_id`, host: `host_id`),
/// and the state.
fn base_indexes() -> Vec<IndexModel> {
    let index = |name: &str, keys: Document| {
        IndexModel::builder()
            .keys(keys)
            .options(IndexOptions::builder().name(name.to_owned()).build())
            .build()
    };
    vec![
        index("requester", doc! { "requester": 1, "_id": -1 }),
        index("host", doc! { "host_id": 1, "_id": -1 }),
        index("state", doc! { "state": 1, "_id": -1 }),
    ]
}

/// The BSON types a field's stored value may have: what the engine's shape
/// check lets into an order (`crate::workflow::executor`), so that an order
/// whose value is malformed — kept with an error naming the field — is
/// still a valid document.
fn field_schema(field: &FieldDef) -> Document {
    let types: Vec<&str> = if field.list {
        vec!["array", "null"]
    } else {
        match field.ty {
            FieldType::Record => vec!["object", "null"],
            FieldType::Integer => vec!["string", "int", "long", "double", "null"],
            FieldType::Bool => vec!["string", "bool", "null"],
            // texts, and the typed values written as text (e-mail
            // addresses, URLs, DNS names, subnets, …); named one by one so
            // that a new field type must be placed here
            FieldType::String
            | FieldType::Hostname
            | FieldType::Mac
            | FieldType::Ipv4
            | FieldType::Ipv6
            | FieldType::Subnet
            | FieldType::Building
            | FieldType::Room
            | FieldType::Enum
            | FieldType::Person
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Email
            | FieldType::Url
            | FieldType::Dnsname => vec!["string", "null"],
        }
    };
    let mut schema = doc! { "bsonType": types };
    if !field.description.is_empty() {
        schema.insert("description", field.description);
    }
    schema
}

fn findings_schema() -> Document {
    doc! {
        "bsonType": "array",
        "items": {
            "bsonType": "object",
            "required": ["check", "message"],
            "properties": {
                "check": { "bsonType": "string" },
                "field": { "bsonType": "string" },
                "message": { "bsonType": "string" },
            },
        },
    }
}

/// The collection's `$jsonSchema` validator, generated from the compiled
/// definitions: the document's members and their types, the order types
/// and states the definitions know, and per order type the fields it has
/// with the types their values may take. A document of an unknown order
/// type, with an unknown field, or with a wrongly typed value is refused by
/// MongoDB itself.
pub fn validator(defs: &'static Definitions) -> Document {
    let mut states: Vec<&str> = vec![crate::store::history::INSERTED];
    for workflow in defs.workflows {
        for state in workflow.states {
            if !states.contains(&state.name) {
                states.push(state.name);
            }
        }
    }
    let types: Vec<&str> = defs.order_types.iter().map(|t| t.name).collect();
    let per_type: Vec<Document> = defs
        .order_types
        .iter()
        .map(|t| {
            let mut properties = Document::new();
            for f in t.fields {
                properties.insert(f.name, field_schema(f));
            }
            doc! {
                "properties": {
                    "type": { "enum": [t.name] },
                    "fields": {
                        "bsonType": "object",
                        "additionalProperties": false,
                        "properties": properties,
                    },
                },
            }
        })
        .collect();
    let integer = vec!["int", "long"];
    doc! {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["_id", "version", "type", "requester", "state", "closed",
                         "created_at", "updated_at", "fields", "changed", "states",
                         "errors", "warnings", "accepted_warnings", "waiting_ms", "waited"],
            "properties": {
                "_id": { "bsonType": integer.clone(), "minimum": 1 },
                "version": { "bsonType": integer.clone(), "minimum": 1 },
                "type": { "enum": types },
                "host_id": { "bsonType": ["string", "null"] },
                "requester": { "bsonType": "string" },
                "state": { "enum": states.clone() },
                "closed": { "bsonType": "bool" },
                "created_at": { "bsonType": "string" },
                "updated_at": { "bsonType": "string" },
                "fields": { "bsonType": "object" },
                "changed": {
                    "bsonType": "object",
                    "additionalProperties": { "bsonType": "array", "minItems": 2, "maxItems": 2 },
                },
                "states": {
                    "bsonType": "array",
                    "minItems": 1,
                    "items": {
                        "bsonType": "object",
                        "required": ["state", "at"],
                        "properties": {
                            "state": { "enum": states },
                            "at": { "bsonType": "string" },
                            "comment": { "bsonType": "string" },
                            "by": { "bsonType": "string" },
                        },
                    },
                },
                "errors": findings_schema(),
                "warnings": findings_schema(),
                "accepted_warnings": findings_schema(),
                "facts": { "bsonType": ["object", "null"] },
                "closed_at": { "bsonType": ["string", "null"] },
                "duration_ms": { "bsonType": ["int", "long", "null"], "minimum": 0 },
                "waiting_ms": { "bsonType": integer, "minimum": 0 },
                "waited": { "bsonType": "bool" },
            },
            "oneOf": per_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: FieldType, list: bool) -> FieldDef {
        FieldDef {
            name: "f",
            description: "",
            ty,
            required: false,
            list,
            values: &[],
            min: None,
            max: None,
            max_length: None,
            multiline: false,
            fields: &[],
        }
    }

    #[test]
    fn emails_urls_and_dns_names_are_stored_as_text() {
        for ty in [FieldType::Email, FieldType::Url, FieldType::Dnsname] {
            let schema = field_schema(&field(ty, false));
            assert_eq!(
                schema.get_array("bsonType").unwrap(),
                &vec![Bson::from("string"), Bson::from("null")],
                "{ty:?}"
            );
        }
        let list = field_schema(&field(FieldType::Subnet, true));
        assert_eq!(
            list.get_array("bsonType").unwrap(),
            &vec![Bson::from("array"), Bson::from("null")]
        );
    }
}

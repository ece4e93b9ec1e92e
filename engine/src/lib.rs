//! The auftrag runtime. It runs compiled definitions ([`defs::Definitions`])
//! for an order domain it knows nothing about: the domain brings its
//! definitions, handlers and tables through [`Domain`].
//!
//! Path of an order: [`http`] parses and authenticates the request,
//! [`executor`] stores the order and drives its workflow (actions from
//! [`builtin`] or the domain, checks through [`checks`]) inside one database
//! transaction per step, and [`store`] keeps the order and its history.

pub mod auth;
pub mod builtin;
pub mod checks;
pub mod commit;
pub mod context;
pub mod defs;
pub mod domain;
pub mod error;
pub mod executor;
pub mod graph;
pub mod history;
pub mod http;
pub mod jobs;
pub mod pdp;
pub mod server;
pub mod store;
pub mod types;
pub mod validate;
pub mod writes;

pub use domain::{DemoPerson, Domain};
pub use error::{EngineError, HandlerError};
pub use futures::future::BoxFuture;
pub use server::Engine;

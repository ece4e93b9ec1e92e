//! The auftrag runtime. It runs compiled definitions ([`defs::Definitions`])
//! for an order domain it knows nothing about: the domain brings its
//! definitions, handlers and tables through [`Domain`].
//!
//! The layers, each a folder:
//! - [`http`]: the server, routes, tokens and problem+json errors;
//! - [`workflow`]: definitions, executor, checks, built-in actions;
//! - [`pdp`]: the compiled policy decision point (authorization);
//! - [`jobs`]: job queues and the agency's protocol;
//! - [`metrics`]: Prometheus metrics;
//! - [`notify`]: e-mail notifications (outbox and SMTP sender);
//! - [`store`]: the database, group commit, the order history;
//! - [`ui`]: the web pages for staff and requesters.
//!
//! Path of an order: [`http`] parses and authenticates the request,
//! [`workflow::executor`] stores the order and drives its workflow (actions
//! from [`builtin`] or the domain, checks through [`workflow::checks`])
//! inside one database transaction per step, and [`store`] keeps the order
//! and its history.

pub mod domain;
pub mod error;
pub mod history;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod pdp;
pub mod store;
pub mod ui;
pub mod workflow;

// The modules a domain's handlers and its generated code name, at the
// crate's root so the domain-facing paths stay short and stable.
pub use workflow::{builtin, context, defs, types};

pub use domain::{Choice, DemoPerson, Domain, Inverse, MyObject, ObjectOf};
pub use error::{EngineError, HandlerError};
pub use futures::future::BoxFuture;
pub use http::server::Engine;

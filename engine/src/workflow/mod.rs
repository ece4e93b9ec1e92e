//! Orders through their workflow: the compiled definitions ([`defs`]) and
//! the field types they name ([`types`]), the context handlers work on
//! ([`context`]), the executor that drives an order from state to state
//! ([`executor`]), the check runner ([`checks`]), the engine's built-in
//! actions ([`builtin`]) and the workflows as diagrams ([`graph`]).
//!
//! This layer decides what happens to an order; it reads and writes through
//! [`crate::store`] and is called by [`crate::http`] and start-up.

pub mod builtin;
pub mod checks;
pub mod claims;
pub mod context;
pub mod defs;
pub mod executor;
pub mod graph;
pub mod types;

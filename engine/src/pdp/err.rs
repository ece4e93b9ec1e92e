//! Errors met while evaluating policies. They never escape as Rust errors:
//! XACML turns them into Indeterminate decisions, and the explanation keeps
//! them.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize)]
pub enum AttrError {
    /// A `must_be_present` attribute had no value.
    #[error("attribute `{0}` is missing")]
    Missing(&'static str),
    /// The attribute resolver failed (e.g. the device database was unreachable).
    #[error("attribute `{name}` could not be resolved: {reason}")]
    Unresolved { name: &'static str, reason: String },
    /// A value had another type than its declaration (a resolver bug).
    #[error("attribute `{name}` is not a {expected}")]
    Type {
        name: &'static str,
        expected: &'static str,
    },
}

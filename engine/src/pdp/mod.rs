//! The policy decision point (PDP) of the XACML architecture (thesis §3),
//! over policies that the compiler turned into Rust: targets and conditions are
//! plain functions, so a decision interprets nothing at run time.
//!
//! Split as in Cedar: the compiled-policy data model ([`ast`]), attribute
//! values and requests ([`request`]), evaluation with XACML 3.0 semantics
//! ([`eval`], including all eight combining algorithms in [`algorithm`]), and
//! errors ([`err`]). Every decision names the policy and rule that decided and
//! the attribute values they read.

pub mod algorithm;
pub mod ast;
pub mod cases;
pub mod err;
pub mod eval;
pub mod partial;
pub mod pep;
pub mod pip;
pub mod request;

pub use algorithm::Algorithm;
pub use ast::{
    ArgumentDef, CmpOp, Effect, Expr, Lit, ObligationDef, PolicyDef, PolicyNode, PolicySetDef,
    Predicate, RuleDef,
};
pub use err::AttrError;
pub use eval::{Ctx, Decision, Explanation, Indeterminate, Response, and3, decide, evaluate, or3};
pub use ipnet::IpNet;
pub use pep::{
    Authorization, authorize, decide_action, decide_order, decide_with, may_read,
    redact_for_requester, summary, summary_for_subject,
};
pub use pip::{PipCtx, READ_ORDER, ROLLBACK_ORDER, ResolverFn, STAFF_ACTION, Source, resolve};
pub use request::{AttrId, AttributeDef, Category, Request, Value, ValueType};

/// A subnet literal of a compiled policy (validated at build time).
pub fn parse_subnet(text: &str) -> Option<IpNet> {
    text.parse().ok()
}

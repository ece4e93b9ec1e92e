//! Compiled policies: static tables with function pointers, emitted by the
//! compiler from `policies.xml`.

use serde::Serialize;

use super::algorithm::Algorithm;
use super::err::AttrError;
use super::eval::Ctx;
use super::request::AttrId;

/// A compiled target or condition: `Ok(true)` matches, `Ok(false)` does not,
/// `Err` is XACML's Indeterminate.
pub type PredicateFn = fn(&mut Ctx<'_>) -> Result<bool, AttrError>;

/// A compiled target or condition: the function decisions run, and the
/// same expression as data, which partial evaluation reads
/// ([`super::partial`]). The compiler emits both from one expression tree.
#[derive(Clone, Copy)]
pub struct Predicate {
    pub eval: PredicateFn,
    pub expr: &'static Expr,
}

impl std::fmt::Debug for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.expr.fmt(f)
    }
}

/// A policy expression as data (`policies.xml`, typed by the compiler):
/// what [`Predicate::eval`] computes, with XACML's semantics — a comparison
/// with a missing value is false, an attribute error makes the part
/// Indeterminate, `and`/`or` as [`super::and3`]/[`super::or3`].
#[derive(Debug)]
pub enum Expr {
    /// A boolean attribute used as a condition (true when it is `true`).
    Attr(AttrId),
    Lit(Lit),
    Not(&'static Expr),
    And(&'static [Expr]),
    Or(&'static [Expr]),
    /// A comparison of two operands (attributes or literals).
    Cmp(CmpOp, &'static Expr, &'static Expr),
}

/// A literal of a policy expression.
#[derive(Debug)]
pub enum Lit {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Ip(std::net::IpAddr),
    /// Validated by the compiler; parsed when read.
    Subnet(&'static str),
    /// Seconds since the Unix epoch.
    Time(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Membership in a bag, or an address in a subnet.
    In,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Permit,
    Deny,
}

/// An obligation (must be carried out) or advice (may be) attached to an
/// effect, e.g. "notify the device admin", "park for review".
#[derive(Debug, Serialize)]
pub struct ObligationDef {
    pub id: &'static str,
    /// Only returned when the decision has this effect.
    pub on: Effect,
    /// Advice rather than obligation.
    pub advice: bool,
    pub description: &'static str,
    /// The obligation's arguments (e.g. `to` = `resource.admin`).
    pub arguments: &'static [ArgumentDef],
}

/// An argument of an obligation: an attribute's value or a constant.
#[derive(Debug, Serialize)]
pub struct ArgumentDef {
    pub name: &'static str,
    pub attribute: Option<&'static str>,
    pub value: Option<&'static str>,
}

pub struct RuleDef {
    pub id: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    pub target: Option<Predicate>,
    pub condition: Option<Predicate>,
    pub obligations: &'static [ObligationDef],
}

pub struct PolicyDef {
    pub id: &'static str,
    pub description: &'static str,
    pub target: Option<Predicate>,
    pub algorithm: Algorithm,
    pub rules: &'static [RuleDef],
    pub obligations: &'static [ObligationDef],
}

pub struct PolicySetDef {
    pub id: &'static str,
    pub description: &'static str,
    pub target: Option<Predicate>,
    pub algorithm: Algorithm,
    pub children: &'static [PolicyNode],
}

pub enum PolicyNode {
    Policy(&'static PolicyDef),
    Set(&'static PolicySetDef),
}

macro_rules! debug_by_id {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self.id)
            }
        }
    )*};
}
debug_by_id!(RuleDef, PolicyDef, PolicySetDef);

impl std::fmt::Debug for PolicyNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Policy(p) => p.fmt(f),
            Self::Set(s) => s.fmt(f),
        }
    }
}

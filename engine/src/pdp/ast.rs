//! Compiled policies: static tables with function pointers, emitted by the
//! compiler from `policies.xml`.

use serde::Serialize;

use super::algorithm::Algorithm;
use super::err::AttrError;
use super::eval::Ctx;

/// A compiled target or condition: `Ok(true)` matches, `Ok(false)` does not,
/// `Err` is XACML's Indeterminate.
pub type PredicateFn = fn(&mut Ctx<'_>) -> Result<bool, AttrError>;

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
    pub target: Option<PredicateFn>,
    pub condition: Option<PredicateFn>,
    pub obligations: &'static [ObligationDef],
}

pub struct PolicyDef {
    pub id: &'static str,
    pub description: &'static str,
    pub target: Option<PredicateFn>,
    pub algorithm: Algorithm,
    pub rules: &'static [RuleDef],
    pub obligations: &'static [ObligationDef],
}

pub struct PolicySetDef {
    pub id: &'static str,
    pub description: &'static str,
    pub target: Option<PredicateFn>,
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

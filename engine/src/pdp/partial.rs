//! Partial evaluation of the compiled policies (as Cedar's and OPA's for
//! data filtering): the subject, action and environment are known, the
//! resource — a stored order — is left open. What remains of the policies
//! is a condition on the order's stored values, which a query can carry
//! ([`crate::history::access`]).
//!
//! The evaluation follows [`super::eval`] exactly, over the expressions
//! the compiler emits as data next to each compiled predicate
//! ([`super::ast::Predicate::expr`]): targets, conditions, every combining
//! algorithm and XACML's Indeterminate values are computed symbolically —
//! each of a node's decisions becomes a formula over the order's columns —
//! and the condition is the root's `Permit`.
//!
//! An attribute of the order is one of:
//! - stored with it ([`Open::Column`]): the facts kept at its decision
//!   (`record="yes"`), its requester (`source="requester"`), its type
//!   (`source="order_type"`), the key field (`source="order.FIELD"`);
//! - read live for it ([`Open::Unknown`]): any other resource attribute.
//!   A comparison with it is an unknown; the result is then a lower bound
//!   (surely readable) and an upper bound (candidates), and the PDP decides
//!   each candidate ([`crate::history::access::Access::Verify`]).
//!
//! Facts exist for orders that have been decided; an order without them
//! (not decided yet, or stored before facts were kept) is decided on live
//! values, so for those rows the recorded attributes are read from their
//! sources as the PDP would ([`Cond::Present`] of [`Column::Facts`]
//! separates the two).

use super::ast::{CmpOp, Expr, Lit, PolicyDef, PolicyNode, PolicySetDef, Predicate, RuleDef};
use super::request::{AttrId, AttributeDef, Request, Value, ValueType};
use super::{Algorithm, Authorization, Effect, Source};
use crate::history::access::{Access, Column, Cond, Order};

/// What partial evaluation knows of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Open {
    /// Its value is in the request (subject, action, environment).
    Known,
    /// The stored order holds it in this column (absent: no value).
    Column(Column),
    /// It is read live for the order: not translatable.
    Unknown,
}

/// A formula over stored columns, with unknowns.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    Const(bool),
    /// An atomic condition ([`Cond::Eq`], [`Cond::In`], [`Cond::Cmp`],
    /// [`Cond::Present`]).
    Atom(Cond),
    /// Something not translatable (numbered; each may be true or false).
    Unknown(u32),
    Not(Box<Formula>),
    And(Vec<Formula>),
    Or(Vec<Formula>),
}

use Formula as F;

const TRUE: F = F::Const(true);
const FALSE: F = F::Const(false);

fn not(f: F) -> F {
    match f {
        F::Const(b) => F::Const(!b),
        F::Not(inner) => *inner,
        other => F::Not(Box::new(other)),
    }
}

fn junction(parts: Vec<F>, and: bool) -> F {
    // `and`: true is neutral, false absorbs; `or` the other way round
    let mut out: Vec<F> = Vec::new();
    for p in parts {
        match p {
            F::Const(b) if b == and => {}
            F::Const(_) => return F::Const(!and),
            F::And(inner) if and => {
                for q in inner {
                    if !out.contains(&q) {
                        out.push(q);
                    }
                }
            }
            F::Or(inner) if !and => {
                for q in inner {
                    if !out.contains(&q) {
                        out.push(q);
                    }
                }
            }
            p => {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    // x and not x; x or not x
    if out
        .iter()
        .any(|p| out.iter().any(|q| matches!(q, F::Not(n) if **n == *p)))
    {
        return F::Const(!and);
    }
    match out.len() {
        0 => F::Const(and),
        1 => out.pop().unwrap_or(F::Const(and)),
        _ if and => F::And(out),
        _ => F::Or(out),
    }
}

fn and(parts: Vec<F>) -> F {
    junction(parts, true)
}

fn or(parts: Vec<F>) -> F {
    junction(parts, false)
}

impl Formula {
    /// The formula with every unknown replaced so that the result is a
    /// lower (`upper` false) or an upper bound (`upper` true).
    pub fn bound(&self, upper: bool) -> F {
        match self {
            F::Unknown(_) => F::Const(upper),
            F::Not(inner) => not(inner.bound(!upper)),
            F::And(parts) => and(parts.iter().map(|p| p.bound(upper)).collect()),
            F::Or(parts) => or(parts.iter().map(|p| p.bound(upper)).collect()),
            other => other.clone(),
        }
    }

    /// Whether it has unknowns.
    pub fn is_exact(&self) -> bool {
        match self {
            F::Unknown(_) => false,
            F::Not(inner) => inner.is_exact(),
            F::And(parts) | F::Or(parts) => parts.iter().all(F::is_exact),
            _ => true,
        }
    }

    /// As a condition (unknowns must have been bounded away: they read as
    /// false).
    pub fn to_cond(&self) -> Cond {
        match self {
            F::Const(true) => Cond::All(Vec::new()),
            F::Const(false) | F::Unknown(_) => Cond::Any(Vec::new()),
            F::Atom(c) => c.clone(),
            F::Not(inner) => Cond::Not(Box::new(inner.to_cond())),
            F::And(parts) => Cond::All(parts.iter().map(F::to_cond).collect()),
            F::Or(parts) => Cond::Any(parts.iter().map(F::to_cond).collect()),
        }
    }
}

/// A three-valued predicate as formulas: when it is true (`t`), when
/// Indeterminate (`e`); false otherwise.
#[derive(Debug, Clone)]
struct P3 {
    t: F,
    e: F,
}

impl P3 {
    const TRUE: P3 = P3 { t: TRUE, e: FALSE };
    const FALSE: P3 = P3 { t: FALSE, e: FALSE };
    const ERROR: P3 = P3 { t: FALSE, e: TRUE };

    fn f(&self) -> F {
        not(or(vec![self.t.clone(), self.e.clone()]))
    }

    fn exact(t: F) -> P3 {
        P3 { t, e: FALSE }
    }
}

/// A node's decision as formulas: when it is Permit, Deny, Indeterminate
/// {D}, {P}, {DP}; NotApplicable otherwise.
#[derive(Debug, Clone)]
struct Dec {
    permit: F,
    deny: F,
    ind_d: F,
    ind_p: F,
    ind_dp: F,
}

impl Dec {
    const NA: Dec = Dec {
        permit: FALSE,
        deny: FALSE,
        ind_d: FALSE,
        ind_p: FALSE,
        ind_dp: FALSE,
    };

    fn na(&self) -> F {
        not(or(vec![
            self.permit.clone(),
            self.deny.clone(),
            self.ind_d.clone(),
            self.ind_p.clone(),
            self.ind_dp.clone(),
        ]))
    }
}

/// An operand of a comparison.
enum Operand<'r> {
    /// A known value (`Err`: Indeterminate).
    Val(Result<Option<Value>, ()>),
    /// A set the request holds (a known bag).
    Bag(Result<&'r [Value], ()>),
    Column(Column, ValueType),
    Unknown,
}

/// The partial evaluator: the request (known values) and what each
/// attribute is.
pub struct Partial<'r> {
    request: &'r Request,
    open: &'r [Open],
    unknowns: u32,
}

fn type_ok(ty: ValueType, v: &Value) -> bool {
    matches!(
        (ty, v),
        (ValueType::String, Value::String(_))
            | (ValueType::Integer, Value::Integer(_))
            | (ValueType::Boolean, Value::Boolean(_))
            | (ValueType::Ip, Value::Ip(_))
            | (ValueType::Subnet, Value::Subnet(_))
            | (ValueType::Time, Value::Time(_))
    )
}

fn lit_value(lit: &Lit) -> Option<Value> {
    Some(match lit {
        Lit::Str(s) => Value::String((*s).to_owned()),
        Lit::Int(i) => Value::Integer(*i),
        Lit::Bool(b) => Value::Boolean(*b),
        Lit::Ip(ip) => Value::Ip(*ip),
        Lit::Subnet(s) => Value::Subnet(super::parse_subnet(s)?),
        Lit::Time(t) => Value::Time(*t),
    })
}

/// A value as a column holds it (as [`super::pip::recorded_facts`] keeps it).
fn json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn ordering(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) | (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Ip(x), Value::Ip(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A comparison of known values, as the compiled code makes it: a missing
/// value compares false.
fn compare(op: CmpOp, l: Option<&Value>, r: Option<&Value>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return false;
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        CmpOp::Eq => l == r,
        CmpOp::Ne => l != r,
        CmpOp::Lt => ordering(l, r) == Some(Less),
        CmpOp::Le => matches!(ordering(l, r), Some(Less | Equal)),
        CmpOp::Gt => ordering(l, r) == Some(Greater),
        CmpOp::Ge => matches!(ordering(l, r), Some(Greater | Equal)),
        CmpOp::In => match (l, r) {
            (Value::Ip(ip), Value::Subnet(net)) => net.contains(ip),
            _ => false,
        },
    }
}

/// `op` with its operands swapped (`a < b` is `b > a`).
fn flipped(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

impl<'r> Partial<'r> {
    pub fn new(request: &'r Request, open: &'r [Open]) -> Self {
        Self {
            request,
            open,
            unknowns: 0,
        }
    }

    fn def(&self, id: AttrId) -> &'static AttributeDef {
        &self.request.attributes[usize::from(id)]
    }

    fn unknown(&mut self) -> F {
        self.unknowns += 1;
        F::Unknown(self.unknowns)
    }

    fn unknown3(&mut self) -> P3 {
        P3 {
            t: self.unknown(),
            e: self.unknown(),
        }
    }

    /// A known attribute's value as [`super::eval::Ctx::get`] reads it.
    fn known(&self, id: AttrId) -> Result<Option<&'r Value>, ()> {
        let i = usize::from(id);
        match &self.request.values[i] {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => Err(()),
            None if self.request.attributes[i].must_be_present => Err(()),
            None => Ok(None),
        }
    }

    fn open(&self, id: AttrId) -> &Open {
        self.open.get(usize::from(id)).unwrap_or(&Open::Unknown)
    }

    /// An operand read as one value of the attribute's type.
    fn scalar(&self, e: &Expr) -> Operand<'r> {
        match e {
            Expr::Lit(l) => Operand::Val(Ok(lit_value(l))),
            Expr::Attr(id) => {
                let def = self.def(*id);
                match self.open(*id) {
                    Open::Known => Operand::Val(self.known(*id).and_then(|v| match v {
                        None => Ok(None),
                        Some(v) if type_ok(def.ty, v) => Ok(Some(v.clone())),
                        Some(_) => Err(()),
                    })),
                    Open::Column(c) if !def.multi => Operand::Column(c.clone(), def.ty),
                    _ => Operand::Unknown,
                }
            }
            // the compiler allows only attributes and values here
            _ => Operand::Val(Err(())),
        }
    }

    /// An operand read as a bag (the right side of `in` when it is a
    /// multi-valued attribute).
    fn bag(&self, id: AttrId) -> Operand<'r> {
        match self.open(id) {
            Open::Known => Operand::Bag(self.known(id).and_then(|v| match v {
                None => Ok(&[][..]),
                Some(Value::Set(s)) => Ok(s.as_slice()),
                Some(_) => Err(()),
            })),
            _ => Operand::Unknown,
        }
    }

    fn cmp(&mut self, op: CmpOp, lhs: &Expr, rhs: &Expr) -> P3 {
        let rhs_bag = matches!(rhs, Expr::Attr(id) if self.def(*id).multi) && op == CmpOp::In;
        let r = match rhs {
            Expr::Attr(id) if rhs_bag => self.bag(*id),
            _ => self.scalar(rhs),
        };
        let l = self.scalar(lhs);
        // an error on either side makes the comparison Indeterminate
        if matches!(l, Operand::Val(Err(_)))
            || matches!(r, Operand::Val(Err(_)) | Operand::Bag(Err(_)))
        {
            return P3::ERROR;
        }
        match (l, r) {
            (Operand::Val(Ok(l)), Operand::Val(Ok(r))) => {
                P3::exact(F::Const(compare(op, l.as_ref(), r.as_ref())))
            }
            (Operand::Val(Ok(l)), Operand::Bag(Ok(set))) => {
                P3::exact(F::Const(l.is_some_and(|v| set.contains(&v))))
            }
            (Operand::Column(c, ty), Operand::Val(Ok(v))) => self.column_cmp(c, ty, op, v),
            (Operand::Val(Ok(v)), Operand::Column(c, ty)) if op != CmpOp::In => {
                self.column_cmp(c, ty, flipped(op), v)
            }
            (Operand::Column(c, _), Operand::Bag(Ok(set))) => {
                P3::exact(F::Atom(Cond::In(c, set.iter().map(json).collect())))
            }
            _ => self.unknown3(),
        }
    }

    /// `column op value`, the column on the left.
    fn column_cmp(&mut self, c: Column, ty: ValueType, op: CmpOp, v: Option<Value>) -> P3 {
        let Some(v) = v else {
            // a comparison with a missing value is false
            return P3::FALSE;
        };
        let present = || F::Atom(Cond::Present(c.clone()));
        let eq = || F::Atom(Cond::Eq(c.clone(), json(&v)));
        let numeric = matches!(ty, ValueType::Integer | ValueType::Time)
            && matches!(v, Value::Integer(_) | Value::Time(_));
        let order = match op {
            CmpOp::Lt => Some(Order::Lt),
            CmpOp::Le => Some(Order::Le),
            CmpOp::Gt => Some(Order::Gt),
            CmpOp::Ge => Some(Order::Ge),
            _ => None,
        };
        match op {
            CmpOp::Eq => P3::exact(eq()),
            CmpOp::Ne => P3::exact(and(vec![present(), not(eq())])),
            _ if numeric => match order {
                Some(o) => P3::exact(F::Atom(Cond::Cmp(c.clone(), o, json(&v)))),
                None => self.unknown3(),
            },
            // addresses in subnets, orders of addresses: not in SQL here
            _ => self.unknown3(),
        }
    }

    fn pred(&mut self, e: &Expr) -> P3 {
        match e {
            Expr::Lit(Lit::Bool(b)) => P3::exact(F::Const(*b)),
            Expr::Lit(_) => P3::ERROR,
            Expr::Attr(id) => match self.open(*id) {
                Open::Known => match self.known(*id) {
                    Err(()) => P3::ERROR,
                    Ok(None) => P3::FALSE,
                    Ok(Some(Value::Boolean(b))) => P3::exact(F::Const(*b)),
                    Ok(Some(_)) => P3::ERROR,
                },
                Open::Column(c) if !self.def(*id).multi => {
                    P3::exact(F::Atom(Cond::Eq(c.clone(), serde_json::Value::Bool(true))))
                }
                _ => self.unknown3(),
            },
            Expr::Not(inner) => {
                let p = self.pred(inner);
                P3 { t: p.f(), e: p.e }
            }
            Expr::And(parts) | Expr::Or(parts) => {
                let ps: Vec<P3> = parts.iter().map(|p| self.pred(p)).collect();
                let is_and = matches!(e, Expr::And(_));
                // and: true if all are, false if any is, else Indeterminate
                let (t, f) = if is_and {
                    (
                        and(ps.iter().map(|p| p.t.clone()).collect()),
                        or(ps.iter().map(P3::f).collect()),
                    )
                } else {
                    (
                        or(ps.iter().map(|p| p.t.clone()).collect()),
                        and(ps.iter().map(P3::f).collect()),
                    )
                };
                let e = not(or(vec![t.clone(), f]));
                P3 { t, e }
            }
            Expr::Cmp(op, l, r) => self.cmp(*op, l, r),
        }
    }

    fn target(&mut self, p: Option<Predicate>) -> P3 {
        match p {
            None => P3::TRUE,
            Some(p) => self.pred(p.expr),
        }
    }

    fn rule(&mut self, rule: &'static RuleDef) -> Dec {
        let t = self.target(rule.target);
        let c = self.target(rule.condition);
        let applies = and(vec![t.t.clone(), c.t.clone()]);
        let indeterminate = or(vec![t.e.clone(), and(vec![t.t, c.e])]);
        match rule.effect {
            Effect::Permit => Dec {
                permit: applies,
                ind_p: indeterminate,
                ..Dec::NA
            },
            Effect::Deny => Dec {
                deny: applies,
                ind_d: indeterminate,
                ..Dec::NA
            },
        }
    }

    /// A policy's or set's value from its target and its combined children
    /// (XACML 3.0 Tables 7 and 8).
    fn under_target(target: P3, inner: Dec) -> Dec {
        let (t, e) = (target.t, target.e);
        Dec {
            permit: and(vec![t.clone(), inner.permit.clone()]),
            deny: and(vec![t.clone(), inner.deny.clone()]),
            ind_p: or(vec![
                and(vec![t.clone(), inner.ind_p.clone()]),
                and(vec![e.clone(), or(vec![inner.permit, inner.ind_p])]),
            ]),
            ind_d: or(vec![
                and(vec![t.clone(), inner.ind_d.clone()]),
                and(vec![e.clone(), or(vec![inner.deny, inner.ind_d])]),
            ]),
            ind_dp: and(vec![or(vec![t, e]), inner.ind_dp]),
        }
    }

    fn policy(&mut self, policy: &'static PolicyDef) -> Dec {
        let target = self.target(policy.target);
        let applicable: Vec<P3> = policy.rules.iter().map(|r| self.target(r.target)).collect();
        let children: Vec<Dec> = policy.rules.iter().map(|r| self.rule(r)).collect();
        let inner = combine(policy.algorithm, &applicable, &children);
        Self::under_target(target, inner)
    }

    fn set(&mut self, set: &'static PolicySetDef) -> Dec {
        let target = self.target(set.target);
        let applicable: Vec<P3> = set
            .children
            .iter()
            .map(|c| match c {
                PolicyNode::Policy(p) => self.target(p.target),
                PolicyNode::Set(s) => self.target(s.target),
            })
            .collect();
        let children: Vec<Dec> = set.children.iter().map(|c| self.node(c)).collect();
        let inner = combine(set.algorithm, &applicable, &children);
        Self::under_target(target, inner)
    }

    fn node(&mut self, node: &'static PolicyNode) -> Dec {
        match node {
            PolicyNode::Policy(p) => self.policy(p),
            PolicyNode::Set(s) => self.set(s),
        }
    }

    /// When the root decides Permit.
    pub fn permit(&mut self, root: &'static PolicyNode) -> F {
        self.node(root).permit
    }
}

fn any(children: &[Dec], pick: impl Fn(&Dec) -> F) -> F {
    or(children.iter().map(pick).collect())
}

/// The combining algorithms of [`super::algorithm::combine`], over formulas.
fn combine(algorithm: Algorithm, applicable: &[P3], children: &[Dec]) -> Dec {
    match algorithm {
        Algorithm::DenyOverrides | Algorithm::OrderedDenyOverrides => {
            let d = overrides(
                children,
                |c| c.deny.clone(),
                |c| c.permit.clone(),
                |c| c.ind_d.clone(),
                |c| c.ind_p.clone(),
            );
            Dec {
                deny: d.0,
                permit: d.1,
                ind_d: d.2,
                ind_p: d.3,
                ind_dp: d.4,
            }
        }
        Algorithm::PermitOverrides | Algorithm::OrderedPermitOverrides => {
            let d = overrides(
                children,
                |c| c.permit.clone(),
                |c| c.deny.clone(),
                |c| c.ind_p.clone(),
                |c| c.ind_d.clone(),
            );
            Dec {
                permit: d.0,
                deny: d.1,
                ind_p: d.2,
                ind_d: d.3,
                ind_dp: d.4,
            }
        }
        Algorithm::FirstApplicable => {
            // child i decides when all before it are NotApplicable
            let mut out = Dec::NA;
            let mut before: Vec<F> = Vec::new();
            for c in children {
                let first = and(before.clone());
                let pick =
                    |x: &F, acc: &F| or(vec![acc.clone(), and(vec![first.clone(), x.clone()])]);
                out = Dec {
                    permit: pick(&c.permit, &out.permit),
                    deny: pick(&c.deny, &out.deny),
                    ind_d: pick(&c.ind_d, &out.ind_d),
                    ind_p: pick(&c.ind_p, &out.ind_p),
                    ind_dp: pick(&c.ind_dp, &out.ind_dp),
                };
                before.push(c.na());
            }
            out
        }
        Algorithm::DenyUnlessPermit => {
            let permit = any(children, |c| c.permit.clone());
            Dec {
                deny: not(permit.clone()),
                permit,
                ..Dec::NA
            }
        }
        Algorithm::PermitUnlessDeny => {
            let deny = any(children, |c| c.deny.clone());
            Dec {
                permit: not(deny.clone()),
                deny,
                ..Dec::NA
            }
        }
        Algorithm::OnlyOneApplicable => {
            let any_error = or(applicable.iter().map(|a| a.e.clone()).collect());
            let none = and(applicable.iter().map(P3::f).collect());
            // child i alone matches, no target Indeterminate
            let alone: Vec<F> = (0..applicable.len())
                .map(|i| {
                    let mut parts = vec![applicable[i].t.clone()];
                    parts.extend(
                        (0..applicable.len())
                            .filter(|j| *j != i)
                            .map(|j| applicable[j].f()),
                    );
                    and(parts)
                })
                .collect();
            let one = or(alone.clone());
            let chosen = |pick: &dyn Fn(&Dec) -> F| {
                or(alone
                    .iter()
                    .zip(children)
                    .map(|(a, c)| and(vec![a.clone(), pick(c)]))
                    .collect())
            };
            Dec {
                permit: chosen(&|c| c.permit.clone()),
                deny: chosen(&|c| c.deny.clone()),
                ind_d: chosen(&|c| c.ind_d.clone()),
                ind_p: chosen(&|c| c.ind_p.clone()),
                // an Indeterminate target, or more than one match
                ind_dp: or(vec![
                    any_error.clone(),
                    and(vec![not(none), not(one)]),
                    chosen(&|c| c.ind_dp.clone()),
                ]),
            }
        }
    }
}

/// XACML 3.0 C.2/C.4 over formulas: (strong, weak, Indeterminate of the
/// strong effect, of the weak one, {DP}).
fn overrides(
    children: &[Dec],
    strong: impl Fn(&Dec) -> F,
    weak: impl Fn(&Dec) -> F,
    ind_strong: impl Fn(&Dec) -> F,
    ind_weak: impl Fn(&Dec) -> F,
) -> (F, F, F, F, F) {
    let s = any(children, &strong);
    let w = any(children, &weak);
    let is = any(children, &ind_strong);
    let iw = any(children, &ind_weak);
    let dp = any(children, |c| c.ind_dp.clone());
    let not_s = not(s.clone());
    let r_dp = and(vec![
        not_s.clone(),
        or(vec![
            dp.clone(),
            and(vec![is.clone(), or(vec![iw.clone(), w.clone()])]),
        ]),
    ]);
    let r_is = and(vec![
        not_s.clone(),
        not(dp.clone()),
        is.clone(),
        not(iw.clone()),
        not(w.clone()),
    ]);
    let r_w = and(vec![
        not_s.clone(),
        not(dp.clone()),
        not(is.clone()),
        w.clone(),
    ]);
    let r_iw = and(vec![not_s, not(dp), not(is), not(w), iw]);
    (s, r_w, r_is, r_iw, r_dp)
}

/// What each attribute is for a decision about a stored order:
/// `decided` — the order has facts (the recorded attributes are columns);
/// otherwise they are read from their sources as for an order being
/// decided. `defs`' order types tell whether a field source is the
/// order's key (the `host` column).
pub fn open_attributes(
    auth: &'static Authorization,
    defs: &'static crate::workflow::defs::Definitions,
    decided: bool,
) -> Vec<Open> {
    auth.attributes
        .iter()
        .zip(auth.sources)
        .map(|(def, source)| {
            if decided && def.recorded {
                return Open::Column(Column::Fact(def.name.to_owned()));
            }
            if !super::pip::depends_on_order(def, source) {
                return Open::Known;
            }
            match source {
                Source::Requester => Open::Column(Column::Requester),
                Source::OrderType => Open::Column(Column::OrderType),
                Source::Field(f) if def.ty == ValueType::String && is_key_field(defs, f) => {
                    Open::Column(Column::Host)
                }
                _ => Open::Unknown,
            }
        })
        .collect()
}

/// `field` is the key field of every order type that has a key, and no
/// order type has it without it being the key: the `host` column holds
/// the field's value for every order.
fn is_key_field(defs: &'static crate::workflow::defs::Definitions, field: &str) -> bool {
    defs.order_types.iter().all(|t| match t.key_field {
        Some(k) => k == field,
        None => t.fields.iter().all(|f| f.name != field),
    })
}

/// The condition on stored orders under which the root permits, for the
/// known values of `request` (the subject's, the action's, the time).
pub fn access(
    auth: &'static Authorization,
    defs: &'static crate::workflow::defs::Definitions,
    request: &Request,
) -> Access {
    let decided = open_attributes(auth, defs, true);
    let undecided = open_attributes(auth, defs, false);
    let with_facts = Partial::new(request, &decided).permit(auth.policies);
    let without = Partial::new(request, &undecided).permit(auth.policies);
    let formula = if with_facts == without {
        with_facts
    } else {
        let facts = F::Atom(Cond::Present(Column::Facts));
        or(vec![
            and(vec![facts.clone(), with_facts]),
            and(vec![not(facts), without]),
        ])
    };
    access_of(&formula)
}

/// A formula as an [`Access`].
pub fn access_of(formula: &F) -> Access {
    let (lower, upper) = (formula.bound(false), formula.bound(true));
    match (&lower, &upper) {
        (_, F::Const(false)) => Access::Nothing,
        (F::Const(true), _) => Access::Everything,
        _ if lower == upper => Access::Only(lower.to_cond()),
        _ => Access::Verify {
            sure: lower.to_cond(),
            candidates: upper.to_cond(),
        },
    }
}

/// The decision for a request whose attributes are all known, by the
/// expressions (not the compiled functions): what the partial evaluator
/// makes of a complete request. `None`: it left something open (it does
/// not when every attribute is [`Open::Known`]).
pub fn decide_known(root: &'static PolicyNode, request: &Request) -> Option<super::Decision> {
    use super::{Decision, Indeterminate};
    let open = vec![Open::Known; request.attributes.len()];
    let d = Partial::new(request, &open).node(root);
    let is = |f: &F| match f {
        F::Const(b) => Some(*b),
        _ => None,
    };
    let na = d.na();
    let all = [
        (is(&d.permit)?, Decision::Permit),
        (is(&d.deny)?, Decision::Deny),
        (is(&d.ind_d)?, Decision::Indeterminate(Indeterminate::D)),
        (is(&d.ind_p)?, Decision::Indeterminate(Indeterminate::P)),
        (is(&d.ind_dp)?, Decision::Indeterminate(Indeterminate::DP)),
        (is(&na)?, Decision::NotApplicable),
    ];
    let holding: Vec<Decision> = all.iter().filter(|(b, _)| *b).map(|(_, d)| *d).collect();
    match holding.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

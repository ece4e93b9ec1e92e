//! Evaluation with XACML 3.0 semantics (rules: §7.11 Table 4; policies and
//! policy sets: §7.12–7.13, Tables 7–8) and explanations.

use serde::Serialize;

use super::algorithm::{Tri, combine};
use super::ast::{Effect, ObligationDef, PolicyDef, PolicyNode, PolicySetDef, Predicate, RuleDef};
use super::err::AttrError;
use super::request::{AttrId, Request, Value};

/// XACML 3.0's extended Indeterminate: which decisions the failed part could
/// have produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Indeterminate {
    /// Could have been Deny.
    D,
    /// Could have been Permit.
    P,
    /// Could have been either.
    DP,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    Permit,
    Deny,
    NotApplicable,
    Indeterminate(Indeterminate),
}

impl Decision {
    pub(crate) fn indeterminate_of(effect: Effect) -> Self {
        match effect {
            Effect::Permit => Self::Indeterminate(Indeterminate::P),
            Effect::Deny => Self::Indeterminate(Indeterminate::D),
        }
    }

    fn of(effect: Effect) -> Self {
        match effect {
            Effect::Permit => Self::Permit,
            Effect::Deny => Self::Deny,
        }
    }
}

/// What evaluating a rule, policy or policy set produced, and which rule of
/// which policy decided it. Cheap to copy: no allocation on the decision path.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub decision: Decision,
    pub rule: Option<&'static RuleDef>,
    pub policy: Option<&'static PolicyDef>,
}

impl Outcome {
    pub(crate) const NOT_APPLICABLE: Self = Self {
        decision: Decision::NotApplicable,
        rule: None,
        policy: None,
    };

    pub(crate) fn with(self, decision: Decision) -> Self {
        Self { decision, ..self }
    }
}

/// XACML's `and` over a condition's parts: false if any part is false, else
/// Indeterminate (`Err`) if any part is, else true. `b` is evaluated only
/// when `a` is not false.
pub fn and3(
    a: Result<bool, AttrError>,
    b: impl FnOnce() -> Result<bool, AttrError>,
) -> Result<bool, AttrError> {
    match a {
        Ok(false) => Ok(false),
        Ok(true) => b(),
        Err(e) => match b() {
            Ok(false) => Ok(false),
            _ => Err(e),
        },
    }
}

/// XACML's `or`: true if any part is true, else Indeterminate if any part
/// is, else false.
pub fn or3(
    a: Result<bool, AttrError>,
    b: impl FnOnce() -> Result<bool, AttrError>,
) -> Result<bool, AttrError> {
    match a {
        Ok(true) => Ok(true),
        Ok(false) => b(),
        Err(e) => match b() {
            Ok(true) => Ok(true),
            _ => Err(e),
        },
    }
}

/// What compiled targets and conditions read attributes through. Records
/// which attributes were read, for the explanation, and the first error.
pub struct Ctx<'r> {
    request: &'r Request,
    used: [u64; 4],
    error: Option<AttrError>,
}

/// At most this many attributes can be declared (the compiler checks it).
pub const MAX_ATTRIBUTES: usize = 256;

impl<'r> Ctx<'r> {
    pub fn new(request: &'r Request) -> Self {
        Self {
            request,
            used: [0; 4],
            error: None,
        }
    }

    /// The value of an attribute: `Ok(None)` when it has none and need not
    /// (an empty bag), `Err` when it must be present or its resolver failed.
    pub fn get(&mut self, id: AttrId) -> Result<Option<&'r Value>, AttrError> {
        let i = usize::from(id);
        self.used[i / 64] |= 1 << (i % 64);
        match &self.request.values[i] {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(self.fail(e.clone())),
            None if self.request.attributes[i].must_be_present => {
                Err(self.fail(AttrError::Missing(self.request.attributes[i].name)))
            }
            None => Ok(None),
        }
    }

    fn fail(&mut self, e: AttrError) -> AttrError {
        if self.error.is_none() {
            self.error = Some(e.clone());
        }
        e
    }

    fn typed<T>(
        &mut self,
        id: AttrId,
        expected: &'static str,
        pick: impl FnOnce(&'r Value) -> Option<T>,
    ) -> Result<Option<T>, AttrError> {
        match self.get(id)? {
            None => Ok(None),
            Some(v) => match pick(v) {
                Some(t) => Ok(Some(t)),
                None => {
                    let name = self.request.attributes[usize::from(id)].name;
                    Err(self.fail(AttrError::Type { name, expected }))
                }
            },
        }
    }

    pub fn string(&mut self, id: AttrId) -> Result<Option<&'r str>, AttrError> {
        self.typed(id, "string", |v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn integer(&mut self, id: AttrId) -> Result<Option<i64>, AttrError> {
        self.typed(id, "integer", |v| match v {
            Value::Integer(i) => Some(*i),
            _ => None,
        })
    }

    pub fn boolean(&mut self, id: AttrId) -> Result<Option<bool>, AttrError> {
        self.typed(id, "boolean", |v| match v {
            Value::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    pub fn time(&mut self, id: AttrId) -> Result<Option<i64>, AttrError> {
        self.typed(id, "time", |v| match v {
            Value::Time(t) => Some(*t),
            _ => None,
        })
    }

    pub fn ip(&mut self, id: AttrId) -> Result<Option<std::net::IpAddr>, AttrError> {
        self.typed(id, "ip", |v| match v {
            Value::Ip(ip) => Some(*ip),
            _ => None,
        })
    }

    pub fn subnet(&mut self, id: AttrId) -> Result<Option<ipnet::IpNet>, AttrError> {
        self.typed(id, "subnet", |v| match v {
            Value::Subnet(n) => Some(*n),
            _ => None,
        })
    }

    /// The values of a multi-valued attribute; a missing optional one is empty.
    pub fn set(&mut self, id: AttrId) -> Result<&'r [Value], AttrError> {
        Ok(self
            .typed(id, "set", |v| match v {
                Value::Set(s) => Some(s.as_slice()),
                _ => None,
            })?
            .unwrap_or(&[]))
    }

    /// Whether a set holds a string (membership of a person, an org unit).
    pub fn contains_str(set: &[Value], needle: Option<&str>) -> bool {
        needle.is_some_and(|n| set.iter().any(|v| matches!(v, Value::String(s) if s == n)))
    }

    /// Whether a set holds a value.
    pub fn contains(set: &[Value], needle: Option<&Value>) -> bool {
        needle.is_some_and(|n| set.contains(n))
    }

    /// Both present and equal (a comparison with an empty bag is false).
    pub fn eq<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if a == b)
    }

    pub(crate) fn matches(&mut self, target: Option<Predicate>) -> Tri {
        match target {
            None => Tri::Match,
            Some(p) => match (p.eval)(self) {
                Ok(true) => Tri::Match,
                Ok(false) => Tri::NoMatch,
                Err(_) => Tri::Indeterminate,
            },
        }
    }
}

fn eval_rule(rule: &'static RuleDef, policy: &'static PolicyDef, ctx: &mut Ctx<'_>) -> Outcome {
    let decided = |decision| Outcome {
        decision,
        rule: Some(rule),
        policy: Some(policy),
    };
    match ctx.matches(rule.target) {
        Tri::NoMatch => Outcome::NOT_APPLICABLE,
        Tri::Indeterminate => decided(Decision::indeterminate_of(rule.effect)),
        Tri::Match => match rule.condition.map_or(Ok(true), |c| (c.eval)(ctx)) {
            Ok(true) => decided(Decision::of(rule.effect)),
            Ok(false) => Outcome::NOT_APPLICABLE,
            Err(_) => decided(Decision::indeterminate_of(rule.effect)),
        },
    }
}

/// The value of a policy or policy set whose target is Indeterminate
/// (XACML 3.0 Tables 7 and 8).
fn under_indeterminate_target(inner: Outcome) -> Outcome {
    let decision = match inner.decision {
        Decision::NotApplicable => return Outcome::NOT_APPLICABLE,
        Decision::Permit => Decision::Indeterminate(Indeterminate::P),
        Decision::Deny => Decision::Indeterminate(Indeterminate::D),
        d @ Decision::Indeterminate(_) => d,
    };
    inner.with(decision)
}

pub(crate) fn eval_policy(policy: &'static PolicyDef, ctx: &mut Ctx<'_>) -> Outcome {
    let target = ctx.matches(policy.target);
    if target == Tri::NoMatch {
        return Outcome::NOT_APPLICABLE;
    }
    let rules = policy.rules;
    // Rules have no separate applicability for only-one-applicable (the
    // compiler refuses it on rules); treat a rule's target like a policy's.
    let inner = combine(
        policy.algorithm,
        rules.len(),
        ctx,
        |i, ctx| ctx.matches(rules[i].target),
        |i, ctx| eval_rule(&rules[i], policy, ctx),
    );
    match target {
        Tri::Indeterminate => under_indeterminate_target(inner),
        _ => inner,
    }
}

fn eval_set(set: &'static PolicySetDef, ctx: &mut Ctx<'_>) -> Outcome {
    let target = ctx.matches(set.target);
    if target == Tri::NoMatch {
        return Outcome::NOT_APPLICABLE;
    }
    let children = set.children;
    let inner = combine(
        set.algorithm,
        children.len(),
        ctx,
        |i, ctx| applicability(&children[i], ctx),
        |i, ctx| eval_node(&children[i], ctx),
    );
    match target {
        Tri::Indeterminate => under_indeterminate_target(inner),
        _ => inner,
    }
}

fn applicability(node: &'static PolicyNode, ctx: &mut Ctx<'_>) -> Tri {
    match node {
        PolicyNode::Policy(p) => ctx.matches(p.target),
        PolicyNode::Set(s) => ctx.matches(s.target),
    }
}

pub fn eval_node(node: &'static PolicyNode, ctx: &mut Ctx<'_>) -> Outcome {
    match node {
        PolicyNode::Policy(p) => eval_policy(p, ctx),
        PolicyNode::Set(s) => eval_set(s, ctx),
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The policy whose rule decided, if any.
    pub policy: Option<&'static str>,
    /// The rule that decided, if any (none: no rule applied, or a
    /// `*-unless-*` default).
    pub rule: Option<&'static str>,
    pub rule_description: Option<&'static str>,
    /// The attributes the policies read, with their values (`null`: none).
    pub attributes: Vec<(&'static str, Option<Value>)>,
    /// The first attribute error met, which made a part Indeterminate.
    pub error: Option<AttrError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub decision: Decision,
    pub explanation: Explanation,
    /// Obligations and advice of the deciding rule and policy for the
    /// decision's effect.
    pub obligations: Vec<&'static ObligationDef>,
    /// The values of the obligations' arguments: (obligation, argument,
    /// value). Not recorded: they may be the resource's facts.
    #[serde(skip)]
    pub arguments: Vec<(&'static str, &'static str, Option<Value>)>,
}

/// Evaluates the root policy (set) for a request, without building an
/// explanation: the hot path.
pub fn evaluate(root: &'static PolicyNode, request: &Request) -> Outcome {
    eval_node(root, &mut Ctx::new(request))
}

/// Evaluates and explains a decision.
pub fn decide(root: &'static PolicyNode, request: &Request) -> Response {
    let mut ctx = Ctx::new(request);
    let outcome = eval_node(root, &mut ctx);
    let attributes = request
        .attributes
        .iter()
        .enumerate()
        .filter(|(i, _)| ctx.used[i / 64] & (1 << (i % 64)) != 0)
        .map(|(i, a)| (a.name, request.values[i].clone().and_then(Result::ok)))
        .collect();
    let effect = match outcome.decision {
        Decision::Permit => Some(Effect::Permit),
        Decision::Deny => Some(Effect::Deny),
        _ => None,
    };
    let obligations: Vec<&'static ObligationDef> = effect
        .map(|effect| {
            outcome
                .rule
                .into_iter()
                .flat_map(|r| r.obligations)
                .chain(outcome.policy.into_iter().flat_map(|p| p.obligations))
                .filter(|o| o.on == effect)
                .collect()
        })
        .unwrap_or_default();
    let arguments = obligation_arguments(&obligations, request);
    Response {
        decision: outcome.decision,
        explanation: Explanation {
            policy: outcome.policy.map(|p| p.id),
            rule: outcome.rule.map(|r| r.id),
            rule_description: outcome.rule.map(|r| r.description),
            attributes,
            error: ctx.error,
        },
        obligations,
        arguments,
    }
}

/// The values of the obligations' arguments in `request`.
fn obligation_arguments(
    obligations: &[&'static ObligationDef],
    request: &Request,
) -> Vec<(&'static str, &'static str, Option<Value>)> {
    obligations
        .iter()
        .flat_map(|o| {
            o.arguments.iter().map(move |a| {
                let value = match (a.attribute, a.value) {
                    (Some(attribute), _) => request
                        .attributes
                        .iter()
                        .position(|d| d.name == attribute)
                        .and_then(|i| request.values.get(i).cloned().flatten())
                        .and_then(Result::ok),
                    (None, Some(v)) => Some(Value::String(v.to_owned())),
                    (None, None) => None,
                };
                (o.id, a.name, value)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdp::algorithm::Algorithm;
    use crate::pdp::ast::{CmpOp, Expr, Lit};
    use crate::pdp::request::{AttributeDef, Category, ValueType};

    const SUBJECT: AttrId = 0;
    const ADMIN: AttrId = 1;
    const STAFF: AttrId = 2;
    const ACTION: AttrId = 3;

    static ATTRS: [AttributeDef; 4] = [
        attr(
            SUBJECT,
            "subject.id",
            Category::Subject,
            ValueType::String,
            true,
        ),
        attr(
            ADMIN,
            "resource.admin",
            Category::Resource,
            ValueType::String,
            false,
        ),
        attr(
            STAFF,
            "subject.staff",
            Category::Subject,
            ValueType::Boolean,
            false,
        ),
        attr(
            ACTION,
            "action.id",
            Category::Action,
            ValueType::String,
            true,
        ),
    ];

    const fn attr(
        id: AttrId,
        name: &'static str,
        category: Category,
        ty: ValueType,
        must: bool,
    ) -> AttributeDef {
        AttributeDef {
            id,
            name,
            category,
            ty,
            multi: false,
            must_be_present: must,
            recorded: false,
            source: "test",
            description: "",
        }
    }

    fn change_or_delete(c: &mut Ctx<'_>) -> Result<bool, AttrError> {
        Ok(matches!(c.string(ACTION)?, Some("change" | "delete")))
    }
    fn own_device(c: &mut Ctx<'_>) -> Result<bool, AttrError> {
        let (s, a) = (c.string(SUBJECT)?, c.string(ADMIN)?);
        Ok(Ctx::eq(s, a))
    }
    fn is_staff(c: &mut Ctx<'_>) -> Result<bool, AttrError> {
        Ok(c.boolean(STAFF)? == Some(true))
    }

    static OWN_DEVICE: Expr = Expr::Cmp(CmpOp::Eq, &Expr::Attr(SUBJECT), &Expr::Attr(ADMIN));
    static CHANGE_OR_DELETE: Expr = Expr::Or(&[
        Expr::Cmp(
            CmpOp::Eq,
            &Expr::Attr(ACTION),
            &Expr::Lit(Lit::Str("change")),
        ),
        Expr::Cmp(
            CmpOp::Eq,
            &Expr::Attr(ACTION),
            &Expr::Lit(Lit::Str("delete")),
        ),
    ]);

    static NOTIFY: [ObligationDef; 1] = [ObligationDef {
        id: "notify-admin",
        on: Effect::Permit,
        advice: false,
        description: "",
        arguments: &[],
    }];
    static RULES: [RuleDef; 2] = [
        RuleDef {
            id: "admin-own-device",
            description: "an admin may change their own devices",
            effect: Effect::Permit,
            target: None,
            condition: Some(Predicate {
                eval: own_device,
                expr: &OWN_DEVICE,
            }),
            obligations: &[],
        },
        RuleDef {
            id: "staff-any-device",
            description: "staff may change every device",
            effect: Effect::Permit,
            target: None,
            condition: Some(Predicate {
                eval: is_staff,
                expr: &Expr::Attr(STAFF),
            }),
            obligations: &NOTIFY,
        },
    ];
    static POLICY: PolicyDef = PolicyDef {
        id: "change-delete",
        description: "",
        target: Some(Predicate {
            eval: change_or_delete,
            expr: &CHANGE_OR_DELETE,
        }),
        algorithm: Algorithm::PermitOverrides,
        rules: &RULES,
        obligations: &[],
    };
    static ROOT: PolicyNode = PolicyNode::Policy(&POLICY);

    fn request(subject: &str, admin: Option<&str>, staff: bool, action: Option<&str>) -> Request {
        let mut r = Request::new(&ATTRS);
        r.set(SUBJECT, Value::String(subject.into()));
        if let Some(a) = admin {
            r.set(ADMIN, Value::String(a.into()));
        }
        r.set(STAFF, Value::Boolean(staff));
        if let Some(a) = action {
            r.set(ACTION, Value::String(a.into()));
        }
        r
    }

    #[test]
    fn decisions_name_the_deciding_rule_and_the_values_read() {
        let r = decide(&ROOT, &request("1002", Some("1002"), false, Some("change")));
        assert_eq!(r.decision, Decision::Permit);
        assert_eq!(r.explanation.policy, Some("change-delete"));
        assert_eq!(r.explanation.rule, Some("admin-own-device"));
        assert!(
            r.explanation
                .attributes
                .contains(&("resource.admin", Some(Value::String("1002".into()))))
        );
        assert!(r.obligations.is_empty());

        let r = decide(&ROOT, &request("1005", Some("1002"), true, Some("delete")));
        assert_eq!(r.decision, Decision::Permit);
        assert_eq!(r.explanation.rule, Some("staff-any-device"));
        assert_eq!(
            r.obligations.iter().map(|o| o.id).collect::<Vec<_>>(),
            ["notify-admin"]
        );

        let r = decide(&ROOT, &request("1001", Some("1002"), false, Some("change")));
        assert_eq!(r.decision, Decision::NotApplicable);
        assert_eq!(r.explanation.rule, None);

        // Another action: the policy's target does not match.
        let r = decide(
            &ROOT,
            &request("1002", Some("1002"), false, Some("register")),
        );
        assert_eq!(r.decision, Decision::NotApplicable);
        // A device without admin reads as an empty bag: no match, no error.
        let r = decide(&ROOT, &request("1002", None, false, Some("change")));
        assert_eq!(r.decision, Decision::NotApplicable);
        assert_eq!(r.explanation.error, None);
    }

    #[test]
    fn missing_must_be_present_attribute_is_indeterminate() {
        // The target cannot be evaluated; the rules would permit: Indeterminate{P}.
        let r = decide(&ROOT, &request("1002", Some("1002"), false, None));
        assert_eq!(r.decision, Decision::Indeterminate(Indeterminate::P));
        assert_eq!(r.explanation.error, Some(AttrError::Missing("action.id")));
        // ... and the rules would not apply: NotApplicable (XACML 3.0 Table 7).
        let r = decide(&ROOT, &request("1001", Some("1002"), false, None));
        assert_eq!(r.decision, Decision::NotApplicable);
    }

    #[test]
    fn resolver_failures_are_indeterminate_with_the_rules_effect() {
        let mut req = request("1002", Some("1002"), false, Some("change"));
        req.set_error(ADMIN, "database unreachable");
        let r = decide(&ROOT, &req);
        // admin rule: Indeterminate{P}; staff rule: NotApplicable → Indeterminate{P}.
        assert_eq!(r.decision, Decision::Indeterminate(Indeterminate::P));
        assert!(matches!(
            r.explanation.error,
            Some(AttrError::Unresolved {
                name: "resource.admin",
                ..
            })
        ));
        assert_eq!(evaluate(&ROOT, &req).decision, r.decision);
    }
}

//! The eight combining algorithms of XACML 3.0 (Appendix C), with the
//! extended Indeterminate{D,P,DP} values.

use serde::Serialize;

use super::eval::{Ctx, Decision, Indeterminate, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    DenyOverrides,
    PermitOverrides,
    FirstApplicable,
    /// Policy sets only: exactly one child may be applicable.
    OnlyOneApplicable,
    OrderedDenyOverrides,
    OrderedPermitOverrides,
    DenyUnlessPermit,
    PermitUnlessDeny,
}

impl Algorithm {
    pub const ALL: [Algorithm; 8] = [
        Self::DenyOverrides,
        Self::PermitOverrides,
        Self::FirstApplicable,
        Self::OnlyOneApplicable,
        Self::OrderedDenyOverrides,
        Self::OrderedPermitOverrides,
        Self::DenyUnlessPermit,
        Self::PermitUnlessDeny,
    ];

    /// The name used in `policies.xml`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DenyOverrides => "deny-overrides",
            Self::PermitOverrides => "permit-overrides",
            Self::FirstApplicable => "first-applicable",
            Self::OnlyOneApplicable => "only-one-applicable",
            Self::OrderedDenyOverrides => "ordered-deny-overrides",
            Self::OrderedPermitOverrides => "ordered-permit-overrides",
            Self::DenyUnlessPermit => "deny-unless-permit",
            Self::PermitUnlessDeny => "permit-unless-deny",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Whether a target matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Match,
    NoMatch,
    Indeterminate,
}

/// Combines `n` children. `eval(i)` evaluates child `i`; `applicable(i)`
/// evaluates only its target (used by only-one-applicable). Children are
/// evaluated in order and only as far as the algorithm needs; the ordered
/// variants therefore behave like the unordered ones, which XACML permits.
pub(crate) fn combine(
    algorithm: Algorithm,
    n: usize,
    ctx: &mut Ctx<'_>,
    mut applicable: impl FnMut(usize, &mut Ctx<'_>) -> Tri,
    mut eval: impl FnMut(usize, &mut Ctx<'_>) -> Outcome,
) -> Outcome {
    let mut children = (0..n).map(|i| eval(i, ctx));
    match algorithm {
        Algorithm::DenyOverrides | Algorithm::OrderedDenyOverrides => overrides(
            &mut children,
            Decision::Deny,
            Decision::Permit,
            Indeterminate::D,
        ),
        Algorithm::PermitOverrides | Algorithm::OrderedPermitOverrides => overrides(
            &mut children,
            Decision::Permit,
            Decision::Deny,
            Indeterminate::P,
        ),
        Algorithm::FirstApplicable => children
            .find(|o| o.decision != Decision::NotApplicable)
            .unwrap_or(Outcome::NOT_APPLICABLE),
        Algorithm::DenyUnlessPermit => unless(&mut children, Decision::Permit, Decision::Deny),
        Algorithm::PermitUnlessDeny => unless(&mut children, Decision::Deny, Decision::Permit),
        Algorithm::OnlyOneApplicable => {
            drop(children);
            let mut selected = None;
            for i in 0..n {
                match applicable(i, ctx) {
                    Tri::Indeterminate => {
                        return Outcome::NOT_APPLICABLE
                            .with(Decision::Indeterminate(Indeterminate::DP));
                    }
                    Tri::Match if selected.is_some() => {
                        return Outcome::NOT_APPLICABLE
                            .with(Decision::Indeterminate(Indeterminate::DP));
                    }
                    Tri::Match => selected = Some(i),
                    Tri::NoMatch => {}
                }
            }
            selected.map_or(Outcome::NOT_APPLICABLE, |i| eval(i, ctx))
        }
    }
}

/// deny-overrides with `strong` = Deny, permit-overrides with `strong` = Permit
/// (XACML 3.0 C.2 / C.4).
fn overrides(
    children: &mut impl Iterator<Item = Outcome>,
    strong: Decision,
    weak: Decision,
    ind_strong: Indeterminate,
) -> Outcome {
    let mut first_weak = None;
    let mut first_ind_strong = None;
    let mut first_ind_weak = None;
    let mut first_ind_dp = None;
    for o in children {
        match o.decision {
            d if d == strong => return o,
            d if d == weak => {
                first_weak.get_or_insert(o);
            }
            Decision::Indeterminate(Indeterminate::DP) => {
                first_ind_dp.get_or_insert(o);
            }
            Decision::Indeterminate(i) if i == ind_strong => {
                first_ind_strong.get_or_insert(o);
            }
            Decision::Indeterminate(_) => {
                first_ind_weak.get_or_insert(o);
            }
            _ => {}
        }
    }
    let dp = Decision::Indeterminate(Indeterminate::DP);
    if let Some(o) = first_ind_dp {
        return o.with(dp);
    }
    if let Some(o) = first_ind_strong {
        return if first_ind_weak.is_some() || first_weak.is_some() {
            o.with(dp)
        } else {
            o
        };
    }
    if let Some(o) = first_weak {
        return o;
    }
    first_ind_weak.unwrap_or(Outcome::NOT_APPLICABLE)
}

/// deny-unless-permit (`wins` = Permit, `default` = Deny) and
/// permit-unless-deny (C.10, C.11): never NotApplicable nor Indeterminate.
fn unless(
    children: &mut impl Iterator<Item = Outcome>,
    wins: Decision,
    default: Decision,
) -> Outcome {
    let mut first_default = None;
    for o in children {
        if o.decision == wins {
            return o;
        }
        if o.decision == default {
            first_default.get_or_insert(o);
        }
    }
    first_default.unwrap_or(Outcome::NOT_APPLICABLE.with(default))
}

#[cfg(test)]
mod tests {
    //! Table-driven from the XACML 3.0 definitions (Appendix C), over every
    //! combination of child decisions up to length three.

    use super::*;
    use crate::pdp::request::Request;

    use Decision::{Deny, NotApplicable, Permit};
    use Indeterminate::{D, DP, P};

    const ALL: [Decision; 6] = [
        Permit,
        Deny,
        NotApplicable,
        Decision::Indeterminate(D),
        Decision::Indeterminate(P),
        Decision::Indeterminate(DP),
    ];

    fn run(alg: Algorithm, children: &[Decision]) -> Decision {
        let request = Request::new(&[]);
        let mut ctx = Ctx::new(&request);
        combine(
            alg,
            children.len(),
            &mut ctx,
            |_, _| Tri::Match,
            |i, _| Outcome::NOT_APPLICABLE.with(children[i]),
        )
        .decision
    }

    /// XACML 3.0 C.2, written as a specification over the multiset.
    fn deny_overrides_spec(c: &[Decision]) -> Decision {
        let has = |d: Decision| c.contains(&d);
        if has(Deny) {
            return Deny;
        }
        if has(Decision::Indeterminate(DP)) {
            return Decision::Indeterminate(DP);
        }
        if has(Decision::Indeterminate(D)) {
            return if has(Decision::Indeterminate(P)) || has(Permit) {
                Decision::Indeterminate(DP)
            } else {
                Decision::Indeterminate(D)
            };
        }
        if has(Permit) {
            return Permit;
        }
        if has(Decision::Indeterminate(P)) {
            return Decision::Indeterminate(P);
        }
        NotApplicable
    }

    fn mirror(d: Decision) -> Decision {
        match d {
            Permit => Deny,
            Deny => Permit,
            Decision::Indeterminate(D) => Decision::Indeterminate(P),
            Decision::Indeterminate(P) => Decision::Indeterminate(D),
            other => other,
        }
    }

    fn combinations() -> Vec<Vec<Decision>> {
        let mut all = vec![vec![]];
        let mut last = vec![vec![]];
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|c: &Vec<Decision>| {
                    ALL.iter().map(move |d| {
                        let mut c = c.clone();
                        c.push(*d);
                        c
                    })
                })
                .collect();
            all.extend(last.clone());
        }
        all
    }

    #[test]
    fn deny_and_permit_overrides_follow_the_standard() {
        for c in combinations() {
            let expected = deny_overrides_spec(&c);
            assert_eq!(
                run(Algorithm::DenyOverrides, &c),
                expected,
                "deny-overrides {c:?}"
            );
            assert_eq!(
                run(Algorithm::OrderedDenyOverrides, &c),
                expected,
                "ordered-deny-overrides {c:?}"
            );
            // permit-overrides is deny-overrides with the effects swapped.
            let mirrored: Vec<Decision> = c.iter().copied().map(mirror).collect();
            let expected = mirror(deny_overrides_spec(&mirrored));
            assert_eq!(
                run(Algorithm::PermitOverrides, &c),
                expected,
                "permit-overrides {c:?}"
            );
            assert_eq!(
                run(Algorithm::OrderedPermitOverrides, &c),
                expected,
                "ordered-permit-overrides {c:?}"
            );
        }
    }

    #[test]
    fn first_applicable_takes_the_first_that_is_not_not_applicable() {
        for c in combinations() {
            let expected = c
                .iter()
                .copied()
                .find(|d| *d != NotApplicable)
                .unwrap_or(NotApplicable);
            assert_eq!(run(Algorithm::FirstApplicable, &c), expected, "{c:?}");
        }
    }

    #[test]
    fn unless_algorithms_always_decide() {
        for c in combinations() {
            let dup = if c.contains(&Permit) { Permit } else { Deny };
            assert_eq!(run(Algorithm::DenyUnlessPermit, &c), dup, "{c:?}");
            let pud = if c.contains(&Deny) { Deny } else { Permit };
            assert_eq!(run(Algorithm::PermitUnlessDeny, &c), pud, "{c:?}");
        }
    }

    #[test]
    fn only_one_applicable() {
        let request = Request::new(&[]);
        let mut ctx = Ctx::new(&request);
        let mut case = |targets: &[Tri], decisions: &[Decision]| {
            combine(
                Algorithm::OnlyOneApplicable,
                targets.len(),
                &mut ctx,
                |i, _| targets[i],
                |i, _| Outcome::NOT_APPLICABLE.with(decisions[i]),
            )
            .decision
        };
        assert_eq!(case(&[], &[]), NotApplicable);
        assert_eq!(
            case(&[Tri::NoMatch, Tri::NoMatch], &[Permit, Deny]),
            NotApplicable
        );
        assert_eq!(case(&[Tri::NoMatch, Tri::Match], &[Permit, Deny]), Deny);
        assert_eq!(case(&[Tri::Match, Tri::NoMatch], &[Permit, Deny]), Permit);
        assert_eq!(
            case(
                &[Tri::Match, Tri::NoMatch],
                &[Decision::Indeterminate(D), Deny]
            ),
            Decision::Indeterminate(D)
        );
        assert_eq!(
            case(&[Tri::Match, Tri::Match], &[Permit, Permit]),
            Decision::Indeterminate(DP)
        );
        assert_eq!(
            case(&[Tri::NoMatch, Tri::Indeterminate], &[Permit, Deny]),
            Decision::Indeterminate(DP)
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(Algorithm::from_name("deny-override"), None);
    }
}

//! `attributes.xml` and `policies.xml`: the attribute catalogue of the PIP and
//! the policies of the PDP (DESIGN.md §4). Validated and typed here; the
//! policy engine evaluates them.
//!
//! Conditions and targets are expressions over typed attributes:
//!
//! ```text
//! expr    := or
//! or      := and ('or' and)*
//! and     := unary ('and' unary)*
//! unary   := ('not' | '!') unary | '(' expr ')' | cmp
//! cmp     := operand (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') operand)?
//! operand := category '.' name | "text" | 'text' | integer | true | false
//!          | type '(' "text" ')'          e.g. ipv4("134.94.1.1"), subnet("134.94.0.0/16")
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::model::Model;
use crate::validate::{is_name, norm};
use crate::{Diagnostic, Source, suggest};

pub const CATEGORIES: [&str; 4] = ["subject", "resource", "action", "environment"];
pub const TYPES: [&str; 13] = [
    "string", "integer", "bool", "ipv4", "ipv6", "mac", "hostname", "subnet", "person", "building",
    "room", "date", "datetime",
];
/// The eight combining algorithms of XACML 3.0.
pub const COMBINING: [&str; 8] = [
    "deny-overrides",
    "permit-overrides",
    "first-applicable",
    "only-one-applicable",
    "ordered-deny-overrides",
    "ordered-permit-overrides",
    "deny-unless-permit",
    "permit-unless-deny",
];
pub const EFFECTS: [&str; 2] = ["Permit", "Deny"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    /// `category.name`, as expressions write it.
    pub name: String,
    pub category: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// A bag of values (e.g. the roles of a person).
    pub multi: bool,
    /// `request`, `order.FIELD`, `fields`, `now`, or the Rust path of a
    /// resolver.
    pub source: String,
    /// Its value at an order's decision is kept with the order
    /// (`record="yes"`, resource attributes only).
    pub record: bool,
    pub description: String,
    /// `attributes.xml:LINE:COL` of its source, for build errors.
    #[serde(skip)]
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRoot {
    pub combining: String,
    pub items: Vec<PolicyNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyNode {
    PolicySet {
        name: String,
        description: String,
        combining: String,
        target: Option<Expr>,
        items: Vec<PolicyNode>,
        obligations: Vec<Obligation>,
    },
    Policy {
        name: String,
        description: String,
        combining: String,
        target: Option<Expr>,
        rules: Vec<Rule>,
        obligations: Vec<Obligation>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub effect: String,
    pub target: Option<Expr>,
    pub condition: Option<Expr>,
    pub obligations: Vec<Obligation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Obligation {
    pub name: String,
    /// The decision it comes with: `Permit` or `Deny`.
    pub on: String,
    pub arguments: Vec<Argument>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Argument {
    pub name: String,
    pub attribute: Option<String>,
    pub value: Option<String>,
}

/// A typed expression: its source and its tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub source: String,
    pub tree: Node,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Node {
    Attr {
        name: String,
    },
    Lit {
        #[serde(rename = "type")]
        ty: String,
        value: String,
    },
    Not {
        arg: Box<Node>,
    },
    And {
        args: Vec<Node>,
    },
    Or {
        args: Vec<Node>,
    },
    Cmp {
        cmp: String,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
}

// ------------------------------------------------------------ attributes

pub(crate) fn attributes(
    src: &Source,
    model: Option<&Model>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for &ai in &src.idx.children(0, "attribute") {
        let e = &src.idx.elems[ai];
        let get = |a: &str| {
            e.attr(a)
                .map(|a| a.value.trim().to_owned())
                .unwrap_or_default()
        };
        let (name, category, ty, source) =
            (get("name"), get("category"), get("type"), get("source"));
        let mut ok = true;
        if !CATEGORIES.contains(&category.as_str()) {
            diags.push(src.diag(
                e.attr_pos("category"),
                format!("unknown attribute category `{category}`"),
                suggest(&category, CATEGORIES).or(Some(
                    "categories are `subject`, `resource`, `action`, `environment`".into(),
                )),
            ));
            ok = false;
        }
        if !is_name(&name) {
            diags.push(src.diag(
                e.attr_pos("name"),
                format!("attribute name `{name}` is not a name"),
                Some("use letters, digits and `_`; expressions write `category.name`".into()),
            ));
            ok = false;
        }
        if !TYPES.contains(&ty.as_str()) {
            diags.push(src.diag(
                e.attr_pos("type"),
                format!("unknown attribute type `{ty}`"),
                suggest(&ty, TYPES).or(Some(format!("types are {}", crate::list(&TYPES)))),
            ));
            ok = false;
        }
        let multi = match e.attr("multi").map(|a| a.value.as_str()) {
            None | Some("no") => false,
            Some("yes") => true,
            Some(v) => {
                diags.push(src.diag(
                    e.attr_pos("multi"),
                    format!("multi must be `yes` or `no`, found `{v}`"),
                    None,
                ));
                false
            }
        };
        let record = match e.attr("record").map(|a| a.value.as_str()) {
            None | Some("no") => false,
            Some("yes") => {
                if category != "resource" && CATEGORIES.contains(&category.as_str()) {
                    diags.push(src.diag(
                        e.attr_pos("record"),
                        format!("only resource attributes are recorded, not a `{category}` attribute"),
                        Some("record=\"yes\" keeps what an order was about (the resource) with the order".into()),
                    ));
                }
                true
            }
            Some(v) => {
                diags.push(src.diag(
                    e.attr_pos("record"),
                    format!("record must be `yes` or `no`, found `{v}`"),
                    None,
                ));
                false
            }
        };
        // the source
        if let Some(field) = source.strip_prefix("order.") {
            if let Some(m) = model {
                let found = m
                    .order_types
                    .iter()
                    .flat_map(|o| o.fields.iter())
                    .find(|f| f.name == field);
                match found {
                    None => {
                        diags.push(
                            src.diag(
                                e.attr_pos("source"),
                                format!("unknown field `{field}`: no order type has it"),
                                suggest(
                                    field,
                                    m.order_types
                                        .iter()
                                        .flat_map(|o| o.fields.iter().map(|f| f.name.as_str())),
                                ),
                            ),
                        );
                        ok = false;
                    }
                    Some(f)
                        if TYPES.contains(&ty.as_str())
                            && field_attr_type(f.ty.name()) != Some(ty.as_str()) =>
                    {
                        diags.push(src.diag(
                            e.attr_pos("type"),
                            format!("attribute `{category}.{name}` is `{ty}`, but its source field `{field}` is `{}`", f.ty.name()),
                            None,
                        ));
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
        } else if source == "fields" {
            if (ty != "string" || !multi) && TYPES.contains(&ty.as_str()) {
                diags.push(src.diag(
                    e.attr_pos("type"),
                    format!(
                        "the source `fields` is a bag of field names: type `string` with multi=\"yes\", not {}`{ty}`",
                        if multi { "a bag of " } else { "" }
                    ),
                    None,
                ));
                ok = false;
            }
        } else if source == "requester" || source == "order_type" {
            let want: &[&str] = if source == "requester" {
                &["person", "string"]
            } else {
                &["string"]
            };
            if (!want.contains(&ty.as_str()) || multi) && TYPES.contains(&ty.as_str()) {
                diags.push(src.diag(
                    e.attr_pos("type"),
                    format!(
                        "the source `{source}` is one {}, not {}`{ty}`",
                        if source == "requester" {
                            "`person`"
                        } else {
                            "`string`"
                        },
                        if multi { "a bag of " } else { "" }
                    ),
                    None,
                ));
                ok = false;
            }
        } else if source == "now" {
            if ty != "datetime" && TYPES.contains(&ty.as_str()) {
                diags.push(src.diag(
                    e.attr_pos("type"),
                    format!("the source `now` is a `datetime`, not `{ty}`"),
                    None,
                ));
                ok = false;
            }
        } else if source != "request" && syn::parse_str::<syn::Path>(&source).is_err() {
            diags.push(src.diag(
                e.attr_pos("source"),
                format!("unknown attribute source `{source}`"),
                Some("a source is `request`, `now`, `order.FIELD`, `fields`, `requester`, `order_type` or the Rust path of a resolver".into()),
            ));
            ok = false;
        }
        let full = format!("{category}.{name}");
        if let Some(&first) = seen.get(&full) {
            diags.push(src.diag(
                e.attr_pos("name"),
                format!("duplicate attribute `{full}`"),
                Some(format!("first defined on line {}", src.line_of(first))),
            ));
            continue;
        }
        seen.insert(full.clone(), e.attr_pos("name"));
        if ok {
            let description = src
                .idx
                .own_description(ai)
                .map(|d| norm(&Some(d.text.clone())))
                .unwrap_or_default();
            out.push(Attribute {
                name: full,
                category,
                ty,
                multi,
                source,
                record,
                description,
                at: src.loc(e.attr_pos("source")),
            });
        }
    }
    out
}

/// The attribute type a field type provides.
fn field_attr_type(field_ty: &str) -> Option<&'static str> {
    Some(match field_ty {
        "string" | "enum" => "string",
        "bool" => "bool",
        t => return TYPES.iter().copied().find(|x| *x == t),
    })
}

// ------------------------------------------------------------ policies

struct Ctx<'a> {
    src: &'a Source,
    attrs: &'a [Attribute],
    have_attrs: bool,
    names: HashMap<String, usize>,
    /// What the requested action can be (order types, declared actions and
    /// the engine's own), when the workflow definitions are valid.
    actions: Option<&'a [String]>,
    diags: &'a mut Vec<Diagnostic>,
}

pub(crate) fn policies(
    src: &Source,
    attrs: &[Attribute],
    have_attrs: bool,
    actions: Option<&[String]>,
    diags: &mut Vec<Diagnostic>,
) -> PolicyRoot {
    let root = &src.idx.elems[0];
    let mut cx = Ctx {
        src,
        attrs,
        have_attrs,
        names: HashMap::new(),
        actions,
        diags,
    };
    let combining = match root.attr("combining") {
        Some(_) => cx.combining(0, true),
        None => "deny-unless-permit".to_owned(),
    };
    let before = cx.diags.len();
    let items = cx.items(0);
    let root = PolicyRoot { combining, items };
    // only a file without other errors: a misspelt target would otherwise
    // add a second, misleading error
    if cx.diags.len() == before {
        engine_questions(src, attrs, &root, diags);
    }
    root
}

/// What the engine asks `policies.xml` itself once the file exists, and
/// what it is asked for.
pub const ENGINE_ACTIONS: [(&str, &str, &str); 3] = [
    (
        "read_order",
        "who may read an order and its history (GET /api/v1/orders/{id}, the order lists)",
        "requester_reads\" effect=\"Permit\"><condition>subject.person == resource.requester",
    ),
    (
        "staff_action",
        "who may accept, edit or reject a waiting order",
        "staff_decides\" effect=\"Permit\"><condition>subject.is_staff",
    ),
    (
        "rollback_order",
        "who may roll an order back (POST /api/v1/orders/{id}/rollback)",
        "staff_rolls_back\" effect=\"Permit\"><condition>subject.is_staff",
    ),
];

/// A domain with policies must answer the engine's own questions
/// ([`ENGINE_ACTIONS`]): without a Permit rule that can apply to one, the
/// root's default (Deny for `deny-unless-permit`) answers it, and nobody,
/// staff included, may read orders, decide them or roll them back.
fn engine_questions(
    src: &Source,
    attrs: &[Attribute],
    root: &PolicyRoot,
    diags: &mut Vec<Diagnostic>,
) {
    if root.combining == "permit-unless-deny" {
        return;
    }
    let action_attrs: Vec<&str> = attrs
        .iter()
        .filter(|a| a.category == "action" && a.source == "request")
        .map(|a| a.name.as_str())
        .collect();
    let attr = action_attrs.first().copied().unwrap_or("action.order_type");
    for (action, what, rule) in ENGINE_ACTIONS {
        if !root
            .items
            .iter()
            .any(|n| node_may_permit(n, action, &action_attrs))
        {
            diags.push(src.diag(
                src.idx.elems[0].pos,
                format!(
                    "no policy answers `{action}`: the engine asks policies.xml {what}, and without a Permit rule that can apply, nobody may"
                ),
                Some(format!(
                    "add a policy for it, e.g. <policy name=\"{action}\" combining=\"permit-overrides\"><target>{attr} == \"{action}\"</target><rule name=\"{rule}</condition></rule></policy>"
                )),
            ));
        }
    }
}

/// Whether a Permit can come out of `node` when the requested action is
/// `action`: its targets (and a rule's condition) are not false for it.
fn node_may_permit(node: &PolicyNode, action: &str, action_attrs: &[&str]) -> bool {
    let open = |t: &Option<Expr>| {
        t.as_ref()
            .is_none_or(|e| holds_for(&e.tree, action, action_attrs) != Some(false))
    };
    match node {
        PolicyNode::PolicySet {
            combining,
            target,
            items,
            ..
        } => {
            open(target)
                && (combining == "permit-unless-deny"
                    || items
                        .iter()
                        .any(|n| node_may_permit(n, action, action_attrs)))
        }
        PolicyNode::Policy {
            combining,
            target,
            rules,
            ..
        } => {
            open(target)
                && (combining == "permit-unless-deny"
                    || rules
                        .iter()
                        .any(|r| r.effect == "Permit" && open(&r.target) && open(&r.condition)))
        }
    }
}

/// The value of `node` when the requested action is `action`, as far as
/// comparisons of the action attributes with text decide it (`None`: it
/// depends on other attributes).
fn holds_for(node: &Node, action: &str, action_attrs: &[&str]) -> Option<bool> {
    match node {
        Node::Cmp { cmp, lhs, rhs } if cmp == "==" || cmp == "!=" => {
            let value = match (&**lhs, &**rhs) {
                (Node::Attr { name }, Node::Lit { ty, value })
                | (Node::Lit { ty, value }, Node::Attr { name })
                    if ty == "string" && action_attrs.contains(&name.as_str()) =>
                {
                    value
                }
                _ => return None,
            };
            Some((value == action) == (cmp == "=="))
        }
        Node::Not { arg } => holds_for(arg, action, action_attrs).map(|b| !b),
        Node::And { args } => {
            let v: Vec<_> = args
                .iter()
                .map(|a| holds_for(a, action, action_attrs))
                .collect();
            if v.contains(&Some(false)) {
                Some(false)
            } else if v.iter().all(|x| *x == Some(true)) {
                Some(true)
            } else {
                None
            }
        }
        Node::Or { args } => {
            let v: Vec<_> = args
                .iter()
                .map(|a| holds_for(a, action, action_attrs))
                .collect();
            if v.contains(&Some(true)) {
                Some(true)
            } else if v.iter().all(|x| *x == Some(false)) {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

impl Ctx<'_> {
    fn combining(&mut self, ei: usize, for_policies: bool) -> String {
        let e = &self.src.idx.elems[ei];
        let v = e
            .attr("combining")
            .map(|a| a.value.trim().to_owned())
            .unwrap_or_default();
        if !COMBINING.contains(&v.as_str()) {
            self.diags.push(self.src.diag(
                e.attr_pos("combining"),
                format!("unknown combining algorithm `{v}`"),
                suggest(&v, COMBINING).or(Some(format!(
                    "the algorithms are {}",
                    crate::list(&COMBINING)
                ))),
            ));
        } else if v == "only-one-applicable" && !for_policies {
            self.diags.push(self.src.diag(
                e.attr_pos("combining"),
                "`only-one-applicable` combines policies, not the rules of a policy",
                None,
            ));
        }
        v
    }

    fn name(&mut self, ei: usize, kind: &str) -> String {
        let e = &self.src.idx.elems[ei];
        let name = e.attr("name").map(|a| a.value.clone()).unwrap_or_default();
        let pos = e.attr_pos("name");
        if !is_name(&name) {
            self.diags.push(self.src.diag(
                pos,
                format!("{kind} name `{name}` is not a name"),
                None,
            ));
        } else if let Some(&first) = self.names.get(&name) {
            self.diags.push(self.src.diag(
                pos,
                format!("duplicate policy name `{name}`"),
                Some(format!("first used on line {}", self.src.line_of(first))),
            ));
        } else {
            self.names.insert(name.clone(), pos);
        }
        name
    }

    fn description(&self, ei: usize) -> String {
        self.src
            .idx
            .own_description(ei)
            .map(|d| norm(&Some(d.text.clone())))
            .unwrap_or_default()
    }

    fn items(&mut self, ei: usize) -> Vec<PolicyNode> {
        let children = self.src.idx.elems[ei].children.clone();
        let mut out = Vec::new();
        for c in children {
            match self.src.idx.elems[c].tag.as_str() {
                "policy_set" => {
                    let name = self.name(c, "policy set");
                    let combining = self.combining(c, true);
                    out.push(PolicyNode::PolicySet {
                        name,
                        description: self.description(c),
                        combining,
                        target: self.expr_child(c, "target"),
                        items: self.items(c),
                        obligations: self.obligations(c),
                    });
                }
                "policy" => {
                    let name = self.name(c, "policy");
                    let combining = self.combining(c, false);
                    let rules = self
                        .src
                        .idx
                        .children(c, "rule")
                        .into_iter()
                        .map(|r| self.rule(r))
                        .collect();
                    out.push(PolicyNode::Policy {
                        name,
                        description: self.description(c),
                        combining,
                        target: self.expr_child(c, "target"),
                        rules,
                        obligations: self.obligations(c),
                    });
                }
                _ => {}
            }
        }
        out
    }

    fn rule(&mut self, ri: usize) -> Rule {
        let name = self.name(ri, "rule");
        let e = &self.src.idx.elems[ri];
        let effect = e
            .attr("effect")
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if !EFFECTS.contains(&effect.as_str()) {
            self.diags.push(self.src.diag(
                e.attr_pos("effect"),
                format!("unknown effect `{effect}`"),
                suggest(&effect, EFFECTS).or(Some("a rule's effect is `Permit` or `Deny`".into())),
            ));
        }
        Rule {
            name,
            description: self.description(ri),
            effect,
            target: self.expr_child(ri, "target"),
            condition: self.expr_child(ri, "condition"),
            obligations: self.obligations(ri),
        }
    }

    fn obligations(&mut self, ei: usize) -> Vec<Obligation> {
        let mut out = Vec::new();
        for oi in self.src.idx.children(ei, "obligation") {
            let e = &self.src.idx.elems[oi];
            let name = e.attr("name").map(|a| a.value.clone()).unwrap_or_default();
            if !is_name(&name) {
                self.diags.push(self.src.diag(
                    e.attr_pos("name"),
                    format!("obligation name `{name}` is not a name"),
                    None,
                ));
            }
            let on = e.attr("on").map(|a| a.value.clone()).unwrap_or_default();
            if !EFFECTS.contains(&on.as_str()) {
                self.diags.push(
                    self.src.diag(
                        e.attr_pos("on"),
                        format!("unknown effect `{on}`"),
                        suggest(&on, EFFECTS)
                            .or(Some("an obligation comes with `Permit` or `Deny`".into())),
                    ),
                );
            }
            let mut arguments = Vec::new();
            for ai in self.src.idx.children(oi, "argument") {
                let a = &self.src.idx.elems[ai];
                let attribute = a.attr("attribute").map(|x| x.value.clone());
                let value = a.attr("value").map(|x| x.value.clone());
                if attribute.is_some() == value.is_some() {
                    self.diags.push(self.src.diag(
                        a.pos,
                        "an `<argument>` takes either `attribute` or `value`",
                        None,
                    ));
                }
                if let Some(at) = &attribute {
                    let pos = a.attr_pos("attribute");
                    self.lookup(at, pos);
                }
                arguments.push(Argument {
                    name: a.attr("name").map(|x| x.value.clone()).unwrap_or_default(),
                    attribute,
                    value,
                });
            }
            out.push(Obligation {
                name,
                on,
                arguments,
            });
        }
        out
    }

    fn lookup(&mut self, name: &str, pos: usize) -> Option<(String, bool)> {
        if let Some(a) = self.attrs.iter().find(|a| a.name == name) {
            return Some((a.ty.clone(), a.multi));
        }
        let help = if self.have_attrs {
            suggest(name, self.attrs.iter().map(|a| a.name.as_str()))
                .or(Some("attributes are declared in attributes.xml".into()))
        } else {
            Some("attributes are declared in attributes.xml, which is missing".into())
        };
        self.diags.push(
            self.src
                .diag(pos, format!("unknown attribute `{name}`"), help),
        );
        None
    }

    fn expr_child(&mut self, ei: usize, tag: &str) -> Option<Expr> {
        let ce = self.src.idx.child(ei, tag, 0)?.clone();
        let text = ce.text.clone();
        let base = ce.text_pos();
        let verbatim = self.src.text.get(base..base + text.len()) == Some(text.as_str());
        let at = |off: usize| if verbatim { base + off } else { base };
        if text.trim().is_empty() {
            self.diags
                .push(self.src.diag(ce.pos, format!("empty `<{tag}>`"), None));
            return None;
        }
        let toks = match lex(&text) {
            Ok(t) => t,
            Err((off, m)) => {
                self.diags.push(self.src.diag(at(off), m, None));
                return None;
            }
        };
        let mut p = P { toks, pos: 0 };
        let tree = match p.or().and_then(|t| match p.peek() {
            (T::End, _) => Ok(t),
            (t, off) => Err((
                off,
                format!("expected `and`, `or` or the end, found {}", t.describe()),
            )),
        }) {
            Ok(t) => t,
            Err((off, m)) => {
                self.diags.push(self.src.diag(at(off), m, None));
                return None;
            }
        };
        // type check
        let mut errs: Vec<(usize, String, Option<String>)> = Vec::new();
        let ty = self.type_of(&tree, &mut errs);
        if let Some(t) = ty
            && t != ("bool".to_owned(), false)
        {
            errs.push((
                tree.1,
                format!("a {tag} must be true or false, not a `{}`", show(&t)),
                None,
            ));
        }
        let ok = errs.is_empty();
        for (off, m, h) in errs {
            self.diags.push(self.src.diag(at(off), m, h));
        }
        ok.then(|| Expr {
            source: text.trim().to_owned(),
            tree: strip(tree),
        })
    }

    /// `action.order_type == "…"` (any attribute that carries the requested
    /// action): the value must be something the engine asks for, or the
    /// comparison is silently never true.
    fn check_action_value(
        &self,
        attr: &PNode,
        lit: &PNode,
        errs: &mut Vec<(usize, String, Option<String>)>,
    ) {
        let (Some(known), PN::Attr(name), PN::Lit(ty, v)) = (self.actions, &attr.0, &lit.0) else {
            return;
        };
        let is_action = self
            .attrs
            .iter()
            .any(|a| &a.name == name && a.category == "action" && a.source == "request");
        if !is_action || ty != "string" || known.iter().any(|k| k == v) {
            return;
        }
        errs.push((
            lit.1,
            format!("`{v}` is neither an order type nor an action: `{name}` is never `{v}`"),
            suggest(v, known.iter().map(String::as_str)).or(Some(format!(
                "`{name}` is an order type of orders.xml, an action of actions.xml, `read_order`, `staff_action` or `rollback_order`"
            ))),
        ));
    }

    /// Type of a node: (type, is a bag). `None` after an error.
    fn type_of(
        &mut self,
        n: &PNode,
        errs: &mut Vec<(usize, String, Option<String>)>,
    ) -> Option<(String, bool)> {
        let (node, off) = (&n.0, n.1);
        let bool_t = ("bool".to_owned(), false);
        match node {
            PN::Attr(name) => {
                let before = self.diags.len();
                let r = self.lookup(name, 0);
                if r.is_none() {
                    // re-home the diagnostic to the expression position
                    if let Some(d) = self.diags.pop() {
                        errs.push((off, d.message, d.help));
                    }
                    self.diags.truncate(before);
                }
                r
            }
            PN::Lit(ty, _) => Some((ty.clone(), false)),
            PN::Not(a) => {
                let t = self.type_of(a, errs)?;
                if t != bool_t {
                    errs.push((
                        a.1,
                        format!("`not` needs true or false, not a `{}`", show(&t)),
                        None,
                    ));
                }
                Some(bool_t)
            }
            PN::And(v) | PN::Or(v) => {
                for a in v {
                    if let Some(t) = self.type_of(a, errs)
                        && t != bool_t
                    {
                        errs.push((
                            a.1,
                            format!("`and`/`or` need true or false, not a `{}`", show(&t)),
                            None,
                        ));
                    }
                }
                Some(bool_t)
            }
            PN::Cmp(op, l, r) => {
                let lt = self.type_of(l, errs);
                let rt = self.type_of(r, errs);
                let (lt, rt) = (lt?, rt?);
                if matches!(op.as_str(), "==" | "!=") {
                    self.check_action_value(l, r, errs);
                    self.check_action_value(r, l, errs);
                }
                let bad = |errs: &mut Vec<_>, why: String, help: Option<String>| {
                    errs.push((off, why, help))
                };
                match op.as_str() {
                    "in" => {
                        let ok = (rt.1 && !lt.1 && lt.0 == rt.0)
                            || (!lt.1
                                && !rt.1
                                && matches!(lt.0.as_str(), "ipv4" | "ipv6")
                                && rt.0 == "subnet");
                        if !ok {
                            bad(
                                errs,
                                format!(
                                    "`in` compares values of different types: `{}` in `{}`",
                                    show(&lt),
                                    show(&rt)
                                ),
                                Some(
                                    "`x in y` needs a bag of x's type, or an address and a subnet"
                                        .into(),
                                ),
                            );
                        }
                    }
                    _ => {
                        if lt.1 || rt.1 {
                            bad(
                                errs,
                                format!(
                                    "`{op}` compares a bag: `{}` {op} `{}`",
                                    show(&lt),
                                    show(&rt)
                                ),
                                Some("use `in` to test membership in a bag".into()),
                            );
                        } else if lt.0 != rt.0 {
                            let help = match (&l.0, &r.0) {
                                (_, PN::Lit(t, v)) | (PN::Lit(t, v), _) if t == "string" => {
                                    let other = if lt.0 == "string" { &rt.0 } else { &lt.0 };
                                    Some(format!("write a typed value: {other}(\"{v}\")"))
                                }
                                _ => None,
                            };
                            bad(
                                errs,
                                format!(
                                    "`{op}` compares values of different types: `{}` and `{}`",
                                    lt.0, rt.0
                                ),
                                help,
                            );
                        } else if matches!(op.as_str(), "<" | "<=" | ">" | ">=")
                            && !matches!(
                                lt.0.as_str(),
                                "integer" | "date" | "datetime" | "ipv4" | "ipv6"
                            )
                        {
                            bad(
                                errs,
                                format!("`{op}` does not order `{}` values", lt.0),
                                None,
                            );
                        }
                    }
                }
                Some(bool_t)
            }
        }
    }
}

fn show(t: &(String, bool)) -> String {
    if t.1 {
        format!("bag of {}", t.0)
    } else {
        t.0.clone()
    }
}

// ---- lexer and parser of the expression language

#[derive(Debug, Clone, PartialEq)]
enum T {
    Ident(String),
    Str(String),
    Int(String),
    Op(&'static str),
    Not,
    And,
    Or,
    In,
    Open,
    Close,
    End,
}

impl T {
    fn describe(&self) -> String {
        match self {
            T::Ident(s) => format!("`{s}`"),
            T::Str(s) => format!("\"{s}\""),
            T::Int(s) => format!("`{s}`"),
            T::Op(s) => format!("`{s}`"),
            T::Not => "`not`".into(),
            T::And => "`and`".into(),
            T::Or => "`or`".into(),
            T::In => "`in`".into(),
            T::Open => "`(`".into(),
            T::Close => "`)`".into(),
            T::End => "the end".into(),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(T, usize)>, (usize, String)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let tok = if let Some(op) = ["==", "!=", "<=", ">=", "&&", "||"]
            .into_iter()
            .find(|o| *o == two)
        {
            i += 2;
            match op {
                "&&" => T::And,
                "||" => T::Or,
                "==" => T::Op("=="),
                "!=" => T::Op("!="),
                "<=" => T::Op("<="),
                _ => T::Op(">="),
            }
        } else {
            match c {
                b'<' => {
                    i += 1;
                    T::Op("<")
                }
                b'>' => {
                    i += 1;
                    T::Op(">")
                }
                b'!' => {
                    i += 1;
                    T::Not
                }
                b'(' => {
                    i += 1;
                    T::Open
                }
                b')' => {
                    i += 1;
                    T::Close
                }
                b'"' | b'\'' => {
                    let Some(len) = b[i + 1..].iter().position(|&x| x == c) else {
                        return Err((start, "unterminated text".into()));
                    };
                    i += len + 2;
                    T::Str(src[start + 1..start + 1 + len].to_owned())
                }
                b'-' | b'0'..=b'9' => {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    if &src[start..i] == "-" {
                        return Err((start, "unexpected `-`".into()));
                    }
                    T::Int(src[start..i].to_owned())
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                    {
                        i += 1;
                    }
                    match &src[start..i] {
                        "and" => T::And,
                        "or" => T::Or,
                        "not" => T::Not,
                        "in" => T::In,
                        s => T::Ident(s.to_owned()),
                    }
                }
                _ => {
                    let ch = src[start..].chars().next().unwrap_or('?');
                    return Err((start, format!("unexpected character `{ch}`")));
                }
            }
        };
        out.push((tok, start));
    }
    out.push((T::End, src.len()));
    Ok(out)
}

#[derive(Debug, Clone)]
enum PN {
    Attr(String),
    Lit(String, String),
    Not(Box<PNode>),
    And(Vec<PNode>),
    Or(Vec<PNode>),
    Cmp(String, Box<PNode>, Box<PNode>),
}

/// A node with the offset where it starts.
type PNode = (PN, usize);
type PResult = Result<PNode, (usize, String)>;

struct P {
    toks: Vec<(T, usize)>,
    pos: usize,
}

impl P {
    fn peek(&self) -> (T, usize) {
        self.toks[self.pos].clone()
    }

    fn next(&mut self) -> (T, usize) {
        let t = self.peek();
        if t.0 != T::End {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> PResult {
        let first = self.and()?;
        let at = first.1;
        let mut v = vec![first];
        while self.peek().0 == T::Or {
            self.next();
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            (PN::Or(v), at)
        })
    }

    fn and(&mut self) -> PResult {
        let first = self.unary()?;
        let at = first.1;
        let mut v = vec![first];
        while self.peek().0 == T::And {
            self.next();
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            (PN::And(v), at)
        })
    }

    fn unary(&mut self) -> PResult {
        match self.peek() {
            (T::Not, at) => {
                self.next();
                Ok((PN::Not(Box::new(self.unary()?)), at))
            }
            _ => self.cmp(),
        }
    }

    fn cmp(&mut self) -> PResult {
        let lhs = self.operand()?;
        let at = lhs.1;
        let op = match self.peek().0 {
            T::Op(o) => o.to_owned(),
            T::In => "in".to_owned(),
            _ => return Ok(lhs),
        };
        self.next();
        let rhs = self.operand()?;
        Ok((PN::Cmp(op, Box::new(lhs), Box::new(rhs)), at))
    }

    fn operand(&mut self) -> PResult {
        let (t, at) = self.next();
        match t {
            T::Open => {
                let e = self.or()?;
                match self.next() {
                    (T::Close, _) => Ok(e),
                    (t, o) => Err((o, format!("expected `)`, found {}", t.describe()))),
                }
            }
            T::Str(s) => Ok((PN::Lit("string".into(), s), at)),
            T::Int(s) => {
                s.parse::<i64>()
                    .map_err(|_| (at, format!("`{s}` is too large")))?;
                Ok((PN::Lit("integer".into(), s), at))
            }
            T::Ident(s) if s == "true" || s == "false" => Ok((PN::Lit("bool".into(), s), at)),
            T::Ident(s) if self.peek().0 == T::Open => {
                if !TYPES.contains(&s.as_str())
                    || matches!(s.as_str(), "string" | "integer" | "bool")
                {
                    return Err((at, format!("unknown typed value `{s}(…)`")));
                }
                self.next();
                let (v, vat) = match self.next() {
                    (T::Str(v), o) => (v, o),
                    (t, o) => {
                        return Err((
                            o,
                            format!("expected a quoted value, found {}", t.describe()),
                        ));
                    }
                };
                match self.next() {
                    (T::Close, _) => {}
                    (t, o) => return Err((o, format!("expected `)`, found {}", t.describe()))),
                }
                if let Err(why) = literal_ok(&s, &v) {
                    return Err((vat, format!("`{v}` is not a valid {s}: {why}")));
                }
                Ok((PN::Lit(s, v), at))
            }
            T::Ident(s) => {
                let Some((cat, _)) = s.split_once('.') else {
                    return Err((
                        at,
                        format!(
                            "`{s}` is not an attribute; write `category.name`, e.g. `subject.{s}`"
                        ),
                    ));
                };
                if !CATEGORIES.contains(&cat) {
                    return Err((at, format!("unknown attribute category `{cat}` in `{s}`")));
                }
                Ok((PN::Attr(s), at))
            }
            t => Err((
                at,
                format!("expected an attribute or a value, found {}", t.describe()),
            )),
        }
    }
}

/// Syntax of a typed literal.
fn literal_ok(ty: &str, v: &str) -> Result<(), String> {
    let ok = match ty {
        "ipv4" => v.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => v.parse::<Ipv6Addr>().is_ok(),
        "subnet" => v.split_once('/').is_some_and(|(a, p)| {
            (a.parse::<Ipv4Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 32))
                || (a.parse::<Ipv6Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128))
        }),
        "mac" => {
            let parts: Vec<&str> = v.split([':', '-']).collect();
            parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
        }
        "date" => {
            let p: Vec<&str> = v.split('-').collect();
            p.len() == 3 && p[0].len() == 4 && p.iter().all(|x| x.parse::<u16>().is_ok())
        }
        "datetime" => v.len() >= 20 && v.as_bytes()[10] == b'T',
        _ => !v.trim().is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("malformed {ty}"))
    }
}

fn strip(n: PNode) -> Node {
    match n.0 {
        PN::Attr(name) => Node::Attr { name },
        PN::Lit(ty, value) => Node::Lit { ty, value },
        PN::Not(a) => Node::Not {
            arg: Box::new(strip(*a)),
        },
        PN::And(v) => Node::And {
            args: v.into_iter().map(strip).collect(),
        },
        PN::Or(v) => Node::Or {
            args: v.into_iter().map(strip).collect(),
        },
        PN::Cmp(cmp, l, r) => Node::Cmp {
            cmp,
            lhs: Box::new(strip(*l)),
            rhs: Box::new(strip(*r)),
        },
    }
}

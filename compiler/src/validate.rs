//! Semantic validation: resolves names across the four files and builds the
//! [`Model`]. Every problem is its own diagnostic; validation goes on after
//! one so a single run reports them all.

use std::collections::{BTreeMap, HashMap};

use crate::model::*;
use crate::parse::*;
use crate::{Diagnostic, Source, cond, suggest};

/// The name of the built-in no-op action.
pub(crate) const NULL_ACTION: &str = "null";
pub(crate) const NULL_HANDLER: &str = "auftrag_engine::builtin::null";
/// Names of generated items that order-type structs must not take.
const RESERVED_TYPES: [&str; 5] = ["State", "Action", "Check", "OrderType", "Definitions"];

fn norm(s: &Option<String>) -> String {
    s.as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A name usable for states, actions and orders: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Rust identifier (not a keyword).
fn is_rust_ident(s: &str) -> bool {
    is_name(s) && syn::parse_str::<syn::Ident>(s).is_ok()
}

/// `CHECKS_DONE` → `ChecksDone`, `change_device` → `ChangeDevice`.
pub(crate) fn camel(s: &str) -> String {
    let mut out = String::new();
    for part in s.split(['_', '-']).filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.extend(cs.flat_map(|c| c.to_lowercase()));
        }
    }
    out
}

/// Tracks names of one kind to report duplicates and clashing Rust names.
struct Names<'s> {
    kind: &'static str,
    src: &'s Source,
    seen: HashMap<String, usize>,
    variants: HashMap<String, String>,
}

impl<'s> Names<'s> {
    fn new(kind: &'static str, src: &'s Source) -> Self {
        Self {
            kind,
            src,
            seen: HashMap::new(),
            variants: HashMap::new(),
        }
    }

    /// Registers `name` defined at `pos`; false (with a diagnostic) for a duplicate.
    fn add(
        &mut self,
        name: &str,
        pos: usize,
        diags: &mut Vec<Diagnostic>,
        rust_name: Option<&str>,
    ) -> bool {
        if let Some(&first) = self.seen.get(name) {
            diags.push(self.src.diag(
                pos,
                format!("duplicate {} `{name}`", self.kind),
                Some(format!("first defined on line {}", self.src.line_of(first))),
            ));
            return false;
        }
        self.seen.insert(name.to_owned(), pos);
        if let Some(v) = rust_name {
            if let Some(other) = self.variants.get(v) {
                diags.push(self.src.diag(
                    pos,
                    format!(
                        "{} `{name}` has the same Rust name `{v}` as `{other}`",
                        self.kind
                    ),
                    Some("names are turned into UpperCamelCase; rename one of them".into()),
                ));
            } else {
                self.variants.insert(v.to_owned(), name.to_owned());
            }
        }
        true
    }
}

fn check_name(
    src: &Source,
    kind: &str,
    name: &str,
    pos: usize,
    rust_ident: bool,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let ok = if rust_ident {
        is_rust_ident(name)
    } else {
        is_name(name) && !camel(name).is_empty()
    };
    if !ok {
        diags.push(src.diag(
            pos,
            format!("{kind} name `{name}` is not a Rust identifier"),
            Some(
                "use letters, digits and `_`, starting with a letter (and no Rust keyword)".into(),
            ),
        ));
    }
    ok
}

fn parse_severity(
    src: &Source,
    value: &Option<String>,
    attr: Option<&crate::xml::Attr>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Severity> {
    let v = value.as_deref()?;
    match v {
        "error" => Some(Severity::Error),
        "warning" => Some(Severity::Warning),
        "off" => Some(Severity::Off),
        v => {
            let names = ["error", "warning", "off"];
            let (pos, name) = attr.map_or((0, "severity"), |a| (a.pos, a.name.as_str()));
            diags.push(src.diag(
                pos,
                format!("unknown severity `{v}` in `{name}`"),
                suggest(v, names).or(Some("expected `error`, `warning` or `off`".into())),
            ));
            None
        }
    }
}

pub(crate) fn build(
    wf: Option<&(Source, XWorkflow)>,
    ac: Option<&(Source, XActions)>,
    ck: Option<&(Source, XConfig)>,
    od: Option<&(Source, XOrders)>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Model> {
    let errors_before = diags.len();

    // ---- actions.xml
    let mut actions: Vec<Action> = Vec::new();
    if let Some((src, x)) = ac {
        let mut names = Names::new("action", src);
        for (i, a) in x.actions.iter().enumerate() {
            let Some(e) = src.idx.child(0, "action", i) else {
                continue;
            };
            let pos = e.attr_pos("name");
            if a.name == NULL_ACTION {
                diags.push(src.diag(
                    pos,
                    "`null` is the built-in no-op action and cannot be declared",
                    Some("remove this `<action>`; workflow.xml may use `null` without it".into()),
                ));
                continue;
            }
            if !check_name(src, "action", &a.name, pos, false, diags) {
                continue;
            }
            let variant = camel(&a.name);
            if !names.add(&a.name, pos, diags, Some(&variant)) {
                continue;
            }
            if let Err(err) = syn::parse_str::<syn::Path>(&a.handler) {
                diags.push(src.diag(
                    e.attr_pos("handler"),
                    format!("handler `{}` is not a Rust path: {err}", a.handler),
                    Some("e.g. `crate::junet::actions::run_request`".into()),
                ));
            }
            let mut allowed = Vec::new();
            for tok in a.allowed.as_deref().unwrap_or("").split_whitespace() {
                let actor = match tok {
                    "requester" => Actor::Requester,
                    "staff" => Actor::Staff,
                    other => {
                        let apos = e.attr("allowed").map_or(e.pos, |at| {
                            if at.verbatim {
                                at.pos + at.value.find(other).unwrap_or(0)
                            } else {
                                at.pos
                            }
                        });
                        diags.push(
                            src.diag(
                                apos,
                                format!("unknown actor `{other}` in `allowed`"),
                                suggest(other, ["requester", "staff"])
                                    .or(Some("expected `requester` or `staff`".into())),
                            ),
                        );
                        continue;
                    }
                };
                if !allowed.contains(&actor) {
                    allowed.push(actor);
                }
            }
            actions.push(Action {
                name: a.name.clone(),
                variant,
                description: norm(&a.description),
                handler: a.handler.clone(),
                allowed,
                builtin: false,
            });
        }
    }

    // ---- orders.xml (before checks.xml, which names its fields)
    let mut order_types: Vec<OrderType> = Vec::new();
    if let Some((src, x)) = od {
        let mut names = Names::new("order type", src);
        for (i, o) in x.orders.iter().enumerate() {
            let Some(oi) = src.idx.children(0, "order").get(i).copied() else {
                continue;
            };
            let e = &src.idx.elems[oi];
            let pos = e.attr_pos("name");
            let valid = check_name(src, "order type", &o.name, pos, false, diags);
            let variant = camel(&o.name);
            if valid && RESERVED_TYPES.contains(&variant.as_str()) {
                diags.push(src.diag(
                    pos,
                    format!("order type `{}` would generate the type `{variant}`, which clashes with a generated item", o.name),
                    Some("rename the order type".into()),
                ));
            }
            if !valid || !names.add(&o.name, pos, diags, Some(&variant)) {
                continue;
            }
            if let Some((_, w)) = wf
                && o.workflow != w.ty
            {
                diags.push(src.diag(
                    e.attr_pos("workflow"),
                    format!("unknown workflow `{}`", o.workflow),
                    Some(format!("workflow.xml defines the workflow `{}`", w.ty)),
                ));
            }
            let mut fields: Vec<Field> = Vec::new();
            let mut field_names = Names::new("field", src);
            for (j, f) in o.fields.iter().enumerate() {
                let Some(fe) = src.idx.child(oi, "field", j) else {
                    continue;
                };
                let fpos = fe.attr_pos("name");
                if !check_name(src, "field", &f.name, fpos, true, diags)
                    || !field_names.add(&f.name, fpos, diags, None)
                {
                    continue;
                }
                let ty = match FieldType::from_name(&f.ty) {
                    Some(t) => t,
                    None => {
                        diags.push(src.diag(
                            fe.attr_pos("type"),
                            format!("unknown field type `{}`", f.ty),
                            suggest(&f.ty, FieldType::NAMES).or_else(|| {
                                Some(format!(
                                    "field types are {}",
                                    crate::list(&FieldType::NAMES)
                                ))
                            }),
                        ));
                        // keep the field (for checks.xml) with a stand-in type;
                        // the diagnostic already prevents code generation
                        FieldType::String
                    }
                };
                let required = match f.required.as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(v) => {
                        diags.push(src.diag(
                            fe.attr_pos("required"),
                            format!("`required` must be `true` or `false`, found `{v}`"),
                            None,
                        ));
                        false
                    }
                };
                fields.push(Field {
                    name: f.name.clone(),
                    description: norm(&f.description),
                    ty,
                    required,
                });
            }
            if let Some(key) = &o.key
                && !o.fields.iter().any(|f| &f.name == key)
            {
                diags.push(src.diag(
                    e.attr_pos("key"),
                    format!("key `{key}` is not a field of order type `{}`", o.name),
                    suggest(key, o.fields.iter().map(|f| f.name.as_str())),
                ));
            }
            order_types.push(OrderType {
                name: o.name.clone(),
                variant,
                description: norm(&o.description),
                workflow: o.workflow.clone(),
                key: o.key.clone(),
                fields,
            });
        }
    }

    // ---- checks.xml
    let mut checks: Vec<Check> = Vec::new();
    let mut bindings: Vec<CheckBinding> = Vec::new();
    if let Some((src, x)) = ck {
        let root = &src.idx.elems[0];
        if let Err(err) = syn::parse_str::<syn::Path>(&x.module) {
            diags.push(src.diag(
                root.attr_pos("module"),
                format!("module `{}` is not a Rust path: {err}", x.module),
                Some("e.g. `crate::junet::checks`".into()),
            ));
        }
        let mut seen_bindings: BTreeMap<(String, Option<String>, Vec<String>), usize> =
            BTreeMap::new();
        // (list element index, field name, order types) for each <global>/<field>
        let globals = src.idx.children(0, "global");
        let fields = src.idx.children(0, "field");
        let mut lists: Vec<(usize, Option<&XFieldChecks>, &Vec<XCheck>)> = Vec::new();
        for (g, list) in x.globals.iter().enumerate() {
            if let Some(&gi) = globals.get(g) {
                lists.push((gi, None, &list.checks));
            }
        }
        for (f, list) in x.fields.iter().enumerate() {
            if let Some(&fi) = fields.get(f) {
                lists.push((fi, Some(list), &list.checks));
            }
        }
        lists.sort_by_key(|l| l.0);
        for (li, field, list) in lists {
            let le = &src.idx.elems[li];
            let mut types: Vec<String> = Vec::new();
            if let Some(f) = field {
                if let Some(ot) = &f.order_types {
                    let at = le.attr("order_types");
                    for t in ot.split_whitespace() {
                        if od.is_some() && !order_types.iter().any(|o| o.name == t) {
                            let pos = at.map_or(le.pos, |a| {
                                if a.verbatim {
                                    a.pos + a.value.find(t).unwrap_or(0)
                                } else {
                                    a.pos
                                }
                            });
                            diags.push(src.diag(
                                pos,
                                format!("unknown order type `{t}`"),
                                suggest(t, order_types.iter().map(|o| o.name.as_str())),
                            ));
                        } else if !types.iter().any(|x| x == t) {
                            types.push(t.to_owned());
                        }
                    }
                }
                if od.is_some() {
                    let fpos = le.attr_pos("name");
                    let relevant: Vec<&OrderType> = order_types
                        .iter()
                        .filter(|o| types.is_empty() || types.contains(&o.name))
                        .collect();
                    let has = |o: &&OrderType| o.fields.iter().any(|fd| fd.name == f.name);
                    if types.is_empty() {
                        if !relevant.iter().any(has) {
                            let all = relevant
                                .iter()
                                .flat_map(|o| o.fields.iter().map(|fd| fd.name.as_str()));
                            diags.push(src.diag(
                                fpos,
                                format!("unknown field `{}`: no order type has it", f.name),
                                suggest(&f.name, all),
                            ));
                        }
                    } else {
                        for o in relevant.iter().filter(|o| !has(o)) {
                            diags.push(src.diag(
                                fpos,
                                format!("order type `{}` has no field `{}`", o.name, f.name),
                                suggest(&f.name, o.fields.iter().map(|fd| fd.name.as_str())),
                            ));
                        }
                    }
                }
            }
            for (j, c) in list.iter().enumerate() {
                let Some(ce) = src.idx.child(li, "check", j) else {
                    continue;
                };
                let name = c.name.trim();
                let pos = ce.text_pos();
                if name.is_empty() {
                    diags.push(src.diag(
                        pos,
                        "empty `<check>`",
                        Some("write the name of the check function".into()),
                    ));
                    continue;
                }
                if !check_name(src, "check", name, pos, true, diags) {
                    continue;
                }
                let base = parse_severity(src, &c.severity, ce.attr("severity"), diags)
                    .unwrap_or(Severity::Error);
                let engine =
                    parse_severity(src, &c.engine, ce.attr("engine"), diags).unwrap_or(base);
                let portal =
                    parse_severity(src, &c.portal, ce.attr("portal"), diags).unwrap_or(base);
                let check_id = match checks.iter().position(|k| k.name == name) {
                    Some(i) => i,
                    None => {
                        checks.push(Check {
                            name: name.to_owned(),
                            variant: camel(name),
                            handler: format!("{}::{name}", x.module),
                        });
                        checks.len() - 1
                    }
                };
                let field_name = field.map(|f| f.name.clone());
                let key = (name.to_owned(), field_name.clone(), types.clone());
                if let Some(&first) = seen_bindings.get(&key) {
                    diags.push(src.diag(
                        pos,
                        format!(
                                "check `{name}` is bound twice to {}",
                                field_name
                                    .as_deref()
                                    .map_or("the order".into(), |f| format!("field `{f}`"))
                            ),
                        Some(format!("first bound on line {}", src.line_of(first))),
                    ));
                    continue;
                }
                seen_bindings.insert(key, pos);
                bindings.push(CheckBinding {
                    check: name.to_owned(),
                    check_id: check_id as u16,
                    field: field_name,
                    order_types: types.clone(),
                    portal,
                    engine,
                });
            }
        }
        // distinct checks must have distinct Rust names
        let mut variants: HashMap<&str, &str> = HashMap::new();
        for c in &checks {
            if let Some(other) = variants.insert(&c.variant, &c.name) {
                diags.push(src.diag(
                    0,
                    format!(
                        "checks `{other}` and `{}` have the same Rust name `{}`",
                        c.name, c.variant
                    ),
                    None,
                ));
            }
        }
    }

    // ---- workflow.xml
    let mut workflow = None;
    let mut null_used = false;
    if let Some((src, x)) = wf {
        let root = &src.idx.elems[0];
        if x.ty.trim().is_empty() {
            let pos = src.idx.child(0, "type", 0).map_or(root.pos, |e| e.pos);
            diags.push(src.diag(pos, "empty workflow `<type>`", None));
        }
        let state_elems = src.idx.children(0, "state");
        let mut names = Names::new("state", src);
        let mut states: Vec<State> = Vec::new();
        // index in `states` per state element (None for a skipped one)
        let mut kept: Vec<Option<usize>> = Vec::new();
        for (i, s) in x.states.iter().enumerate() {
            let Some(&si) = state_elems.get(i) else {
                kept.push(None);
                continue;
            };
            let e = &src.idx.elems[si];
            let pos = e.attr_pos("name");
            let variant = camel(&s.name);
            if !check_name(src, "state", &s.name, pos, false, diags)
                || !names.add(&s.name, pos, diags, Some(&variant))
            {
                kept.push(None);
                continue;
            }
            let autorun = match s.autorun.as_deref() {
                None | Some("no") => false,
                Some("yes") => true,
                Some(v) => {
                    diags.push(src.diag(
                        e.attr_pos("autorun"),
                        format!("autorun must be `yes` or `no`, found `{v}`"),
                        None,
                    ));
                    false
                }
            };
            kept.push(Some(states.len()));
            states.push(State {
                name: s.name.clone(),
                variant,
                description: norm(&s.description),
                autorun,
                transitions: Vec::new(),
            });
        }
        let initial = states.iter().position(|s| s.name == "INITIAL");
        if initial.is_none() {
            diags.push(
                src.diag(
                    root.pos,
                    "missing state `INITIAL`",
                    Some(
                        suggest("INITIAL", states.iter().map(|s| s.name.as_str()))
                            .map(|m| format!("the engine starts every order in `INITIAL`; {m}"))
                            .unwrap_or_else(|| "the engine starts every order in `INITIAL`".into()),
                    ),
                ),
            );
        }
        let state_names: Vec<&str> = x.states.iter().map(|s| s.name.as_str()).collect();
        let mut transitions_of: Vec<Vec<Transition>> = vec![Vec::new(); states.len()];
        for (i, s) in x.states.iter().enumerate() {
            let Some(&si) = state_elems.get(i) else {
                continue;
            };
            let action_elems = src.idx.children(si, "action");
            for (j, t) in s.actions.iter().enumerate() {
                let Some(&ai) = action_elems.get(j) else {
                    continue;
                };
                let e = &src.idx.elems[ai];
                let mut ok = true;
                let action_id = if t.name == NULL_ACTION {
                    null_used = true;
                    0
                } else if let Some(p) = actions.iter().position(|a| a.name == t.name) {
                    p as u16
                } else {
                    if ac.is_some() {
                        let cands = actions.iter().map(|a| a.name.as_str()).chain([NULL_ACTION]);
                        diags.push(
                            src.diag(
                                e.attr_pos("name"),
                                format!("unknown action `{}`", t.name),
                                suggest(&t.name, cands)
                                    .or(Some("actions are declared in actions.xml".into())),
                            ),
                        );
                    }
                    ok = false;
                    0
                };
                let resulting = states.iter().position(|st| st.name == t.resulting_state);
                if resulting.is_none() && !state_names.contains(&t.resulting_state.as_str()) {
                    diags.push(src.diag(
                        e.attr_pos("resulting_state"),
                        format!("unknown state `{}`", t.resulting_state),
                        suggest(&t.resulting_state, state_names.iter().copied()),
                    ));
                }
                let cond_elems = src.idx.children(ai, "condition");
                let mut exprs: Vec<(String, CondExpr)> = Vec::new();
                for (k, c) in t.conditions.iter().enumerate() {
                    let Some(&ci) = cond_elems.get(k) else {
                        continue;
                    };
                    let ce = &src.idx.elems[ci];
                    match cond::parse(&c.test) {
                        Ok(expr) => exprs.push((c.test.trim().to_owned(), expr)),
                        Err(err) => {
                            let at = ce.attr("test");
                            let pos = at.map_or(ce.pos, |a| {
                                if a.verbatim {
                                    a.pos + err.offset
                                } else {
                                    a.pos
                                }
                            });
                            diags.push(src.diag(pos, err.message, err.help));
                            ok = false;
                        }
                    }
                }
                let condition = match exprs.len() {
                    0 => None,
                    1 => {
                        let (source, expr) = exprs.pop().unwrap();
                        Some(Condition { source, expr })
                    }
                    _ => {
                        let source = exprs
                            .iter()
                            .map(|(s, _)| format!("({s})"))
                            .collect::<Vec<_>>()
                            .join(" and ");
                        let expr = exprs
                            .into_iter()
                            .map(|(_, e)| e)
                            .reduce(|a, b| CondExpr::And(Box::new(a), Box::new(b)))
                            .unwrap();
                        Some(Condition { source, expr })
                    }
                };
                let (Some(me), Some(rs), true) = (kept[i], resulting, ok) else {
                    continue;
                };
                transitions_of[me].push(Transition {
                    action: t.name.clone(),
                    action_id,
                    description: norm(&t.description),
                    condition,
                    resulting_state: t.resulting_state.clone(),
                    resulting_state_id: rs as u16,
                });
            }
            // INITIAL: exactly one action, unconditional
            if s.name == "INITIAL" && kept[i].is_some() {
                let e = &src.idx.elems[si];
                if s.actions.len() != 1 {
                    diags.push(src.diag(
                        e.attr_pos("name"),
                        format!(
                            "state `INITIAL` must have exactly one action, found {}",
                            s.actions.len()
                        ),
                        Some("the engine starts every order with the action of `INITIAL`".into()),
                    ));
                } else if let Some(ce) = action_elems
                    .first()
                    .and_then(|&a| src.idx.child(a, "condition", 0))
                {
                    diags.push(src.diag(
                        ce.attr_pos("test"),
                        "the action of state `INITIAL` must not have a condition",
                        Some("the engine starts every order with it unconditionally".into()),
                    ));
                }
            }
        }
        for (s, t) in states.iter_mut().zip(transitions_of) {
            s.transitions = t;
        }
        workflow = initial.map(|initial| Workflow {
            name: x.ty.trim().to_owned(),
            description: norm(&x.description),
            initial: initial as u16,
            states,
        });
    }

    if null_used {
        let null_id = actions.len() as u16;
        actions.push(Action {
            name: NULL_ACTION.into(),
            variant: camel(NULL_ACTION),
            description: "The built-in no-op action: only moves the order to its resulting state."
                .into(),
            handler: NULL_HANDLER.into(),
            allowed: Vec::new(),
            builtin: true,
        });
        if let Some(w) = &mut workflow {
            for t in w.states.iter_mut().flat_map(|s| s.transitions.iter_mut()) {
                if t.action == NULL_ACTION {
                    t.action_id = null_id;
                }
            }
        }
    }

    let too_many = |n: usize| n > usize::from(u16::MAX);
    if diags.len() > errors_before || wf.is_none() || ac.is_none() || ck.is_none() || od.is_none() {
        return None;
    }
    let workflow = workflow?;
    if too_many(workflow.states.len()) || too_many(actions.len()) || too_many(checks.len()) {
        return None;
    }
    Some(Model {
        workflow,
        actions,
        checks,
        check_bindings: bindings,
        order_types,
    })
}

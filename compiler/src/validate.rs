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

pub(crate) fn norm(s: &Option<String>) -> String {
    s.as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A name usable for states, actions and orders: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_name(s: &str) -> bool {
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

/// Positions of a token inside an attribute value, else the value's start.
fn token_pos(a: Option<&crate::xml::Attr>, fallback: usize, tok: &str) -> usize {
    a.map_or(fallback, |a| {
        if a.verbatim {
            a.pos + a.value.find(tok).unwrap_or(0)
        } else {
            a.pos
        }
    })
}

fn yes_no(src: &Source, e: &crate::xml::Elem, attr: &str, diags: &mut Vec<Diagnostic>) -> bool {
    match e.attr(attr).map(|a| a.value.as_str()) {
        None | Some("no") => false,
        Some("yes") => true,
        Some(v) => {
            diags.push(src.diag(
                e.attr_pos(attr),
                format!("{attr} must be `yes` or `no`, found `{v}`"),
                None,
            ));
            false
        }
    }
}

fn true_false(src: &Source, e: &crate::xml::Elem, attr: &str, diags: &mut Vec<Diagnostic>) -> bool {
    match e.attr(attr).map(|a| a.value.as_str()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            diags.push(src.diag(
                e.attr_pos(attr),
                format!("`{attr}` must be `true` or `false`, found `{v}`"),
                None,
            ));
            false
        }
    }
}

/// The contexts an action may declare it uses.
pub(crate) const CONTEXTS: [&str; 8] = [
    "order", "fields", "errors", "warnings", "accepted", "conn", "input", "comment",
];

/// The workflow file in either shape: one `<workflow>` root or `<workflows>`.
pub(crate) enum WorkflowFile {
    One(XWorkflow),
    Many(XWorkflows),
}

impl WorkflowFile {
    /// The workflows with the index of their element.
    fn workflows<'a>(&'a self, src: &Source) -> Vec<(usize, &'a XWorkflow)> {
        match self {
            WorkflowFile::One(w) => vec![(0, w)],
            WorkflowFile::Many(ws) => src
                .idx
                .children(0, "workflow")
                .into_iter()
                .zip(&ws.workflows)
                .collect(),
        }
    }
}

fn fields(src: &Source, parent: usize, xs: &[XField], diags: &mut Vec<Diagnostic>) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut field_names = Names::new("field", src);
    for (j, f) in xs.iter().enumerate() {
        let Some(&fi) = src.idx.children(parent, "field").get(j) else {
            continue;
        };
        let fe = &src.idx.elems[fi];
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
        let required = true_false(src, fe, "required", diags);
        let list = true_false(src, fe, "list", diags);
        let mut values: Vec<String> = Vec::new();
        match (&f.values, ty) {
            (Some(v), FieldType::Enum) => {
                for tok in v.split_whitespace() {
                    if values.iter().any(|x| x == tok) {
                        diags.push(src.diag(
                            token_pos(fe.attr("values"), fe.pos, tok),
                            format!("duplicate enum value `{tok}`"),
                            None,
                        ));
                    } else if !tok
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        diags.push(src.diag(
                            token_pos(fe.attr("values"), fe.pos, tok),
                            format!(
                                "enum value `{tok}` may hold only letters, digits, `_` and `-`"
                            ),
                            None,
                        ));
                    } else {
                        values.push(tok.to_owned());
                    }
                }
                if values.is_empty() && v.trim().is_empty() {
                    diags.push(src.diag(
                        fe.attr_pos("values"),
                        "an enum needs at least one value",
                        None,
                    ));
                }
                let mut variants: HashMap<String, &str> = HashMap::new();
                for v in &values {
                    if let Some(other) = variants.insert(enum_variant(v), v) {
                        diags.push(src.diag(
                            fe.attr_pos("values"),
                            format!("enum values `{other}` and `{v}` have the same Rust name"),
                            None,
                        ));
                    }
                }
            }
            (None, FieldType::Enum) => diags.push(src.diag(
                fe.attr_pos("type"),
                format!("enum field `{}` lacks `values`", f.name),
                Some("list the allowed values: values=\"EUI64 4to6\"".into()),
            )),
            (Some(_), _) => diags.push(src.diag(
                fe.attr("values").map_or(fe.pos, |a| a.name_pos),
                format!("`values` is only for `enum` fields, not `{}`", f.ty),
                None,
            )),
            (None, _) => {}
        }
        let mut bound = |attr: &str, v: &Option<String>| -> Option<i64> {
            let v = v.as_deref()?;
            if ty != FieldType::Integer {
                diags.push(src.diag(
                    fe.attr(attr).map_or(fe.pos, |a| a.name_pos),
                    format!("`{attr}` is only for `integer` fields, not `{}`", f.ty),
                    None,
                ));
                return None;
            }
            match v.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    diags.push(src.diag(
                        fe.attr_pos(attr),
                        format!("`{attr}` must be a whole number, found `{v}`"),
                        None,
                    ));
                    None
                }
            }
        };
        let min = bound("min", &f.min);
        let max = bound("max", &f.max);
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            diags.push(src.diag(
                fe.attr_pos("max"),
                format!("`max` {hi} is below `min` {lo}"),
                None,
            ));
        }
        let max_length = match (&f.max_length, ty) {
            (None, FieldType::String) => Some(DEFAULT_MAX_LENGTH),
            (None, _) => None,
            (Some(_), t) if t != FieldType::String => {
                diags.push(src.diag(
                    fe.attr("max_length").map_or(fe.pos, |a| a.name_pos),
                    format!("`max_length` is only for `string` fields, not `{}`", f.ty),
                    None,
                ));
                None
            }
            (Some(v), _) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_MAX_LENGTH).contains(&n) => Some(n),
                _ => {
                    diags.push(src.diag(
                        fe.attr_pos("max_length"),
                        format!(
                            "`max_length` must be a whole number from 1 to {MAX_MAX_LENGTH} (characters), found `{v}`"
                        ),
                        Some(format!(
                            "without `max_length` a string takes at most {DEFAULT_MAX_LENGTH} characters"
                        )),
                    ));
                    None
                }
            },
        };
        let multiline = true_false(src, fe, "multiline", diags);
        if multiline && ty != FieldType::String {
            diags.push(src.diag(
                fe.attr("multiline").map_or(fe.pos, |a| a.name_pos),
                format!("`multiline` is only for `string` fields, not `{}`", f.ty),
                None,
            ));
        }
        let sub = if ty == FieldType::Record {
            if f.fields.is_empty() {
                diags.push(src.diag(
                    fe.attr_pos("type"),
                    format!("record field `{}` has no fields", f.name),
                    Some("nest `<field>` elements in it".into()),
                ));
            }
            fields(src, fi, &f.fields, diags)
        } else {
            if let Some(&c) = src.idx.children(fi, "field").first() {
                diags.push(src.diag(
                    src.idx.elems[c].pos,
                    format!(
                        "only `record` fields have fields; `{}` is `{}`",
                        f.name, f.ty
                    ),
                    Some("write type=\"record\"".into()),
                ));
            }
            Vec::new()
        };
        out.push(Field {
            name: f.name.clone(),
            description: norm(&f.description),
            ty,
            required,
            list,
            values,
            min,
            max,
            max_length,
            multiline,
            fields: sub,
        });
    }
    out
}

/// Rust variant of an enum value: `EUI64` → `Eui64`, `4to6` → `V4to6`.
pub(crate) fn enum_variant(v: &str) -> String {
    let c = camel(v);
    if c.starts_with(|ch: char| ch.is_ascii_digit()) {
        format!("V{c}")
    } else {
        c
    }
}

/// The check name `checks.xml` binds to the engine's built-in policy check
/// (`auftrag_engine::builtin::authorization`) instead of a function of its
/// `module`.
pub const BUILTIN_AUTHORIZATION: &str = "authorization";

pub(crate) fn build(
    wf: Option<&(Source, WorkflowFile)>,
    ac: Option<&(Source, XActions)>,
    ck: Option<&(Source, XConfig)>,
    od: Option<&(Source, XOrders)>,
    has_policies: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Model> {
    let errors_before = diags.len();

    // ---- actions.xml
    let mut actions: Vec<Action> = Vec::new();
    let mut conditions: Vec<NamedCondition> = Vec::new();
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
            if !check_name(src, "action", &a.name, pos, true, diags) {
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
                        diags.push(
                            src.diag(
                                token_pos(e.attr("allowed"), e.pos, other),
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
            let mut context = Vec::new();
            for tok in a.context.as_deref().unwrap_or("").split_whitespace() {
                if CONTEXTS.contains(&tok) {
                    context.push(tok.to_owned());
                } else {
                    diags.push(
                        src.diag(
                            token_pos(e.attr("context"), e.pos, tok),
                            format!("unknown context `{tok}`"),
                            suggest(tok, CONTEXTS)
                                .or(Some(format!("the context has {}", crate::list(&CONTEXTS)))),
                        ),
                    );
                }
            }
            let returns: Vec<String> = a
                .returns
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            actions.push(Action {
                name: a.name.clone(),
                variant,
                description: norm(&a.description),
                handler: a.handler.clone(),
                allowed,
                context,
                returns,
                builtin: false,
                at: src.loc(e.attr_pos("handler")),
            });
        }
        let mut cnames = Names::new("condition", src);
        for (i, c) in x.conditions.iter().enumerate() {
            let Some(e) = src.idx.child(0, "condition", i) else {
                continue;
            };
            let pos = e.attr_pos("name");
            if !check_name(src, "condition", &c.name, pos, true, diags)
                || !cnames.add(&c.name, pos, diags, None)
            {
                continue;
            }
            if cond::BUILTIN.contains(&c.name.as_str()) {
                diags.push(src.diag(
                    pos,
                    format!(
                        "`{}` is a built-in condition and cannot be declared",
                        c.name
                    ),
                    None,
                ));
                continue;
            }
            if let Err(err) = syn::parse_str::<syn::Path>(&c.handler) {
                diags.push(src.diag(
                    e.attr_pos("handler"),
                    format!("handler `{}` is not a Rust path: {err}", c.handler),
                    None,
                ));
                continue;
            }
            conditions.push(NamedCondition {
                name: c.name.clone(),
                description: norm(&c.description),
                handler: c.handler.clone(),
                at: src.loc(e.attr_pos("handler")),
            });
        }
    }

    // workflow names (orders.xml refers to them)
    let wf_names: Vec<String> = wf
        .map(|(src, f)| {
            f.workflows(src)
                .iter()
                .map(|(_, w)| w.ty.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();

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
            let workflow_id = wf_names.iter().position(|w| *w == o.workflow);
            if wf.is_some() && workflow_id.is_none() {
                let help =
                    suggest(&o.workflow, wf_names.iter().map(String::as_str)).or_else(|| {
                        Some(if wf_names.len() == 1 {
                            format!("workflow.xml defines the workflow `{}`", wf_names[0])
                        } else {
                            format!(
                                "workflow.xml defines the workflows {}",
                                wf_names
                                    .iter()
                                    .map(|w| format!("`{w}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                    });
                diags.push(src.diag(
                    e.attr_pos("workflow"),
                    format!("unknown workflow `{}`", o.workflow),
                    help,
                ));
            }
            let fields = fields(src, oi, &o.fields, diags);
            if let Some(key) = &o.key {
                match o.fields.iter().find(|f| &f.name == key) {
                    None => diags.push(src.diag(
                        e.attr_pos("key"),
                        format!("key `{key}` is not a field of order type `{}`", o.name),
                        suggest(key, o.fields.iter().map(|f| f.name.as_str())),
                    )),
                    Some(f) if f.ty == "record" || f.list.as_deref() == Some("true") => {
                        diags.push(src.diag(
                            e.attr_pos("key"),
                            format!("key `{key}` must be a single value, not a record or list"),
                            None,
                        ))
                    }
                    Some(_) => {}
                }
            }
            order_types.push(OrderType {
                name: o.name.clone(),
                variant,
                description: norm(&o.description),
                workflow: o.workflow.clone(),
                workflow_id: workflow_id.unwrap_or(0) as u16,
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
        let globals = src.idx.children(0, "global");
        let field_elems = src.idx.children(0, "field");
        // (list element index, field, order types attribute, checks)
        let mut lists: Vec<CheckList<'_>> = Vec::new();
        for (g, list) in x.globals.iter().enumerate() {
            if let Some(&gi) = globals.get(g) {
                lists.push((gi, None, &list.order_types, &list.checks));
            }
        }
        for (f, list) in x.fields.iter().enumerate() {
            if let Some(&fi) = field_elems.get(f) {
                lists.push((fi, Some(list), &list.order_types, &list.checks));
            }
        }
        lists.sort_by_key(|l| l.0);
        for (li, field, ots, list) in lists {
            let le = &src.idx.elems[li];
            let mut types: Vec<String> = Vec::new();
            if let Some(ot) = ots {
                let at = le.attr("order_types");
                for t in ot.split_whitespace() {
                    if od.is_some() && !order_types.iter().any(|o| o.name == t) {
                        diags.push(src.diag(
                            token_pos(at, le.pos, t),
                            format!("unknown order type `{t}`"),
                            suggest(t, order_types.iter().map(|o| o.name.as_str())),
                        ));
                    } else if !types.iter().any(|x| x == t) {
                        types.push(t.to_owned());
                    }
                }
            }
            let mut field_ty = None;
            if let Some(f) = field
                && od.is_some()
            {
                let fpos = le.attr_pos("name");
                let relevant: Vec<&OrderType> = order_types
                    .iter()
                    .filter(|o| types.is_empty() || types.contains(&o.name))
                    .collect();
                let has = |o: &&OrderType| o.fields.iter().any(|fd| fd.name == f.name);
                field_ty = relevant
                    .iter()
                    .flat_map(|o| o.fields.iter())
                    .find(|fd| fd.name == f.name)
                    .map(|fd| fd.ty);
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
                let builtin = name == BUILTIN_AUTHORIZATION;
                if builtin && field.is_some() {
                    diags.push(src.diag(
                        pos,
                        "the built-in check `authorization` judges the order, not a field",
                        Some("bind it in `<global>`".into()),
                    ));
                    continue;
                }
                if builtin && !has_policies {
                    diags.push(src.diag(
                        pos,
                        "the built-in check `authorization` enforces policies.xml, and this folder has none",
                        Some("add policies.xml (with attributes.xml), or remove this binding".into()),
                    ));
                    continue;
                }
                let base = parse_severity(src, &c.severity, ce.attr("severity"), diags)
                    .unwrap_or(Severity::Error);
                let engine =
                    parse_severity(src, &c.engine, ce.attr("engine"), diags).unwrap_or(base);
                let portal =
                    parse_severity(src, &c.portal, ce.attr("portal"), diags).unwrap_or(base);
                let syntax = yes_no(src, ce, "syntax", diags);
                if syntax {
                    if field.is_none() {
                        diags.push(src.diag(
                            ce.attr_pos("syntax"),
                            format!("global check `{name}` cannot judge a field's syntax"),
                            Some("move it into a `<field>`".into()),
                        ));
                    } else if matches!(field_ty, Some(FieldType::String | FieldType::Record)) {
                        diags.push(src.diag(
                            ce.attr_pos("syntax"),
                            format!(
                                "field `{}` has no built-in syntax check to replace",
                                field.map_or("", |f| f.name.as_str())
                            ),
                            Some(if field_ty == Some(FieldType::Record) {
                                "a record's members are judged by their own types; bind the check without `syntax=\"yes\"`".into()
                            } else {
                                "a `string` is any line of text (its length and characters are checked all the same); give the field a type (`email`, `url`, `dnsname`, …) or bind the check without `syntax=\"yes\"`".into()
                            }),
                        ));
                    }
                }
                let check_id = match checks.iter().position(|k| k.name == name) {
                    Some(i) => i,
                    None => {
                        checks.push(Check {
                            name: name.to_owned(),
                            variant: camel(name),
                            handler: if builtin {
                                format!("auftrag_engine::builtin::{name}")
                            } else {
                                format!("{}::{name}", x.module)
                            },
                            at: src.loc(pos),
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
                    syntax,
                    at: src.loc(pos),
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
    let mut workflows = Vec::new();
    let mut null_used = false;
    let known_conds: Vec<&str> = cond::BUILTIN
        .iter()
        .copied()
        .chain(conditions.iter().map(|c| c.name.as_str()))
        .collect();
    if let Some((src, file)) = wf {
        let mut wnames = Names::new("workflow", src);
        let list = file.workflows(src);
        if list.is_empty() {
            diags.push(src.diag(
                src.idx.elems[0].pos,
                "no `<workflow>` in workflow.xml",
                None,
            ));
        }
        for (wi, x) in list {
            let type_pos = src
                .idx
                .child(wi, "type", 0)
                .map_or(src.idx.elems[wi].pos, |e| e.text_pos());
            let name = x.ty.trim();
            if name.is_empty() {
                diags.push(src.diag(type_pos, "empty workflow `<type>`", None));
            } else if !wnames.add(name, type_pos, diags, Some(&camel(name))) {
                continue;
            }
            let w = workflow(
                src,
                wi,
                x,
                &actions,
                ac.is_some(),
                &known_conds,
                &mut null_used,
                diags,
            );
            if let Some(w) = w {
                workflows.push(w);
            }
        }
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
            context: Vec::new(),
            returns: Vec::new(),
            builtin: true,
            at: "(built-in)".into(),
        });
        for w in &mut workflows {
            for t in w.states.iter_mut().flat_map(|s| s.transitions.iter_mut()) {
                if t.action == NULL_ACTION {
                    t.action_id = null_id;
                }
            }
        }
    }

    let too_many = |n: usize| n >= usize::from(u16::MAX);
    // orders.xml alone (`order_types`): nothing else to check
    let types_only = wf.is_none() && ac.is_none() && ck.is_none() && !has_policies;
    if types_only && od.is_some() && diags.len() == errors_before {
        return Some(Model {
            workflows,
            actions,
            checks,
            check_bindings: bindings,
            conditions,
            order_types,
            attributes: Vec::new(),
            policies: None,
            queues: Vec::new(),
            notifications: None,
            texts: Vec::new(),
        });
    }
    if diags.len() > errors_before || wf.is_none() || ac.is_none() || ck.is_none() || od.is_none() {
        return None;
    }
    if workflows.is_empty()
        || workflows.iter().any(|w| too_many(w.states.len()))
        || too_many(actions.len())
        || too_many(checks.len())
    {
        return None;
    }
    Some(Model {
        workflows,
        actions,
        checks,
        check_bindings: bindings,
        conditions,
        order_types,
        attributes: Vec::new(),
        policies: None,
        queues: Vec::new(),
        notifications: None,
        texts: Vec::new(),
    })
}

/// `orders.xml` alone, validated as [`build`] validates it, except for the
/// workflows its order types name (`build` checks those with workflow.xml):
/// a model with only the order types, for the types crate of a split
/// workspace.
pub(crate) fn order_types(od: &(Source, XOrders), diags: &mut Vec<Diagnostic>) -> Option<Model> {
    build(None, None, None, Some(od), false, diags)
}

/// A `<global>` or `<field>` of checks.xml: (element index, field, order
/// types attribute, checks).
type CheckList<'x> = (
    usize,
    Option<&'x XFieldChecks>,
    &'x Option<String>,
    &'x Vec<XCheck>,
);

/// Validates one `<workflow>` (element `wi`).
#[allow(clippy::too_many_arguments)]
fn workflow(
    src: &Source,
    wi: usize,
    x: &XWorkflow,
    actions: &[Action],
    have_actions: bool,
    known_conds: &[&str],
    null_used: &mut bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Workflow> {
    let wf_elem = &src.idx.elems[wi];
    let state_elems = src.idx.children(wi, "state");
    let before = diags.len();
    // whole-graph findings, reported only when nothing else is wrong (a
    // dropped action would make them follow-up errors)
    let mut graph_diags: Vec<Diagnostic> = Vec::new();
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
        if s.name == NOCHANGE_NAME {
            diags.push(src.diag(
                pos,
                "`NOCHANGE` is reserved: it means \"stay in the current state\"",
                None,
            ));
            kept.push(None);
            continue;
        }
        if !check_name(src, "state", &s.name, pos, false, diags)
            || !names.add(&s.name, pos, diags, Some(&variant))
        {
            kept.push(None);
            continue;
        }
        let autorun = yes_no(src, e, "autorun", diags);
        let may_stop = yes_no(src, e, "may_stop", diags);
        let is_final = yes_no(src, e, "final", diags);
        if may_stop && !autorun {
            diags.push(src.diag(
                e.attr_pos("may_stop"),
                format!(
                    "`may_stop` only applies to autorun states; `{}` is not one",
                    s.name
                ),
                Some("add autorun=\"yes\" or remove may_stop".into()),
            ));
        }
        if is_final && !s.actions.is_empty() {
            diags.push(src.diag(
                e.attr_pos("final"),
                format!("final state `{}` has actions", s.name),
                Some("a final state closes the order; remove its actions or `final`".into()),
            ));
        }
        if is_final && autorun {
            diags.push(src.diag(
                e.attr_pos("autorun"),
                format!("final state `{}` cannot be autorun", s.name),
                None,
            ));
        }
        if !is_final && s.actions.is_empty() && s.name != "INITIAL" {
            diags.push(src.diag(
                pos,
                format!("state `{}` has no way out", s.name),
                Some("add an action, or mark it final=\"yes\"".into()),
            ));
        }
        kept.push(Some(states.len()));
        states.push(State {
            name: s.name.clone(),
            variant,
            description: norm(&s.description),
            autorun,
            may_stop,
            is_final,
            transitions: Vec::new(),
        });
    }
    let initial = states.iter().position(|s| s.name == "INITIAL");
    if initial.is_none() {
        diags.push(
            src.diag(
                wf_elem.pos,
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
    let resolve = |name: &str,
                   pos: usize,
                   here: usize,
                   autorun: bool,
                   diags: &mut Vec<Diagnostic>|
     -> Option<u16> {
        if name == NOCHANGE_NAME {
            if autorun || here == initial.unwrap_or(usize::MAX) {
                diags.push(src.diag(
                    pos,
                    "`NOCHANGE` in a state the engine runs by itself would run the action again at once",
                    Some("use NOCHANGE only in states that wait for a person".into()),
                ));
                return None;
            }
            return Some(NOCHANGE);
        }
        match states.iter().position(|st| st.name == name) {
            Some(i) => Some(i as u16),
            None => {
                if !state_names.contains(&name) {
                    diags.push(src.diag(
                        pos,
                        format!("unknown state `{name}`"),
                        suggest(name, state_names.iter().copied()),
                    ));
                }
                None
            }
        }
    };
    let mut transitions_of: Vec<Vec<Transition>> = vec![Vec::new(); states.len()];
    for (i, s) in x.states.iter().enumerate() {
        let (Some(&si), Some(me)) = (state_elems.get(i), kept[i]) else {
            continue;
        };
        let autorun = states[me].autorun;
        let action_elems = src.idx.children(si, "action");
        // conditions seen so far in an autorun state (for coverage)
        let mut seen_conds: Vec<CondExpr> = Vec::new();
        let mut covered_at: Option<usize> = None;
        let mut covered_unconditionally = false;
        for (j, t) in s.actions.iter().enumerate() {
            let Some(&ai) = action_elems.get(j) else {
                continue;
            };
            let e = &src.idx.elems[ai];
            let mut ok = true;
            let action_id = if t.name == NULL_ACTION {
                *null_used = true;
                0
            } else if let Some(p) = actions.iter().position(|a| a.name == t.name) {
                p as u16
            } else {
                if have_actions {
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
            // resulting state: the attribute, or a map of <resulting_state>
            let result_elems = src.idx.children(ai, "resulting_state");
            let mut results: Vec<ResultMap> = Vec::new();
            let mut fallback: Option<(String, u16)> = None;
            match (&t.resulting_state, t.results.is_empty()) {
                (Some(rs), true) => {
                    match resolve(rs, e.attr_pos("resulting_state"), me, autorun, diags) {
                        Some(id) => fallback = Some((rs.clone(), id)),
                        None => ok = false,
                    }
                }
                (Some(_), false) => {
                    diags.push(src.diag(
                        e.attr_pos("resulting_state"),
                        format!("action `{}` has both a `resulting_state` attribute and a resulting-state map", t.name),
                        Some("use one of them".into()),
                    ));
                    ok = false;
                }
                (None, true) => {
                    diags.push(src.diag(
                        e.attr_pos("name"),
                        format!("action `{}` has no resulting state", t.name),
                        Some("add resulting_state=\"STATE\" or `<resulting_state return=\"…\" state=\"…\"/>` elements".into()),
                    ));
                    ok = false;
                }
                (None, false) => {
                    let declared = actions
                        .iter()
                        .find(|a| a.name == t.name)
                        .map(|a| a.returns.clone())
                        .unwrap_or_default();
                    let mut seen: HashMap<&str, usize> = HashMap::new();
                    for (k, r) in t.results.iter().enumerate() {
                        let Some(&ri) = result_elems.get(k) else {
                            continue;
                        };
                        let re = &src.idx.elems[ri];
                        let rpos = re.attr_pos("return");
                        if let Some(&first) = seen.get(r.ret.as_str()) {
                            diags.push(src.diag(
                                rpos,
                                format!("return value `{}` is mapped twice", r.ret),
                                Some(format!("first mapped on line {}", src.line_of(first))),
                            ));
                            ok = false;
                            continue;
                        }
                        seen.insert(&r.ret, rpos);
                        if r.ret != "*" && !declared.is_empty() && !declared.contains(&r.ret) {
                            diags.push(src.diag(
                                rpos,
                                format!("action `{}` does not return `{}`", t.name, r.ret),
                                suggest(&r.ret, declared.iter().map(String::as_str)).or(Some(
                                    format!(
                                        "actions.xml declares returns=\"{}\"",
                                        declared.join(" ")
                                    ),
                                )),
                            ));
                            ok = false;
                        }
                        let Some(id) = resolve(&r.state, re.attr_pos("state"), me, autorun, diags)
                        else {
                            ok = false;
                            continue;
                        };
                        if r.ret == "*" {
                            fallback = Some((r.state.clone(), id));
                        } else {
                            results.push(ResultMap {
                                ret: r.ret.clone(),
                                state: r.state.clone(),
                                state_id: id,
                            });
                        }
                    }
                    if !seen.contains_key("*") {
                        diags.push(src.diag(
                            e.attr_pos("name"),
                            format!("the resulting-state map of action `{}` has no fallback", t.name),
                            Some("add `<resulting_state return=\"*\" state=\"…\"/>` for any other return value".into()),
                        ));
                        ok = false;
                    }
                }
            }
            let cond_elems = src.idx.children(ai, "condition");
            let mut exprs: Vec<(String, CondExpr)> = Vec::new();
            for (k, c) in t.conditions.iter().enumerate() {
                let Some(&ci) = cond_elems.get(k) else {
                    continue;
                };
                let ce = &src.idx.elems[ci];
                match cond::parse(&c.test, known_conds) {
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
            // autorun: an action after one that always applies never runs
            if autorun && ok {
                if let Some(first) = covered_at {
                    let message = if condition.is_none() && covered_unconditionally {
                        format!(
                            "state `{}` has two unconditional actions; the engine always takes the first",
                            s.name
                        )
                    } else {
                        format!(
                            "action `{}` in autorun state `{}` is never taken: the actions before it always apply",
                            t.name, s.name
                        )
                    };
                    diags.push(src.diag(
                        e.attr_pos("name"),
                        message,
                        Some(format!("see line {}", src.line_of(first))),
                    ));
                    ok = false;
                } else {
                    seen_conds.push(
                        condition
                            .as_ref()
                            .map_or(CondExpr::Ident("true".into()), |c| c.expr.clone()),
                    );
                    let all: Vec<&CondExpr> = seen_conds.iter().collect();
                    let always = condition.is_none() || cond::covers_all(&all) == Some(true);
                    if always {
                        covered_at = Some(e.attr_pos("name"));
                        covered_unconditionally = condition.is_none();
                    }
                }
            }
            let Some((rs_name, rs_id)) = fallback.filter(|_| ok) else {
                continue;
            };
            transitions_of[me].push(Transition {
                action: t.name.clone(),
                action_id,
                description: norm(&t.description),
                condition,
                resulting_state: rs_name,
                resulting_state_id: rs_id,
                results,
            });
        }
        let e = &src.idx.elems[si];
        if autorun && covered_at.is_none() && !states[me].may_stop && !s.actions.is_empty() {
            graph_diags.push(src.diag(
                e.attr_pos("name"),
                format!("autorun state `{}` has no way out that always applies", s.name),
                Some("add an action without condition, make the conditions cover every case, or allow the state to wait with may_stop=\"yes\"".into()),
            ));
        }
        // INITIAL: exactly one action, unconditional
        if s.name == "INITIAL" {
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
    let initial = initial?;
    // reachability from INITIAL
    let mut reached = vec![false; states.len()];
    let mut todo = vec![initial];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        for t in &states[i].transitions {
            for id in
                std::iter::once(t.resulting_state_id).chain(t.results.iter().map(|r| r.state_id))
            {
                if id != NOCHANGE && !reached[usize::from(id)] {
                    todo.push(usize::from(id));
                }
            }
        }
    }
    let mut any_final = false;
    for (i, s) in states.iter().enumerate() {
        any_final |= s.is_final;
        if !reached[i]
            && let Some(&si) = kept
                .iter()
                .position(|k| *k == Some(i))
                .and_then(|p| state_elems.get(p))
        {
            graph_diags.push(src.diag(
                src.idx.elems[si].attr_pos("name"),
                format!("state `{}` is unreachable from `INITIAL`", s.name),
                Some("no action leads to it".into()),
            ));
        }
    }
    // every reachable state must lead to a final state: walk backwards from
    // the final states; what is not met can only go round in circles
    if any_final {
        let mut closes = vec![false; states.len()];
        let mut changed = true;
        while changed {
            changed = false;
            for (i, s) in states.iter().enumerate() {
                if closes[i] {
                    continue;
                }
                let leads = s.is_final
                    || s.transitions.iter().any(|t| {
                        std::iter::once(t.resulting_state_id)
                            .chain(t.results.iter().map(|r| r.state_id))
                            .any(|id| id != NOCHANGE && closes[usize::from(id)])
                    });
                if leads {
                    closes[i] = true;
                    changed = true;
                }
            }
        }
        for (i, s) in states.iter().enumerate() {
            if closes[i] || !reached[i] {
                continue;
            }
            let Some(&si) = kept
                .iter()
                .position(|k| *k == Some(i))
                .and_then(|p| state_elems.get(p))
            else {
                continue;
            };
            let mut next: Vec<&str> = Vec::new();
            for t in &s.transitions {
                for id in std::iter::once(t.resulting_state_id)
                    .chain(t.results.iter().map(|r| r.state_id))
                {
                    let n = if id == NOCHANGE {
                        s.name.as_str()
                    } else {
                        states[usize::from(id)].name.as_str()
                    };
                    if !next.contains(&n) {
                        next.push(n);
                    }
                }
            }
            let finals: Vec<String> = states
                .iter()
                .filter(|s| s.is_final)
                .map(|s| format!("`{}`", s.name))
                .collect();
            let leads: Vec<String> = next.iter().map(|n| format!("`{n}`")).collect();
            graph_diags.push(src.diag(
                src.idx.elems[si].attr_pos("name"),
                format!(
                    "no path from state `{}` to a final state: orders there never close",
                    s.name
                ),
                Some(format!(
                    "its actions lead only to {}; add an action towards {}",
                    leads.join(", "),
                    finals.join(" or ")
                )),
            ));
        }
    }
    if !any_final && !states.is_empty() {
        graph_diags.push(src.diag(
            wf_elem.pos,
            format!("workflow `{}` has no final state", x.ty.trim()),
            Some("mark the states where orders end with final=\"yes\"".into()),
        ));
    }
    if diags.len() == before && have_actions {
        diags.extend(graph_diags);
    }
    Some(Workflow {
        name: x.ty.trim().to_owned(),
        description: norm(&x.description),
        initial: initial as u16,
        states,
    })
}

const NOCHANGE_NAME: &str = "NOCHANGE";

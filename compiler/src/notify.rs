//! `notifications.xml`: which state changes mail whom, with which template.
//!
//! A rule (`<notify>`) matches a state an order enters (`state`, or
//! `INSERTED` for the submission), optionally only by one action (`action`)
//! or trigger (`by`: requester, staff, engine), in one workflow or any
//! (`workflow="*"`), for some order types (`order_types`). Its recipients
//! (`<to kind="…">`) are resolved by the engine and the domain. A template
//! (`<template>`) has a subject and a plain-text body per language; their
//! placeholders (`{order.id}`, `{fields.hwa}`, …) are checked here against
//! the order types the template can meet, so a misspelt one is a build
//! error, not an empty spot in a mail.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::model::Model;
use crate::xml::Elem;
use crate::{Diagnostic, Source, suggest};

/// The state name a rule uses for the submission (the history's first entry).
pub const INSERTED: &str = "INSERTED";

/// Recipient kinds of `<to kind="…">`.
pub const RECIPIENT_KINDS: [&str; 6] = [
    "requester",
    "admin",
    "deputies",
    "notify",
    "staff",
    "obligation",
];

/// Who triggered a step: `by="…"`.
pub const TRIGGERS: [&str; 3] = ["requester", "staff", "engine"];

/// Placeholders every template may use (besides `{fields.NAME}`).
pub const PLACEHOLDERS: [&str; 14] = [
    "order.id",
    "order.type",
    "order.state",
    "order.previous_state",
    "order.action",
    "order.requester",
    "order.key",
    "order.comment",
    "fields",
    "changed",
    "errors",
    "warnings",
    "link",
    "recipient",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notifications {
    /// Language of recipients whose language nobody says.
    pub default_language: String,
    pub rules: Vec<NotifyRule>,
    pub templates: Vec<Template>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifyRule {
    /// `None`: any workflow.
    pub workflow: Option<String>,
    #[serde(skip)]
    pub workflow_id: Option<u16>,
    /// The state entered (`INSERTED`: the submission).
    pub state: Option<String>,
    pub action: Option<String>,
    pub by: Option<String>,
    /// Empty: every order type of the workflow.
    pub order_types: Vec<String>,
    pub template: String,
    #[serde(skip)]
    pub template_id: u16,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Recipient {
    Requester,
    Admin,
    Deputies,
    /// The addresses in an order field.
    Notify {
        field: String,
    },
    /// The configured staff mailbox.
    Staff,
    /// The persons a PDP obligation of this name names.
    Obligation {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub name: String,
    pub texts: Vec<TemplateText>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateText {
    pub language: String,
    pub subject: String,
    pub body: String,
}

/// The placeholders of a template text: (byte offset in `text`, name).
/// `{{` and `}}` are literal braces. An error names the offset and why.
pub fn placeholders(text: &str) -> Result<Vec<(usize, &str)>, (usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if bytes.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                let Some(len) = text[i + 1..].find('}') else {
                    return Err((i, "`{` without `}`; write `{{` for a literal brace".into()));
                };
                let name = &text[i + 1..i + 1 + len];
                if name.is_empty() || name.contains('{') || name.contains(char::is_whitespace) {
                    return Err((
                        i,
                        format!(
                            "`{{{name}}}` is not a placeholder; write `{{{{` for a literal brace"
                        ),
                    ));
                }
                out.push((i, name));
                i += len + 2;
            }
            b'}' => return Err((i, "`}` without `{`; write `}}` for a literal brace".into())),
            _ => i += 1,
        }
    }
    Ok(out)
}

/// A body as written in the XML: each line without its indentation.
fn dedent(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

fn is_language(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

pub(crate) fn build(
    src: &Source,
    model: &Model,
    obligations: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<Notifications> {
    let idx = &src.idx;
    let root = &idx.elems[0];
    let default_language = root.attr("default_language").map_or("de", |a| &a.value);
    if !is_language(default_language) {
        diags.push(src.diag(
            root.attr_pos("default_language"),
            format!("`{default_language}` is not a language code"),
            Some("use a code such as `de` or `en`".into()),
        ));
    }
    let before = diags.len();

    // templates first: rules name them
    let mut templates = Vec::new();
    let mut template_elems: Vec<&Elem> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for ti in idx.children(0, "template") {
        let e = &idx.elems[ti];
        let name = e.attr("name").map_or("", |a| a.value.as_str());
        if let Some(&first) = seen.get(name) {
            diags.push(src.diag(
                e.attr_pos("name"),
                format!("duplicate template `{name}`"),
                Some(format!("first defined on line {}", src.line_of(first))),
            ));
            continue;
        }
        seen.insert(name, e.attr_pos("name"));
        let mut texts: Vec<TemplateText> = Vec::new();
        let mut langs: HashMap<(String, &str), usize> = HashMap::new();
        for &ci in &e.children {
            let c = &idx.elems[ci];
            let lang = c
                .attr("lang")
                .map_or(default_language, |a| a.value.as_str())
                .to_owned();
            if !is_language(&lang) {
                diags.push(src.diag(
                    c.attr_pos("lang"),
                    format!("`{lang}` is not a language code"),
                    Some("use a code such as `de` or `en`".into()),
                ));
                continue;
            }
            if let Some(&first) = langs.get(&(lang.clone(), c.tag.as_str())) {
                diags.push(src.diag(
                    c.pos,
                    format!("template `{name}` has a second `<{}>` for `{lang}`", c.tag),
                    Some(format!("the first is on line {}", src.line_of(first))),
                ));
                continue;
            }
            langs.insert((lang.clone(), c.tag.as_str()), c.pos);
            let slot = match texts.iter().position(|t| t.language == lang) {
                Some(i) => i,
                None => {
                    texts.push(TemplateText {
                        language: lang.clone(),
                        subject: String::new(),
                        body: String::new(),
                    });
                    texts.len() - 1
                }
            };
            if c.tag == "subject" {
                texts[slot].subject = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
            } else {
                texts[slot].body = dedent(&c.text);
            }
        }
        for t in &texts {
            for (part, present) in [
                ("subject", !t.subject.is_empty()),
                ("body", !t.body.is_empty()),
            ] {
                if !present {
                    diags.push(src.diag(
                        e.pos,
                        format!("template `{name}` has no `<{part}>` for `{}`", t.language),
                        Some(format!("add `<{part} lang=\"{}\">…</{part}>`", t.language)),
                    ));
                }
            }
        }
        if !texts.iter().any(|t| t.language == default_language) {
            diags.push(src.diag(
                e.attr_pos("name"),
                format!("template `{name}` has no text in the default language `{default_language}`"),
                Some(format!(
                    "add `<subject lang=\"{default_language}\">` and `<body lang=\"{default_language}\">`, or change `default_language`"
                )),
            ));
        }
        templates.push(Template {
            name: name.to_owned(),
            texts,
        });
        template_elems.push(e);
    }

    // rules
    let workflow_names: Vec<&str> = model.workflows.iter().map(|w| w.name.as_str()).collect();
    let action_names: Vec<&str> = model.actions.iter().map(|a| a.name.as_str()).collect();
    let mut rules = Vec::new();
    // order types each template can meet
    let mut meets: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); templates.len()];
    for ri in idx.children(0, "notify") {
        let e = &idx.elems[ri];
        let attr = |n: &str| e.attr(n).map(|a| a.value.as_str());
        let n_before = diags.len();
        let workflow = attr("workflow").filter(|w| *w != "*");
        let workflow_id = match workflow {
            Some(w) => match workflow_names.iter().position(|n| *n == w) {
                Some(i) => Some(i as u16),
                None => {
                    diags.push(src.diag(
                        e.attr_pos("workflow"),
                        format!("unknown workflow `{w}`"),
                        suggest(w, workflow_names.iter().copied()).or_else(|| {
                            Some(format!("workflows: `*`, {}", quoted(&workflow_names)))
                        }),
                    ));
                    None
                }
            },
            None => None,
        };
        let workflows: Vec<usize> = match workflow_id {
            Some(i) => vec![usize::from(i)],
            None => (0..model.workflows.len()).collect(),
        };
        let state = attr("state");
        if let Some(s) = state {
            let known: Vec<&str> = std::iter::once(INSERTED)
                .chain(
                    workflows
                        .iter()
                        .flat_map(|&w| model.workflows[w].states.iter().map(|s| s.name.as_str())),
                )
                .collect();
            if !known.contains(&s) {
                diags.push(
                    src.diag(
                        e.attr_pos("state"),
                        match workflow {
                            Some(w) => format!("unknown state `{s}` of workflow `{w}`"),
                            None => format!("unknown state `{s}`: no workflow has it"),
                        },
                        suggest(s, known.iter().copied())
                            .or_else(|| Some(format!("states: {}", quoted(&known)))),
                    ),
                );
            }
        }
        let action = attr("action");
        if let Some(a) = action
            && !action_names.contains(&a)
        {
            diags.push(
                src.diag(
                    e.attr_pos("action"),
                    format!("unknown action `{a}`"),
                    suggest(a, action_names.iter().copied())
                        .or_else(|| Some(format!("actions: {}", quoted(&action_names)))),
                ),
            );
        }
        if state.is_none() && action.is_none() {
            diags.push(src.diag(
                e.pos,
                "`<notify>` needs `state` (the state entered) or `action` (the transition)",
                Some("e.g. `<notify state=\"WAITING\" template=\"…\">`".into()),
            ));
        }
        let by = attr("by");
        if let Some(b) = by
            && !TRIGGERS.contains(&b)
        {
            diags.push(
                src.diag(
                    e.attr_pos("by"),
                    format!("unknown trigger `{b}`"),
                    suggest(b, TRIGGERS)
                        .or_else(|| Some(format!("`by` is one of {}", quoted(&TRIGGERS)))),
                ),
            );
        }
        let mut order_types = Vec::new();
        let in_workflows: Vec<usize> = model
            .order_types
            .iter()
            .enumerate()
            .filter(|(_, o)| workflows.contains(&usize::from(o.workflow_id)))
            .map(|(i, _)| i)
            .collect();
        let mut met: BTreeSet<usize> = BTreeSet::new();
        if let Some(a) = e.attr("order_types") {
            let names: Vec<&str> = in_workflows
                .iter()
                .map(|&i| model.order_types[i].name.as_str())
                .collect();
            let mut at = a.pos;
            for t in a.value.split_whitespace() {
                let offset = a.value[at - a.pos..].find(t).map_or(a.pos, |o| at + o);
                at = offset + t.len();
                match in_workflows
                    .iter()
                    .find(|&&i| model.order_types[i].name == t)
                {
                    Some(&i) => {
                        met.insert(i);
                        order_types.push(t.to_owned());
                    }
                    None => diags.push(
                        src.diag(
                            if a.verbatim { offset } else { a.pos },
                            format!(
                                "unknown order type `{t}`{}",
                                match workflow {
                                    Some(w) => format!(" of workflow `{w}`"),
                                    None => String::new(),
                                }
                            ),
                            suggest(t, names.iter().copied())
                                .or_else(|| Some(format!("order types: {}", quoted(&names)))),
                        ),
                    ),
                }
            }
        } else {
            met.extend(in_workflows.iter().copied());
        }
        let template = attr("template").unwrap_or("");
        let template_id = templates.iter().position(|t| t.name == template);
        match template_id {
            Some(t) => meets[t].extend(met.iter().copied()),
            None => diags.push(src.diag(
                e.attr_pos("template"),
                format!("unknown template `{template}`"),
                suggest(template, templates.iter().map(|t| t.name.as_str())).or_else(|| {
                    Some(format!(
                        "templates: {}",
                        quoted(
                            &templates
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                        )
                    ))
                }),
            )),
        }
        let mut recipients = Vec::new();
        for ti in idx.children(ri, "to") {
            let t = &idx.elems[ti];
            let kind = t.attr("kind").map_or("", |a| a.value.as_str());
            let need = |n: &str, diags: &mut Vec<Diagnostic>| -> Option<String> {
                let v = t.attr(n).map(|a| a.value.clone());
                if v.is_none() {
                    diags.push(src.diag(
                        t.pos,
                        format!("`<to kind=\"{kind}\">` needs `{n}`"),
                        None,
                    ));
                }
                v
            };
            let r = match kind {
                "requester" => Some(Recipient::Requester),
                "admin" => Some(Recipient::Admin),
                "deputies" => Some(Recipient::Deputies),
                "staff" => Some(Recipient::Staff),
                "notify" => need("field", diags).and_then(|field| {
                    let has = |i: &usize| {
                        model.order_types[*i]
                            .fields
                            .iter()
                            .any(|f| f.name == field && f.ty == crate::model::FieldType::String)
                    };
                    if met.iter().any(has) {
                        Some(Recipient::Notify { field })
                    } else {
                        let fields: BTreeSet<&str> = met
                            .iter()
                            .flat_map(|&i| model.order_types[i].fields.iter())
                            .filter(|f| f.ty == crate::model::FieldType::String)
                            .map(|f| f.name.as_str())
                            .collect();
                        diags.push(src.diag(
                            t.attr_pos("field"),
                            format!("no order type this rule meets has a text field `{field}`"),
                            suggest(&field, fields.iter().copied()),
                        ));
                        None
                    }
                }),
                "obligation" => need("name", diags).and_then(|name| {
                    if obligations.contains(&name) {
                        Some(Recipient::Obligation { name })
                    } else {
                        diags.push(src.diag(
                            t.attr_pos("name"),
                            format!("no policy has an obligation `{name}`"),
                            suggest(&name, obligations.iter().map(String::as_str)).or_else(|| {
                                Some(if obligations.is_empty() {
                                    "policies.xml has no obligations".into()
                                } else {
                                    format!(
                                        "obligations: {}",
                                        quoted(
                                            &obligations
                                                .iter()
                                                .map(String::as_str)
                                                .collect::<Vec<_>>()
                                        )
                                    )
                                })
                            }),
                        ));
                        None
                    }
                }),
                _ => {
                    diags.push(src.diag(
                        t.attr_pos("kind"),
                        format!("unknown recipient kind `{kind}`"),
                        suggest(kind, RECIPIENT_KINDS).or_else(|| {
                            Some(format!("recipient kinds: {}", quoted(&RECIPIENT_KINDS)))
                        }),
                    ));
                    None
                }
            };
            recipients.extend(r);
        }
        if recipients.is_empty() && diags.len() == n_before {
            diags.push(src.diag(
                e.pos,
                "`<notify>` names no recipient",
                Some("add `<to kind=\"requester\"/>`".into()),
            ));
        }
        if diags.len() == n_before {
            rules.push(NotifyRule {
                workflow: workflow.map(str::to_owned),
                workflow_id,
                state: state.map(str::to_owned),
                action: action.map(str::to_owned),
                by: by.map(str::to_owned),
                order_types,
                template: template.to_owned(),
                template_id: template_id.unwrap_or_default() as u16,
                recipients,
            });
        }
    }

    // placeholders, against the order types each template can meet (all, when no rule names it)
    for (ti, (t, e)) in templates.iter().zip(&template_elems).enumerate() {
        let met: Vec<usize> = if meets[ti].is_empty() {
            (0..model.order_types.len()).collect()
        } else {
            meets[ti].iter().copied().collect()
        };
        let fields: BTreeSet<&str> = met
            .iter()
            .flat_map(|&i| model.order_types[i].fields.iter().map(|f| f.name.as_str()))
            .collect();
        let types: Vec<&str> = met
            .iter()
            .map(|&i| model.order_types[i].name.as_str())
            .collect();
        for &ci in &e.children {
            let c = &idx.elems[ci];
            let lang = c
                .attr("lang")
                .map_or(default_language, |a| a.value.as_str());
            let Some(text) = t.texts.iter().find(|x| x.language == lang) else {
                continue;
            };
            let text = if c.tag == "subject" {
                &text.subject
            } else {
                &text.body
            };
            // where in the file: the placeholder's first occurrence in the element's text
            let start = c.text_pos();
            let end = src.text[start..]
                .find('<')
                .map_or(src.text.len(), |o| start + o);
            let raw = &src.text[start..end];
            let locate = |needle: &str| raw.find(needle).map_or(start, |o| start + o);
            match placeholders(text) {
                Err((_, message)) => {
                    let at = raw.find(['{', '}']).map_or(start, |o| start + o);
                    diags.push(src.diag(at, format!("template `{}`: {message}", t.name), None));
                }
                Ok(list) => {
                    for (_, name) in list {
                        if PLACEHOLDERS.contains(&name) {
                            continue;
                        }
                        if let Some(field) = name.strip_prefix("fields.") {
                            if fields.contains(field) {
                                continue;
                            }
                            diags.push(src.diag(
                                locate(&format!("{{{name}}}")),
                                format!(
                                    "placeholder `{{{name}}}`: no order type template `{}` can meet ({}) has a field `{field}`",
                                    t.name,
                                    types.join(", ")
                                ),
                                suggest_placeholder(
                                    name,
                                    fields.iter().map(|f| format!("fields.{f}")),
                                )
                                .or_else(|| Some(format!("fields: {}", quoted(&fields.iter().copied().collect::<Vec<_>>())))),
                            ));
                        } else {
                            let all: Vec<String> = PLACEHOLDERS
                                .iter()
                                .map(|p| (*p).to_owned())
                                .chain(fields.iter().map(|f| format!("fields.{f}")))
                                .collect();
                            diags.push(src.diag(
                                locate(&format!("{{{name}}}")),
                                format!(
                                    "unknown placeholder `{{{name}}}` in template `{}`",
                                    t.name
                                ),
                                suggest_placeholder(name, all.into_iter()).or_else(|| {
                                    Some(format!("placeholders: {}", quoted(&PLACEHOLDERS)))
                                }),
                            ));
                        }
                    }
                }
            }
        }
    }
    (diags.len() == before).then(|| Notifications {
        default_language: default_language.to_owned(),
        rules,
        templates,
    })
}

/// "did you mean `{x}`?" for the placeholder closest to `name`.
fn suggest_placeholder(name: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    let candidates: Vec<String> = candidates.collect();
    suggest(name, candidates.iter().map(String::as_str))
        .map(|s| s.replacen("`", "`{", 1).replacen("`?", "}`?", 1))
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of every obligation the policies attach.
pub(crate) fn obligation_names(root: &crate::policy::PolicyRoot) -> Vec<String> {
    use crate::policy::PolicyNode;
    fn walk(nodes: &[PolicyNode], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                PolicyNode::PolicySet {
                    items, obligations, ..
                } => {
                    out.extend(obligations.iter().map(|o| o.name.clone()));
                    walk(items, out);
                }
                PolicyNode::Policy {
                    rules, obligations, ..
                } => {
                    out.extend(obligations.iter().map(|o| o.name.clone()));
                    for r in rules {
                        out.extend(r.obligations.iter().map(|o| o.name.clone()));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.items, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_and_literal_braces() {
        assert_eq!(
            placeholders("Order {order.id}: {{x}} {fields.hwa}").unwrap(),
            [(6, "order.id"), (24, "fields.hwa")]
        );
        assert!(placeholders("a { b").is_err());
        assert!(placeholders("a } b").is_err());
        assert!(placeholders("{}").is_err());
    }
}

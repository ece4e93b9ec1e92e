//! `auftrag-compiler`: reads a definitions folder (`workflow.xml`,
//! `actions.xml`, `checks.xml`, `orders.xml`), validates it with precise,
//! rustc-style diagnostics, and emits Rust source that builds the static
//! tables of `auftrag_engine::defs`.
//!
//! ```no_run
//! let compiled = auftrag_compiler::compile_dir(std::path::Path::new("definitions"))
//!     .unwrap_or_else(|diags| {
//!         for d in &diags {
//!             eprintln!("{d}");
//!         }
//!         std::process::exit(1)
//!     });
//! for input in &compiled.inputs {
//!     println!("cargo:rerun-if-changed={}", input.display());
//! }
//! std::fs::write("defs.rs", &compiled.rust).unwrap();
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub mod build_script;
mod cond;
mod emit;
mod emit_policy;
pub mod model;
pub mod notify;
mod parse;
pub mod policy;
mod queues;
mod texts;
mod validate;
mod xml;

pub use model::Model;

/// The four required files of a definitions folder, in the order they are read.
pub const FILES: [&str; 4] = ["workflow.xml", "actions.xml", "checks.xml", "orders.xml"];
/// Optional files: validated when present.
pub const OPTIONAL_FILES: [&str; 4] = [
    "queues.xml",
    "attributes.xml",
    "policies.xml",
    "notifications.xml",
];

/// A compiled definitions folder.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The generated Rust source, formatted with prettyplease.
    pub rust: String,
    /// The files read, for `cargo:rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
    /// The validated, resolved model.
    pub model: Model,
}

/// An error in the definitions, at a position in one of its files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// The generated items for `model` as tokens (what `compile_dir` formats):
/// for the `definitions!(…, emit)` macro.
pub fn emit_tokens(model: &Model) -> proc_macro2::TokenStream {
    emit::tokens(model)
}

/// Engine-free assertions that the handlers named in `model` exist and are
/// marked `#[check]` / `#[action]` / `#[condition]`; a failure names the XML
/// position.
pub fn handler_assertions(model: &Model) -> proc_macro2::TokenStream {
    emit::handler_assertions(model)
}

/// The typed handles of the job queues: a module `queues` with one
/// `auftrag_engine::jobs::Queue` constant per queue of `queues.xml`
/// (`queues::LABELS`), part of [`emit_tokens`]; `definitions!(…, handlers)`
/// emits them too when there are queues, so handlers that create jobs
/// compile there.
pub fn queue_handles(model: &Model) -> proc_macro2::TokenStream {
    emit::queue_handles(model)
}

/// Compiles the definitions in `dir`; diagnostics name files as `dir.join(file)`.
pub fn compile_dir(dir: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    compile_dir_as(dir, dir)
}

/// Compiles the definitions in `dir`; diagnostics name files as
/// `display_dir.join(file)` (e.g. the path as the user wrote it).
pub fn compile_dir_as(dir: &Path, display_dir: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(display_dir, &read_from(dir), &emit::emit)
}

/// The types half of a definitions folder, for a workspace that keeps them
/// in a crate of their own (see [`compile_tables_dir_as`]).
#[derive(Debug, Clone)]
pub struct CompiledTypes {
    /// The generated Rust source, formatted: the typed field structs of
    /// `orders.xml` (with their enum and record types) and the module
    /// `queues` of typed queue handles (empty without `queues.xml`).
    pub rust: String,
    /// The files read (`orders.xml`, and `queues.xml` when there is one),
    /// for `cargo:rerun-if-changed`. Watch the folder too while there is no
    /// `queues.xml`, so that a new one is seen.
    pub inputs: Vec<PathBuf>,
}

/// Compiles only `orders.xml` and `queues.xml` of `dir` into the types
/// handlers name (what [`compile_dir_as`] emits of them), so that the
/// crate holding them — and the handlers' crate above it — is rebuilt only
/// when one of these two files changes. The order types are validated as
/// in [`compile_dir_as`], except for the workflow each names: the tables
/// (`compile_tables_dir_as`, which reads every file) check that.
/// Diagnostics name files as `display_dir.join(file)`.
pub fn compile_types_dir_as(
    dir: &Path,
    display_dir: &Path,
) -> Result<CompiledTypes, Vec<Diagnostic>> {
    let read = read_from(dir);
    let mut diags = Vec::new();
    let mut inputs = Vec::new();
    let mut load_file =
        |name: &'static str| load_source(&read, name, display_dir, &mut inputs, &mut diags);
    let od_src = load_file("orders.xml");
    let qu_src = load_file("queues.xml");
    let od = od_src.and_then(|s| s.parse::<parse::XOrders>(&xml::ORDERS, &mut diags));
    let qu = qu_src.and_then(|s| s.parse::<parse::XQueues>(&xml::QUEUES, &mut diags));
    let queues = qu
        .as_ref()
        .map(|q| queues::build(q, &mut diags))
        .unwrap_or_default();
    let model = od
        .as_ref()
        .and_then(|od| validate::order_types(od, &mut diags));
    match model {
        Some(mut model) if diags.is_empty() => {
            model.queues = queues;
            Ok(CompiledTypes {
                rust: emit::emit_types(&model),
                inputs,
            })
        }
        _ => Err(sorted(diags)),
    }
}

/// Compiles the definitions in `dir` like [`compile_dir_as`], but emits
/// everything except the types of [`compile_types_dir_as`]: the enums of
/// states, actions, checks and order types, the conditions, the handler
/// wrappers and assertions, and the tables (`DEFINITIONS`, the policies).
/// The source begins with `pub use TYPES::*;`, `types` being the Rust path
/// of the module holding the types (e.g. `::my_domain_types`), so that the
/// module including it offers both halves as `compile_dir_as`'s output
/// does. Every file is read and validated.
///
/// # Panics
///
/// When `types` is not a Rust path.
pub fn compile_tables_dir_as(
    dir: &Path,
    display_dir: &Path,
    types: &str,
) -> Result<Compiled, Vec<Diagnostic>> {
    let types: syn::Path = syn::parse_str(types)
        .unwrap_or_else(|e| panic!("types path `{types}` is not a Rust path: {e}"));
    compile_with(display_dir, &read_from(dir), &|model| {
        emit::emit_tables(model, &types)
    })
}

/// Reads the definitions file `name` of `dir`.
fn read_from(dir: &Path) -> impl Fn(&str) -> (PathBuf, std::io::Result<String>) + '_ {
    move |name| {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path);
        (path, text)
    }
}

/// Compiles definitions given as texts (file name → XML), e.g. for fuzzing;
/// a file not listed is missing.
pub fn compile_texts(files: &[(&str, &str)]) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(
        Path::new("definitions"),
        &|name| {
            let text = files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound));
            (PathBuf::from(name), text)
        },
        &emit::emit,
    )
}

type Reader<'r> = dyn Fn(&str) -> (PathBuf, std::io::Result<String>) + 'r;

/// Reads definition file `name` (noting it in `inputs`); `None` for an
/// optional file that is not there, or one that cannot be read (then in
/// `diags`).
fn load_source(
    read: &Reader<'_>,
    name: &'static str,
    display_dir: &Path,
    inputs: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Source> {
    let (path, text) = read(name);
    if OPTIONAL_FILES.contains(&name)
        && text
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return None;
    }
    inputs.push(path);
    Source::load(text, name, display_dir.join(name), diags)
}

fn compile_with(
    display_dir: &Path,
    read: &Reader<'_>,
    emit: &dyn Fn(&Model) -> String,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut inputs = Vec::new();
    let mut texts = Vec::new();
    let mut load_file = |name: &'static str| {
        let src = load_source(read, name, display_dir, &mut inputs, &mut diags)?;
        texts.extend(texts::collect(&src, &mut diags));
        Some(src)
    };
    let wf_src = load_file("workflow.xml");
    let ac_src = load_file("actions.xml");
    let ck_src = load_file("checks.xml");
    let od_src = load_file("orders.xml");
    let qu_src = load_file("queues.xml");
    let at_src = load_file("attributes.xml");
    let po_src = load_file("policies.xml");
    let no_src = load_file("notifications.xml");

    let wf = wf_src.and_then(|s| {
        if s.idx.elems[0].tag == "workflows" {
            s.parse::<parse::XWorkflows>(&xml::WORKFLOWS, &mut diags)
                .map(|(s, w)| (s, validate::WorkflowFile::Many(w)))
        } else {
            s.parse::<parse::XWorkflow>(&xml::WORKFLOW, &mut diags)
                .map(|(s, w)| (s, validate::WorkflowFile::One(w)))
        }
    });
    let ac = ac_src.and_then(|s| s.parse::<parse::XActions>(&xml::ACTIONS, &mut diags));
    let ck = ck_src.and_then(|s| s.parse::<parse::XConfig>(&xml::CHECKS, &mut diags));
    let od = od_src.and_then(|s| s.parse::<parse::XOrders>(&xml::ORDERS, &mut diags));
    let qu = qu_src.and_then(|s| s.parse::<parse::XQueues>(&xml::QUEUES, &mut diags));
    let queues = qu
        .as_ref()
        .map(|q| queues::build(q, &mut diags))
        .unwrap_or_default();

    let model = validate::build(
        wf.as_ref(),
        ac.as_ref(),
        ck.as_ref(),
        od.as_ref(),
        po_src.is_some(),
        &mut diags,
    );
    let attributes = at_src
        .filter(|s| s.check_schema_ok(&xml::ATTRIBUTES, &mut diags))
        .map(|s| {
            let a = policy::attributes(&s, model.as_ref(), &mut diags);
            (s, a)
        });
    let policies = po_src
        .filter(|s| s.check_schema_ok(&xml::POLICIES, &mut diags))
        .map(|s| {
            let attrs = attributes
                .as_ref()
                .map(|(_, a)| a.as_slice())
                .unwrap_or(&[]);
            // what the requested action can be: order types, actions, and
            // what the engine itself asks (pdp::READ_ORDER, pdp::STAFF_ACTION,
            // pdp::ROLLBACK_ORDER)
            let actions: Option<Vec<String>> = model.as_ref().map(|m| {
                m.order_types
                    .iter()
                    .map(|o| o.name.clone())
                    .chain(
                        m.actions
                            .iter()
                            .filter(|a| a.name != "null")
                            .map(|a| a.name.clone()),
                    )
                    .chain([
                        "read_order".to_owned(),
                        "staff_action".to_owned(),
                        "rollback_order".to_owned(),
                    ])
                    .collect()
            });
            policy::policies(
                &s,
                attrs,
                attributes.is_some(),
                actions.as_deref(),
                &mut diags,
            )
        });
    let notifications = match (&model, no_src) {
        (Some(m), Some(s)) if s.check_schema_ok(&xml::NOTIFICATIONS, &mut diags) => {
            let obligations = policies
                .as_ref()
                .map(notify::obligation_names)
                .unwrap_or_default();
            notify::build(&s, m, &obligations, &mut diags)
        }
        _ => None,
    };
    match model {
        Some(mut model) if diags.is_empty() => Ok(Compiled {
            rust: {
                model.notifications = notifications;
                model.queues = queues;
                model.attributes = attributes.map(|(_, a)| a).unwrap_or_default();
                model.policies = policies;
                texts.sort();
                model.texts = texts;
                emit(&model)
            },
            inputs,
            model,
        }),
        _ => Err(sorted(diags)),
    }
}

/// Diagnostics in file order (`FILES`, then `OPTIONAL_FILES`), then by
/// position, without duplicates.
fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let order = |d: &Diagnostic| {
        let pos = FILES
            .iter()
            .chain(OPTIONAL_FILES.iter())
            .position(|f| d.file.file_name().is_some_and(|n| n == *f))
            .unwrap_or(FILES.len() + OPTIONAL_FILES.len());
        (pos, d.line, d.col)
    };
    diags.sort_by_key(order);
    diags.dedup();
    diags
}

/// One definitions file: its text and position index.
pub(crate) struct Source {
    pub display: PathBuf,
    pub text: String,
    pub idx: xml::SpanIndex,
}

impl Source {
    /// Reads and scans a file; reports a missing file or malformed XML.
    fn load(
        text: std::io::Result<String>,
        name: &str,
        display: PathBuf,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Source> {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("missing required file `{name}`")
                } else {
                    format!("cannot read `{name}`: {e}")
                };
                diags.push(Diagnostic {
                    file: display,
                    line: 1,
                    col: 1,
                    message,
                    help: Some(format!(
                        "a definitions folder holds {}",
                        FILES.map(|f| format!("`{f}`")).join(", ")
                    )),
                });
                return None;
            }
        };
        match xml::scan(&text) {
            Ok(idx) => Some(Source { display, text, idx }),
            Err((offset, message)) => {
                let mut src = Source {
                    display,
                    text,
                    idx: Default::default(),
                };
                let d = src.diag(offset, format!("malformed XML: {message}"), None);
                src.text.clear();
                diags.push(d);
                None
            }
        }
    }

    /// A diagnostic at byte `offset` of this file.
    pub fn diag(
        &self,
        offset: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let (line, col) = xml::line_col(&self.text, offset);
        Diagnostic {
            file: self.display.clone(),
            line,
            col,
            message: message.into(),
            help,
        }
    }

    /// `file:line:col` of byte `offset`, with the file name only (so the
    /// generated code does not depend on where the folder lives).
    /// `FILE:LINE:COL` of `offset`, the file named as in diagnostics (the
    /// display path: one form for build errors from the compiler and from
    /// rustc's evaluation of the handler assertions).
    pub fn loc(&self, offset: usize) -> String {
        let (line, col) = xml::line_col(&self.text, offset);
        format!("{}:{line}:{col}", self.display.display())
    }

    pub fn line_of(&self, offset: usize) -> usize {
        xml::line_col(&self.text, offset).0
    }

    /// Checks the file against its schema, then deserializes it.
    fn parse<T: DeserializeOwned>(
        self,
        schema: &xml::Schema,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(Source, T)> {
        let before = diags.len();
        self.check_schema(schema, diags);
        if diags.len() > before {
            return None;
        }
        let without = texts::without_translations(&self.text, &self.idx);
        match quick_xml::de::from_str::<T>(without.as_deref().unwrap_or(&self.text)) {
            Ok(x) => Some((self, x)),
            Err(e) => {
                diags.push(self.serde_diag(schema, &e.to_string()));
                None
            }
        }
    }

    /// Checks the file against its schema; true when it conforms.
    fn check_schema_ok(&self, schema: &xml::Schema, diags: &mut Vec<Diagnostic>) -> bool {
        let before = diags.len();
        self.check_schema(schema, diags);
        diags.len() == before
    }

    fn check_schema(&self, schema: &xml::Schema, diags: &mut Vec<Diagnostic>) {
        let idx = &self.idx;
        let root = &idx.elems[0];
        if root.tag != schema.root {
            diags.push(self.diag(
                root.pos,
                format!(
                    "expected root element `<{}>`, found `<{}>`",
                    schema.root, root.tag
                ),
                None,
            ));
            return;
        }
        let mut todo = vec![0usize];
        while let Some(i) = todo.pop() {
            let e = &idx.elems[i];
            let Some(spec) = schema.spec(&e.tag) else {
                continue;
            };
            for a in &e.attrs {
                if a.name.starts_with("xmlns")
                    || spec.required.contains(&a.name.as_str())
                    || spec.optional.contains(&a.name.as_str())
                {
                    continue;
                }
                let allowed: Vec<&str> =
                    spec.required.iter().chain(spec.optional).copied().collect();
                let help = suggest(&a.name, allowed.iter().copied()).or_else(|| {
                    Some(if allowed.is_empty() {
                        format!("`<{}>` takes no attributes", e.tag)
                    } else {
                        format!("`<{}>` takes {}", e.tag, list(&allowed))
                    })
                });
                diags.push(self.diag(
                    a.name_pos,
                    format!("unknown attribute `{}` on `<{}>`", a.name, e.tag),
                    help,
                ));
            }
            for r in spec.required {
                if e.attr(r).is_none() {
                    diags.push(self.diag(
                        e.pos,
                        format!("`<{}>` lacks the required attribute `{r}`", e.tag),
                        None,
                    ));
                }
            }
            if !spec.text && !e.text.is_empty() {
                diags.push(self.diag(
                    e.text_pos(),
                    format!("unexpected text in `<{}>`", e.tag),
                    None,
                ));
            }
            for &c in e.children.iter().rev() {
                let child = &idx.elems[c];
                if spec.children.contains(&child.tag.as_str()) {
                    todo.push(c);
                } else {
                    let help = suggest(&child.tag, spec.children.iter().copied()).or_else(|| {
                        Some(if spec.children.is_empty() {
                            format!("`<{}>` has no child elements", e.tag)
                        } else {
                            format!("`<{}>` contains {}", e.tag, list(spec.children))
                        })
                    });
                    diags.push(self.diag(
                        child.pos,
                        format!("unknown element `<{}>` in `<{}>`", child.tag, e.tag),
                        help,
                    ));
                }
            }
        }
    }

    /// Locates a serde error (which has no position) as well as possible.
    fn serde_diag(&self, schema: &xml::Schema, msg: &str) -> Diagnostic {
        let msg = msg.strip_prefix("custom error: ").unwrap_or(msg);
        let quoted = msg.split('`').nth(1).unwrap_or("");
        let name = quoted.trim_start_matches('@');
        let idx = &self.idx;
        if msg.starts_with("unknown field") {
            for e in &idx.elems {
                if let Some(a) = e.attr(name) {
                    return self.diag(
                        a.name_pos,
                        format!("unknown attribute `{name}` on `<{}>`", e.tag),
                        None,
                    );
                }
            }
            if let Some(e) = idx.elems.iter().skip(1).find(|e| e.tag == name) {
                return self.diag(e.pos, format!("unknown element `<{name}>`"), None);
            }
        }
        if msg.starts_with("missing field") {
            for (i, e) in idx.elems.iter().enumerate() {
                let Some(spec) = schema.spec(&e.tag) else {
                    continue;
                };
                if quoted.starts_with('@') {
                    if spec.required.contains(&name) && e.attr(name).is_none() {
                        return self.diag(
                            e.pos,
                            format!("`<{}>` lacks the required attribute `{name}`", e.tag),
                            None,
                        );
                    }
                } else if spec.children.contains(&name) && idx.children(i, name).is_empty() {
                    return self.diag(
                        e.pos,
                        format!("`<{}>` lacks the required element `<{name}>`", e.tag),
                        None,
                    );
                }
            }
        }
        if msg.starts_with("duplicate field") {
            // a list interrupted by another element
            if let Some(e) = idx.elems.iter().skip(1).filter(|e| e.tag == name).nth(1) {
                return self.diag(
                    e.pos,
                    format!("`<{name}>` elements must be next to each other"),
                    Some("another element sits between them".into()),
                );
            }
        }
        self.diag(0, msg.to_owned(), None)
    }
}

/// The field types a check judges, as `#[check(field = "…")]` declares
/// them: type names of `orders.xml` separated by spaces or `|`
/// (`"person"`, `"hostname dnsname"`), or `any`. Returns one bit per type,
/// at [`model::FieldType::index`] (all bits for `any`), or what is wrong,
/// with the closest type name.
pub fn check_field_mask(spec: &str) -> Result<u32, String> {
    let names: Vec<&str> = spec
        .split(|c: char| c.is_whitespace() || c == '|' || c == ',')
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err(format!(
            "`field` names no field type; write one or more of {} (or `any`)",
            list(&model::FieldType::NAMES)
        ));
    }
    let mut mask = 0u32;
    for n in names {
        if n == "any" {
            mask = u32::MAX;
            continue;
        }
        match model::FieldType::from_name(n) {
            Some(t) => mask |= 1 << t.index(),
            None => {
                let hint = suggest(n, model::FieldType::NAMES.iter().copied().chain(["any"]))
                    .unwrap_or_else(|| {
                        format!(
                            "field types are {}, or `any`",
                            list(&model::FieldType::NAMES)
                        )
                    });
                return Err(format!("unknown field type `{n}`; {hint}"));
            }
        }
    }
    Ok(mask)
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "did you mean `x`?" for the candidate closest to `name`, if close enough.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let score = strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase());
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

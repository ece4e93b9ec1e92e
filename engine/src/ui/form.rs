//! Forms generated from an order type's typed fields
//! ([`crate::workflow::defs::FieldDef`]), and the way back from a posted
//! form to the JSON fields the executor takes.
//!
//! | field type | input |
//! |---|---|
//! | `enum` | a select of its values |
//! | `bool` | a select of `Y` / `N` |
//! | `date` | a date input |
//! | `integer` | a number input within its bounds |
//! | `email` | an e-mail input (`type=email`) |
//! | `url` | a URL input (`type=url`) |
//! | `string` (multiline) | a text area |
//! | a list of plain values | a text area, one value per line |
//! | a `record` | a fieldset with the record's inputs |
//! | a list of records | a fieldset per record (the existing ones and one blank), with "remove" per record and "add another" |
//! | a type the domain offers choices for ([`crate::Domain::choices`], JuNet: `subnet`) | a select of them |
//! | everything else (`mac`, `ipv4`, `subnet`, `hostname`, `dnsname`, `person`, …) | a text input with an example |
//!
//! Inputs of records are named like `f.interfaces[0][aliases][1][name]`
//! ([`posted`] parses them into a [`Row`] tree); their ids and the paths
//! findings name are `interfaces[0].aliases[1].name`, so a finding of a
//! check is shown at the input it names (or at the nearest enclosing
//! record or list). The pages work without JavaScript: "add another" and
//! "remove" are submit buttons (`ui.add` / `ui.remove` with the path of the
//! list or record) that draw the form again with what was typed; blank
//! records are left out when the order is placed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::i18n::Texts;
use crate::domain::Choice;
use crate::workflow::context::{Fields, Finding};
use crate::workflow::defs::{Definitions, FieldDef, FieldType, OrderTypeDef};

/// The records of a list, or the top level of a form: form values by
/// field name.
pub type Row = BTreeMap<String, FormValue>;

/// What a form holds for one field, as posted or drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum FormValue {
    /// The text of one input (a plain list: one value per line).
    Text(String),
    /// The records of a list of records, in order.
    Rows(Vec<Row>),
    /// A record that is not in a list.
    Record(Row),
}

impl FormValue {
    /// Nothing typed in it (blank records are left out on submit).
    pub fn is_blank(&self) -> bool {
        match self {
            Self::Text(t) => t.trim().is_empty(),
            Self::Rows(rows) => rows.iter().all(row_is_blank),
            Self::Record(row) => row_is_blank(row),
        }
    }
}

fn row_is_blank(row: &Row) -> bool {
    row.values().all(FormValue::is_blank)
}

/// What the person asked for with the button they pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Check and place (or save) the order.
    Submit,
    /// One more record in the list at this path (`ui.add`).
    Add(Vec<String>),
    /// Drop the record at this path (`ui.remove`).
    Remove(Vec<String>),
}

/// What the form's inputs need besides the values.
pub struct FormCtx<'a> {
    pub t: &'static Texts,
    /// The page's language (descriptions from the definitions).
    pub lang: &'a str,
    pub defs: &'static Definitions,
    /// Choices the domain offers per field type.
    pub choices: &'a [(FieldType, Vec<Choice>)],
}

/// A choice of a select.
#[derive(Debug, Clone)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One input of a form, as the template draws it.
#[derive(Debug, Clone)]
pub struct Input {
    /// `f-` and the path with `-` (`f-interfaces-0-hwa`).
    pub id: String,
    /// The form name (`f.interfaces[0][hwa]`).
    pub name: String,
    /// The field's name (the label).
    pub label: &'static str,
    /// The path findings name (`interfaces[0].hwa`).
    pub path: String,
    pub description: &'static str,
    /// `text`, `select`, `textarea`, `date`, `number`, `email`, `url`.
    pub kind: &'static str,
    pub options: Vec<Opt>,
    pub value: String,
    pub required: bool,
    /// An example or what to write (placeholder).
    pub hint: String,
    /// What the field takes, in words (`mac`, `list of text, one per line`).
    pub ty: String,
    pub min: String,
    pub max: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The start of a fieldset: a list of records, one record of it, or a
/// record.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub path: String,
    pub legend: String,
    /// `list`, `row` or `record` (the CSS class).
    pub class: &'static str,
    pub required: bool,
    pub description: &'static str,
    pub ty: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The end of a fieldset, with its button: "add another" at the end of a
/// list, "remove" at the end of a record of a list.
#[derive(Debug, Clone, Default)]
pub struct Close {
    /// `ui.add` value (the list's path in form-name syntax).
    pub add: String,
    /// `ui.remove` value (the record's path in form-name syntax).
    pub remove: String,
    /// The button's text.
    pub label: String,
    /// The button's id.
    pub id: String,
}

/// One piece of a form in document order (askama has no recursion).
#[derive(Debug, Clone)]
pub enum Node {
    Input(Input),
    Open(Group),
    Close(Close),
}

/// A form's inputs and the findings no input of it names.
#[derive(Debug, Clone, Default)]
pub struct FormView {
    pub nodes: Vec<Node>,
    pub general_errors: Vec<String>,
    pub general_warnings: Vec<String>,
}

fn type_name(ty: FieldType) -> String {
    match serde_json::to_value(ty) {
        Ok(Value::String(s)) => s,
        _ => "text".to_owned(),
    }
}

fn example(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Mac => "00:1a:2b:3c:4d:5e",
        FieldType::Ipv4 => "134.94.16.12",
        FieldType::Ipv6 => "2001:638:404:16::12",
        FieldType::Subnet => "134.94.16.0/24",
        FieldType::Hostname => "host.example.org",
        FieldType::Datetime => "2026-06-30T12:00:00Z",
        FieldType::Person => "PERS_KEY",
        FieldType::Email => "name@example.org",
        FieldType::Url => "https://example.org/",
        FieldType::Dnsname => "*.lab.example.org",
        _ => "",
    }
}

fn is_record(def: &FieldDef) -> bool {
    def.ty == FieldType::Record
}

/// The field types of an order type, records' fields included (for
/// [`crate::Domain::choices`]).
pub fn field_types(order_type: &OrderTypeDef) -> Vec<FieldType> {
    fn walk(fields: &[FieldDef], out: &mut Vec<FieldType>) {
        for f in fields {
            if !out.contains(&f.ty) {
                out.push(f.ty);
            }
            walk(f.fields, out);
        }
    }
    let mut out = Vec::new();
    walk(order_type.fields, &mut out);
    out
}

/// A field as the definitions page lists it (records' fields as
/// `interfaces.hwa`).
#[derive(Debug, Clone)]
pub struct FieldRow {
    pub name: String,
    pub ty: String,
    pub required: bool,
    pub description: &'static str,
}

/// Every field of `order_type`, records' fields after their record, with
/// the descriptions in `lang` where the definitions have them.
pub fn field_rows(defs: &Definitions, lang: &str, order_type: &OrderTypeDef) -> Vec<FieldRow> {
    fn walk(
        defs: &Definitions,
        lang: &str,
        fields: &'static [FieldDef],
        name: &str,
        key: &str,
        out: &mut Vec<FieldRow>,
    ) {
        for f in fields {
            let name = if name.is_empty() {
                f.name.to_owned()
            } else {
                format!("{name}.{}", f.name)
            };
            let key = format!("{key}/field[{}]", f.name);
            let base = type_name(f.ty);
            out.push(FieldRow {
                name: name.clone(),
                ty: if f.list {
                    format!("list of {base}")
                } else {
                    base
                },
                required: f.required,
                description: defs.text(lang, &key, f.description),
            });
            walk(defs, lang, f.fields, &name, &key, out);
        }
    }
    let mut out = Vec::new();
    let key = format!("order[{}]", order_type.name);
    walk(defs, lang, order_type.fields, "", &key, &mut out);
    out
}

// ---------------------------------------------------------------- values

/// A stored value as the form holds it.
fn from_json(def: &FieldDef, v: Option<&Value>) -> FormValue {
    match (is_record(def), def.list, v) {
        (true, true, Some(Value::Array(items))) => FormValue::Rows(
            items
                .iter()
                .map(|i| row_of(def.fields, i.as_object()))
                .collect(),
        ),
        (true, true, _) => FormValue::Rows(Vec::new()),
        (true, false, v) => FormValue::Record(row_of(def.fields, v.and_then(Value::as_object))),
        (false, true, Some(Value::Array(items))) => {
            FormValue::Text(items.iter().map(leaf_text).collect::<Vec<_>>().join("\n"))
        }
        (false, _, Some(v)) => FormValue::Text(leaf_text(v)),
        (false, _, None) => FormValue::Text(String::new()),
    }
}

fn leaf_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "Y".to_owned(),
        Value::Bool(false) => "N".to_owned(),
        other => other.to_string(),
    }
}

fn row_of(fields: &'static [FieldDef], obj: Option<&serde_json::Map<String, Value>>) -> Row {
    fields
        .iter()
        .map(|f| {
            (
                f.name.to_owned(),
                from_json(f, obj.and_then(|o| o.get(f.name))),
            )
        })
        .collect()
}

/// The fields of a stored order as the form holds them.
pub fn values_of(order_type: &'static OrderTypeDef, fields: &Fields) -> Row {
    order_type
        .fields
        .iter()
        .map(|f| (f.name.to_owned(), from_json(f, fields.get(f.name))))
        .collect()
}

/// Form values given as `name=text` (a link's query, `?host=…`): only
/// names of plain fields of `order_type`.
pub fn prefilled(order_type: &'static OrderTypeDef, pairs: Vec<(String, String)>) -> Row {
    pairs
        .into_iter()
        .filter(|(k, _)| {
            order_type
                .field(k)
                .is_some_and(|f| !is_record(f) && !f.list)
        })
        .map(|(k, v)| (k, FormValue::Text(v)))
        .collect()
}

/// The segments of a form name's path: `interfaces[0][hwa]` →
/// `interfaces`, `0`, `hwa`; `None` when it is not of that shape.
fn segments(name: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match name.find('[') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut out = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let seg = &inner[..end];
        if seg.is_empty() || seg.contains('[') {
            return None;
        }
        out.push(seg.to_owned());
        rest = &inner[end + 1..];
    }
    Some(out)
}

/// The most records a posted list keeps (a hand-made post with index
/// 1000000 makes no million rows).
const MAX_ROWS: usize = 200;

/// A list being parsed: records by their posted index.
#[derive(Default)]
struct Parsing {
    text: Option<String>,
    rows: BTreeMap<usize, BTreeMap<String, Parsing>>,
    record: BTreeMap<String, Parsing>,
}

fn put(
    fields: &'static [FieldDef],
    at: &mut BTreeMap<String, Parsing>,
    segs: &[String],
    text: &str,
) {
    let Some((name, rest)) = segs.split_first() else {
        return;
    };
    let Some(def) = fields.iter().find(|f| f.name == name) else {
        return;
    };
    let slot = at.entry(def.name.to_owned()).or_default();
    match (is_record(def), def.list) {
        (false, _) if rest.is_empty() => slot.text = Some(text.to_owned()),
        (false, _) => {}
        (true, true) => {
            let Some((index, rest)) = rest.split_first() else {
                return;
            };
            let Ok(index) = index.parse::<usize>() else {
                return;
            };
            if index < MAX_ROWS {
                put(def.fields, slot.rows.entry(index).or_default(), rest, text);
            }
        }
        (true, false) => put(def.fields, &mut slot.record, rest, text),
    }
}

fn finish(fields: &'static [FieldDef], mut at: BTreeMap<String, Parsing>) -> Row {
    let mut row = Row::new();
    for def in fields {
        let Some(p) = at.remove(def.name) else {
            continue;
        };
        let v = match (is_record(def), def.list) {
            (false, _) => match p.text {
                Some(t) => FormValue::Text(t),
                None => continue,
            },
            (true, true) => FormValue::Rows(
                p.rows
                    .into_values()
                    .map(|r| finish(def.fields, r))
                    .collect(),
            ),
            (true, false) => FormValue::Record(finish(def.fields, p.record)),
        };
        row.insert(def.name.to_owned(), v);
    }
    row
}

/// A posted form: the `f.…` values as a tree, and the button pressed.
pub fn posted(order_type: &'static OrderTypeDef, form: &[(String, String)]) -> (Row, Op) {
    let mut at = BTreeMap::new();
    let mut op = Op::Submit;
    for (k, v) in form {
        if let Some(name) = k.strip_prefix("f.") {
            if let Some(segs) = segments(name) {
                put(order_type.fields, &mut at, &segs, v);
            }
        } else if k == "ui.add" {
            if let Some(segs) = segments(v) {
                op = Op::Add(segs);
            }
        } else if k == "ui.remove"
            && let Some(segs) = segments(v)
        {
            op = Op::Remove(segs);
        }
    }
    (finish(order_type.fields, at), op)
}

/// The list of records at `segs` (`interfaces`, `0`, `aliases`), made
/// when the form had none.
fn rows_mut<'r>(
    fields: &'static [FieldDef],
    row: &'r mut Row,
    segs: &[String],
) -> Option<(&'static FieldDef, &'r mut Vec<Row>)> {
    let (name, rest) = segs.split_first()?;
    let def = fields.iter().find(|f| f.name == name)?;
    if !is_record(def) {
        return None;
    }
    let slot = row.entry(def.name.to_owned()).or_insert_with(|| {
        if def.list {
            FormValue::Rows(Vec::new())
        } else {
            FormValue::Record(Row::new())
        }
    });
    match (slot, rest.split_first()) {
        (FormValue::Rows(rows), None) => Some((def, rows)),
        (FormValue::Rows(rows), Some((index, rest))) => {
            let r = rows.get_mut(index.parse::<usize>().ok()?)?;
            rows_mut(def.fields, r, rest)
        }
        (FormValue::Record(r), Some(_)) => rows_mut(def.fields, r, rest),
        _ => None,
    }
}

/// Applies "add another" or "remove" to the values; false when the path
/// names no list or record of the form.
pub fn apply(order_type: &'static OrderTypeDef, values: &mut Row, op: &Op) -> bool {
    match op {
        Op::Submit => false,
        Op::Add(segs) => match rows_mut(order_type.fields, values, segs) {
            Some((_, rows)) if rows.len() < MAX_ROWS => {
                rows.push(Row::new());
                true
            }
            _ => false,
        },
        Op::Remove(segs) => {
            let Some((index, list)) = segs.split_last() else {
                return false;
            };
            let Ok(index) = index.parse::<usize>() else {
                return false;
            };
            match rows_mut(order_type.fields, values, list) {
                Some((_, rows)) if index < rows.len() => {
                    rows.remove(index);
                    true
                }
                _ => false,
            }
        }
    }
}

/// Drops blank records (recursively), so that the records' indices are
/// those of the order's JSON (and of the findings' paths).
pub fn compact(values: &mut Row) {
    for v in values.values_mut() {
        match v {
            FormValue::Text(_) => {}
            FormValue::Rows(rows) => {
                rows.retain(|r| !row_is_blank(r));
                rows.iter_mut().for_each(compact);
            }
            FormValue::Record(r) => compact(r),
        }
    }
}

/// A field's form value as JSON; `None` when blank.
fn to_json(def: &FieldDef, v: &FormValue) -> Option<Value> {
    match (v, is_record(def)) {
        (FormValue::Text(raw), false) => {
            let text = if def.multiline {
                raw.as_str()
            } else {
                raw.trim()
            };
            if text.trim().is_empty() {
                None
            } else if def.list {
                Some(Value::Array(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| Value::String(l.to_owned()))
                        .collect(),
                ))
            } else {
                Some(Value::String(text.replace("\r\n", "\n")))
            }
        }
        (FormValue::Rows(rows), true) if def.list => {
            let items: Vec<Value> = rows
                .iter()
                .filter_map(|r| object_of(def.fields, r))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        (FormValue::Record(r), true) if !def.list => object_of(def.fields, r),
        _ => None,
    }
}

fn object_of(fields: &'static [FieldDef], row: &Row) -> Option<Value> {
    let obj: serde_json::Map<String, Value> = fields
        .iter()
        .filter_map(|f| Some((f.name.to_owned(), to_json(f, row.get(f.name)?)?)))
        .collect();
    (!obj.is_empty()).then_some(Value::Object(obj))
}

/// The fields of a posted form as the executor takes them: blank inputs
/// and records are left out (or, with `current`, emptied to null when they
/// had a value); with `current`, only what differs from it.
pub fn to_fields(
    order_type: &'static OrderTypeDef,
    values: &Row,
    current: Option<&Fields>,
) -> Fields {
    let mut fields = Fields::new();
    for def in order_type.fields {
        let Some(v) = values.get(def.name) else {
            continue;
        };
        let value = to_json(def, v);
        match current {
            None => {
                if let Some(value) = value {
                    fields.insert(def.name.to_owned(), value);
                }
            }
            Some(current) => {
                let before = to_json(def, &from_json(def, current.get(def.name)));
                if before != value {
                    fields.insert(def.name.to_owned(), value.unwrap_or(Value::Null));
                }
            }
        }
    }
    fields
}

// ---------------------------------------------------------------- drawing

/// Findings by the path they name (`interfaces[0].hwa`); those of no
/// field have the path "".
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
}

impl Problems {
    pub fn error(&mut self, field: Option<&str>, message: &str) {
        self.errors
            .push((field.unwrap_or_default().to_owned(), message.to_owned()));
    }

    pub fn warning(&mut self, field: Option<&str>, message: &str) {
        self.warnings
            .push((field.unwrap_or_default().to_owned(), message.to_owned()));
    }

    pub fn findings(errors: &[Finding], warnings: &[Finding]) -> Self {
        let mut p = Self::default();
        for f in errors {
            p.error(f.field.as_deref(), &f.message);
        }
        for f in warnings {
            p.warning(f.field.as_deref(), &f.message);
        }
        p
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// The path that encloses `path` (`interfaces[0].hwa` → `interfaces[0]`
/// → `interfaces`).
fn parent(path: &str) -> Option<&str> {
    path.rfind(['.', '[']).map(|i| &path[..i])
}

struct Drawing<'a> {
    ctx: &'a FormCtx<'a>,
    order_type: &'static str,
    nodes: Vec<Node>,
}

impl Drawing<'_> {
    /// The description of the field at `key` (`interfaces.hwa`) in the
    /// page's language.
    fn description(&self, key: &str, default: &'static str) -> &'static str {
        let mut k = format!("order[{}]", self.order_type);
        for step in key.split('.') {
            k.push_str("/field[");
            k.push_str(step);
            k.push(']');
        }
        self.ctx.defs.text(self.ctx.lang, &k, default)
    }

    /// The inputs of `fields` with `row`'s values; `path` is the enclosing
    /// record's (`""` at the top), `name` its form name, `key` its path
    /// without indices (for the texts).
    fn fields(
        &mut self,
        fields: &'static [FieldDef],
        row: &Row,
        path: &str,
        name: &str,
        key: &str,
    ) {
        for def in fields {
            let (path, name, key) = if path.is_empty() {
                (
                    def.name.to_owned(),
                    format!("f.{}", def.name),
                    def.name.to_owned(),
                )
            } else {
                (
                    format!("{path}.{}", def.name),
                    format!("{name}[{}]", def.name),
                    format!("{key}.{}", def.name),
                )
            };
            let v = row.get(def.name);
            match (is_record(def), def.list) {
                (false, _) => {
                    let text = match v {
                        Some(FormValue::Text(t)) => t.as_str(),
                        _ => "",
                    };
                    let input = self.input(def, text, &path, name, &key);
                    self.nodes.push(Node::Input(input));
                }
                (true, false) => {
                    let empty = Row::new();
                    let r = match v {
                        Some(FormValue::Record(r)) => r,
                        _ => &empty,
                    };
                    self.open(def, &path, &key, def.name.to_owned(), "record");
                    self.fields(def.fields, r, &path, &name, &key);
                    self.nodes.push(Node::Close(Close::default()));
                }
                (true, true) => {
                    let mut rows: Vec<Row> = match v {
                        Some(FormValue::Rows(r)) => r.clone(),
                        _ => Vec::new(),
                    };
                    // the existing records and one blank to fill in
                    if !rows.iter().any(row_is_blank) {
                        rows.push(Row::new());
                    }
                    self.open(def, &path, &key, def.name.to_owned(), "list");
                    for (i, r) in rows.iter().enumerate() {
                        let row_path = format!("{path}[{i}]");
                        let row_name = format!("{name}[{i}]");
                        let legend = format!("{} {}", def.name, i + 1);
                        self.nodes.push(Node::Open(Group {
                            id: id_of(&row_path),
                            path: row_path.clone(),
                            legend: legend.clone(),
                            class: "row",
                            required: false,
                            description: "",
                            ty: String::new(),
                            errors: Vec::new(),
                            warnings: Vec::new(),
                        }));
                        self.fields(def.fields, r, &row_path, &row_name, &key);
                        self.nodes.push(Node::Close(Close {
                            remove: row_name[2..].to_owned(),
                            label: format!("{} {legend}", self.ctx.t.remove),
                            id: format!("remove-{}", id_of(&row_path)),
                            ..Close::default()
                        }));
                    }
                    self.nodes.push(Node::Close(Close {
                        add: name[2..].to_owned(),
                        label: format!("{}: {}", self.ctx.t.add_another, def.name),
                        id: format!("add-{}", id_of(&path)),
                        ..Close::default()
                    }));
                }
            }
        }
    }

    fn open(
        &mut self,
        def: &'static FieldDef,
        path: &str,
        key: &str,
        legend: String,
        class: &'static str,
    ) {
        let ty = if def.list {
            self.ctx.t.list_of_records
        } else {
            self.ctx.t.record
        };
        self.nodes.push(Node::Open(Group {
            id: id_of(path),
            path: path.to_owned(),
            legend,
            class,
            required: def.required,
            description: self.description(key, def.description),
            ty: ty.to_owned(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }));
    }

    fn input(
        &self,
        def: &'static FieldDef,
        value: &str,
        path: &str,
        name: String,
        key: &str,
    ) -> Input {
        let choices: &[Choice] = self
            .ctx
            .choices
            .iter()
            .find(|(ty, _)| *ty == def.ty)
            .map(|(_, c)| c.as_slice())
            .unwrap_or_default();
        let plain = |values: &[&'static str]| -> Vec<Opt> {
            values
                .iter()
                .map(|v| Opt {
                    value: (*v).to_owned(),
                    label: (*v).to_owned(),
                    selected: false,
                })
                .collect()
        };
        let (kind, mut options): (&'static str, Vec<Opt>) = match def.ty {
            _ if def.list => ("textarea", vec![]),
            FieldType::Enum => ("select", plain(def.values)),
            FieldType::Bool => ("select", plain(&["Y", "N"])),
            _ if !choices.is_empty() => {
                let mut opts: Vec<Opt> = choices
                    .iter()
                    .map(|c| Opt {
                        value: c.value.clone(),
                        label: c.label.clone(),
                        selected: false,
                    })
                    .collect();
                // a value that is no choice (typed by hand, or gone) is kept
                if !value.trim().is_empty() && !opts.iter().any(|o| o.value == value.trim()) {
                    opts.push(Opt {
                        value: value.trim().to_owned(),
                        label: value.trim().to_owned(),
                        selected: false,
                    });
                }
                ("select", opts)
            }
            FieldType::Date => ("date", vec![]),
            FieldType::Integer => ("number", vec![]),
            FieldType::Email => ("email", vec![]),
            FieldType::Url => ("url", vec![]),
            FieldType::String if def.multiline => ("textarea", vec![]),
            _ => ("text", vec![]),
        };
        for o in &mut options {
            o.selected = o.value == value.trim();
        }
        let base = type_name(def.ty);
        let ty = if def.list {
            format!("{} {base}, {}", self.ctx.t.list_of, self.ctx.t.one_per_line)
        } else {
            base
        };
        Input {
            id: id_of(path),
            name,
            label: def.name,
            path: path.to_owned(),
            description: self.description(key, def.description),
            kind,
            options,
            value: value.to_owned(),
            required: def.required,
            hint: example(def.ty).to_owned(),
            ty,
            min: def.min.map(|m| m.to_string()).unwrap_or_default(),
            max: def.max.map(|m| m.to_string()).unwrap_or_default(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The id of an input or fieldset: `f-` and its path with `-`
/// (`interfaces[0].hwa` → `f-interfaces-0-hwa`).
fn id_of(path: &str) -> String {
    let mut id = String::with_capacity(path.len() + 2);
    id.push_str("f-");
    for c in path.chars() {
        match c {
            '.' | '[' => id.push('-'),
            ']' => {}
            c => id.push(c),
        }
    }
    id
}

/// The form of `order_type` with `values`, and the findings sorted to the
/// inputs (or fieldsets) they name; a finding whose path is not drawn goes
/// to the nearest enclosing one, with its path, else to the general ones.
pub fn form(
    order_type: &'static OrderTypeDef,
    values: &Row,
    problems: &Problems,
    ctx: &FormCtx<'_>,
) -> FormView {
    let mut d = Drawing {
        ctx,
        order_type: order_type.name,
        nodes: Vec::new(),
    };
    d.fields(order_type.fields, values, "", "f", "");
    let mut nodes = d.nodes;
    let at: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Node::Input(x) => Some((x.path.clone(), i)),
            Node::Open(g) => Some((g.path.clone(), i)),
            Node::Close(_) => None,
        })
        .collect();
    let mut general_errors = Vec::new();
    let mut general_warnings = Vec::new();
    for (warning, (path, message)) in problems
        .errors
        .iter()
        .map(|p| (false, p))
        .chain(problems.warnings.iter().map(|p| (true, p)))
    {
        let mut here = Some(path.as_str()).filter(|p| !p.is_empty());
        let target = loop {
            match here {
                None => break None,
                Some(p) => match at.get(p) {
                    Some(&i) => break Some((i, p == path)),
                    None => here = parent(p),
                },
            }
        };
        let text = match target {
            Some((_, true)) => message.clone(),
            _ if path.is_empty() => message.clone(),
            _ => format!("{path}: {message}"),
        };
        let list = match target.map(|(i, _)| &mut nodes[i]) {
            Some(Node::Input(x)) if warning => &mut x.warnings,
            Some(Node::Input(x)) => &mut x.errors,
            Some(Node::Open(g)) if warning => &mut g.warnings,
            Some(Node::Open(g)) => &mut g.errors,
            _ if warning => &mut general_warnings,
            _ => &mut general_errors,
        };
        list.push(text);
    }
    FormView {
        nodes,
        general_errors,
        general_warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn field(name: &'static str, ty: FieldType, list: bool) -> FieldDef {
        FieldDef {
            name,
            description: "",
            ty,
            required: false,
            list,
            values: &[],
            min: None,
            max: None,
            max_length: None,
            multiline: false,
            fields: &[],
        }
    }

    static FIELDS: [FieldDef; 5] = [
        field("contact", FieldType::Email, false),
        field("page", FieldType::Url, false),
        field("name", FieldType::Dnsname, false),
        field("nets", FieldType::Subnet, true),
        field("cc", FieldType::Email, true),
    ];
    static ORDER: OrderTypeDef = OrderTypeDef {
        name: "request_certificate",
        description: "",
        workflow: 0,
        key_field: None,
        fields: &FIELDS,
    };

    static ALIAS: [FieldDef; 2] = [
        field("name", FieldType::Hostname, false),
        field("canonical", FieldType::Bool, false),
    ];
    static IFACE: [FieldDef; 3] = [
        field("net", FieldType::Subnet, false),
        field("hwa", FieldType::Mac, false),
        FieldDef {
            fields: &ALIAS,
            ..field("aliases", FieldType::Record, true)
        },
    ];
    static DEVICE: [FieldDef; 2] = [
        field("host", FieldType::Hostname, false),
        FieldDef {
            fields: &IFACE,
            ..field("interfaces", FieldType::Record, true)
        },
    ];
    static REGISTER: OrderTypeDef = OrderTypeDef {
        name: "register_device",
        description: "",
        workflow: 0,
        key_field: None,
        fields: &DEVICE,
    };

    static DEFS: Definitions = Definitions {
        workflows: &[],
        actions: &[],
        checks: &[],
        check_bindings: &[],
        order_types: &[],
        queues: &[],
        notifications: &crate::notify::NotificationDefs::NONE,
        authorization: None,
        document: "{}",
        texts: &[],
    };

    fn ctx() -> FormCtx<'static> {
        FormCtx {
            t: super::super::i18n::Lang::En.texts(),
            lang: "en",
            defs: &DEFS,
            choices: &[],
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn email_and_url_fields_get_their_input_types() {
        let view = form(&ORDER, &Row::new(), &Problems::default(), &ctx());
        let kinds: Vec<(&str, &str, &str)> = view
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Input(i) => Some((i.label, i.kind, i.hint.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("contact", "email", "name@example.org"),
                ("page", "url", "https://example.org/"),
                ("name", "text", "*.lab.example.org"),
                ("nets", "textarea", "134.94.16.0/24"),
                ("cc", "textarea", "name@example.org"),
            ]
        );
        let Node::Input(nets) = &view.nodes[3] else {
            panic!("an input")
        };
        assert_eq!(nets.ty, "list of subnet, one per line");
    }

    #[test]
    fn form_names_are_split_into_segments() {
        assert_eq!(
            segments("interfaces[0][aliases][1][name]").unwrap(),
            ["interfaces", "0", "aliases", "1", "name"]
        );
        assert_eq!(segments("host").unwrap(), ["host"]);
        for bad in ["", "[0]", "a[", "a[]", "a[0", "a[0]x", "a[[0]]"] {
            assert_eq!(segments(bad), None, "{bad}");
        }
    }

    #[test]
    fn nested_records_become_the_orders_json_without_blank_rows() {
        let form = pairs(&[
            ("csrf", "x"),
            ("f.host", " zam2299 "),
            ("f.interfaces[0][net]", "134.94.16.0/24"),
            ("f.interfaces[0][hwa]", "00:1a:2b:3c:4d:01"),
            ("f.interfaces[0][aliases][0][name]", "a.example.org"),
            ("f.interfaces[0][aliases][0][canonical]", "Y"),
            ("f.interfaces[0][aliases][1][name]", ""),
            ("f.interfaces[0][aliases][1][canonical]", ""),
            // a blank record between two filled ones
            ("f.interfaces[1][net]", ""),
            ("f.interfaces[1][hwa]", " "),
            ("f.interfaces[1][aliases][0][name]", ""),
            ("f.interfaces[2][net]", "134.94.32.0/24"),
            ("f.interfaces[2][hwa]", "00:1a:2b:3c:4d:02"),
            ("f.interfaces[2][aliases][0][name]", ""),
            // unknown names and indices out of bounds are ignored
            ("f.interfaces[2][nope]", "x"),
            ("f.interfaces[999999][hwa]", "x"),
            ("f.nope", "x"),
        ]);
        let (mut values, op) = posted(&REGISTER, &form);
        assert_eq!(op, Op::Submit);
        compact(&mut values);
        let fields = to_fields(&REGISTER, &values, None);
        assert_eq!(
            serde_json::to_value(&fields).unwrap(),
            serde_json::json!({
                "host": "zam2299",
                "interfaces": [
                    {"net": "134.94.16.0/24", "hwa": "00:1a:2b:3c:4d:01",
                     "aliases": [{"name": "a.example.org", "canonical": "Y"}]},
                    {"net": "134.94.32.0/24", "hwa": "00:1a:2b:3c:4d:02"},
                ]
            })
        );
        // the stored order drawn again and posted unchanged: nothing changed
        let again = values_of(&REGISTER, &fields);
        assert_eq!(to_fields(&REGISTER, &again, Some(&fields)), Fields::new());
    }

    #[test]
    fn add_and_remove_keep_the_values() {
        let form = pairs(&[
            ("f.interfaces[0][hwa]", "00:1a:2b:3c:4d:01"),
            ("f.interfaces[1][hwa]", "00:1a:2b:3c:4d:02"),
            ("f.interfaces[1][aliases][0][name]", "b.example.org"),
            ("ui.add", "interfaces[1][aliases]"),
        ]);
        let (mut values, op) = posted(&REGISTER, &form);
        assert!(apply(&REGISTER, &mut values, &op));
        let FormValue::Rows(rows) = &values["interfaces"] else {
            panic!("rows")
        };
        let FormValue::Rows(aliases) = &rows[1]["aliases"] else {
            panic!("aliases")
        };
        assert_eq!(aliases.len(), 2);
        assert!(apply(
            &REGISTER,
            &mut values,
            &Op::Remove(vec!["interfaces".into(), "0".into()])
        ));
        let fields = to_fields(&REGISTER, &values, None);
        assert_eq!(
            fields["interfaces"],
            serde_json::json!([{"hwa": "00:1a:2b:3c:4d:02", "aliases": [{"name": "b.example.org"}]}])
        );
        for bad in [
            Op::Remove(vec!["interfaces".into(), "5".into()]),
            Op::Add(vec!["host".into()]),
            Op::Add(vec!["nope".into()]),
        ] {
            assert!(!apply(&REGISTER, &mut values, &bad), "{bad:?}");
        }
    }

    #[test]
    fn findings_are_shown_at_the_nested_input_they_name() {
        let fields = serde_json::json!({"interfaces": [
            {"hwa": "00:1a:2b:3c:4d:01", "aliases": [{"name": "a.example.org"}]},
            {"hwa": "00:1a:2b:zz"},
        ]});
        let fields: Fields = serde_json::from_value(fields).unwrap();
        let values = values_of(&REGISTER, &fields);
        let mut problems = Problems::default();
        problems.error(Some("interfaces[1].hwa"), "not a hardware address");
        problems.error(Some("interfaces[0].aliases"), "needs a canonical alias");
        problems.error(Some("interfaces[7].hwa"), "gone");
        problems.error(None, "in general");
        let view = form(&REGISTER, &values, &problems, &ctx());
        let errors_of = |id: &str| -> Vec<String> {
            view.nodes
                .iter()
                .find_map(|n| match n {
                    Node::Input(i) if i.id == id => Some(i.errors.clone()),
                    Node::Open(g) if g.id == id => Some(g.errors.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{id} is drawn"))
        };
        assert_eq!(errors_of("f-interfaces-1-hwa"), ["not a hardware address"]);
        assert!(errors_of("f-interfaces-0-hwa").is_empty());
        assert_eq!(
            errors_of("f-interfaces-0-aliases"),
            ["needs a canonical alias"]
        );
        assert_eq!(errors_of("f-interfaces"), ["interfaces[7].hwa: gone"]);
        assert_eq!(view.general_errors, ["in general"]);
        // the two records and one blank; the first with its alias and a blank
        let names: Vec<&str> = view
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Input(i) => Some(i.name.as_str()),
                _ => None,
            })
            .collect();
        assert!(names.contains(&"f.interfaces[2][hwa]"), "{names:?}");
        assert!(names.contains(&"f.interfaces[0][aliases][1][name]"));
        assert!(!names.contains(&"f.interfaces[3][hwa]"));
    }
}

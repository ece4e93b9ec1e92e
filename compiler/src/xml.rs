//! A position index of an XML file, built with `quick_xml::Reader`.
//!
//! serde reports no positions, so every file is scanned once to find
//! malformed XML (with line:col) and to record where each element, attribute
//! value and text content starts. Diagnostics then point at the exact name.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One attribute of an element.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub name: String,
    /// Byte offset of the attribute name.
    pub name_pos: usize,
    /// The unescaped value.
    pub value: String,
    /// Byte offset of the first character of the value (after the quote).
    pub pos: usize,
    /// Whether the value was written without escapes (then offsets inside
    /// `value` are offsets in the source too).
    pub verbatim: bool,
}

/// One start or empty element.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub tag: String,
    /// Byte offset of the tag name (just after `<`).
    pub pos: usize,
    pub attrs: Vec<Attr>,
    /// Unescaped, trimmed text content directly inside the element.
    pub text: String,
    /// Byte offset of the first non-whitespace text character.
    pub text_pos: Option<usize>,
    pub children: Vec<usize>,
    /// Byte offset just after the element (after its end tag).
    pub end: usize,
}

impl Elem {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Offset of the value of attribute `name`, or of the tag name.
    pub fn attr_pos(&self, name: &str) -> usize {
        self.attr(name).map_or(self.pos, |a| a.pos)
    }

    /// Offset of the text content, or of the tag name.
    pub fn text_pos(&self) -> usize {
        self.text_pos.unwrap_or(self.pos)
    }
}

/// All elements of a file, in document order; the first is the root.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    pub elems: Vec<Elem>,
}

impl SpanIndex {
    /// The children of `parent` named `tag`, in document order. They line up
    /// with the `Vec` serde fills from the same elements.
    pub fn children(&self, parent: usize, tag: &str) -> Vec<usize> {
        self.elems[parent]
            .children
            .iter()
            .copied()
            .filter(|&c| self.elems[c].tag == tag)
            .collect()
    }

    /// The `<description>` of `parent` in the definitions' own language
    /// (the one without `lang`).
    pub fn own_description(&self, parent: usize) -> Option<&Elem> {
        self.children(parent, "description")
            .into_iter()
            .map(|i| &self.elems[i])
            .find(|e| e.attr("lang").is_none())
    }

    pub fn child(&self, parent: usize, tag: &str, n: usize) -> Option<&Elem> {
        self.children(parent, tag).get(n).map(|&i| &self.elems[i])
    }
}

/// A syntax error: byte offset and message.
pub(crate) type SyntaxError = (usize, String);

/// Scans `src`, returning the index or the first syntax error.
pub(crate) fn scan(src: &str) -> Result<SpanIndex, SyntaxError> {
    let mut reader = Reader::from_str(src);
    reader.config_mut().check_end_names = true;
    let mut idx = SpanIndex::default();
    let mut stack: Vec<usize> = Vec::new();
    let mut raw_text: Vec<String> = Vec::new();
    let mut roots = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err((reader.error_position() as usize, e.to_string())),
        };
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(_) | Event::Empty(_) => {
                let empty = matches!(event, Event::Empty(_));
                let raw = &src[before..after];
                let (tag, attrs) = parse_tag(raw, before)?;
                if stack.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err((before + 1, format!("a second root element `<{tag}>`")));
                    }
                }
                let me = idx.elems.len();
                let parent = stack.last().copied();
                if let Some(p) = parent {
                    idx.elems[p].children.push(me);
                }
                idx.elems.push(Elem {
                    tag,
                    pos: before + 1,
                    attrs,
                    text: String::new(),
                    text_pos: None,
                    children: Vec::new(),
                    end: after,
                });
                raw_text.push(String::new());
                if !empty {
                    stack.push(me);
                }
            }
            Event::End(_) => {
                if let Some(top) = stack.pop() {
                    idx.elems[top].end = after;
                }
            }
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                let raw = &src[before..after];
                match stack.last() {
                    Some(&top) => {
                        let lead = raw.len() - raw.trim_start().len();
                        if idx.elems[top].text_pos.is_none() && !raw.trim().is_empty() {
                            idx.elems[top].text_pos = Some(before + lead);
                        }
                        if let Event::CData(c) = &event {
                            // keep CDATA verbatim, escaped, so unescaping below is uniform
                            let inner = String::from_utf8_lossy(c);
                            raw_text[top].push_str(&quick_xml::escape::escape(inner.as_ref()));
                        } else {
                            raw_text[top].push_str(raw);
                        }
                    }
                    None if !raw.trim().is_empty() => {
                        let lead = raw.len() - raw.trim_start().len();
                        return Err((before + lead, "text outside of the root element".into()));
                    }
                    None => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(&open) = stack.last() {
        let e = &idx.elems[open];
        return Err((e.pos, format!("element `<{}>` is never closed", e.tag)));
    }
    if idx.elems.is_empty() {
        return Err((0, "no root element".into()));
    }
    for (i, raw) in raw_text.into_iter().enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        match quick_xml::escape::unescape(t) {
            Ok(s) => idx.elems[i].text = s.into_owned(),
            Err(e) => return Err((idx.elems[i].text_pos(), format!("bad escape in text: {e}"))),
        }
    }
    Ok(idx)
}

/// Parses the raw bytes of a start tag (`<name a="v" ...>`, starting at byte
/// `base` of the file) into its name and attributes with positions.
fn parse_tag(raw: &str, base: usize) -> Result<(String, Vec<Attr>), SyntaxError> {
    let b = raw.as_bytes();
    let is_name = |c: u8| !(c.is_ascii_whitespace() || c == b'/' || c == b'>' || c == b'=');
    let mut i = 1;
    while i < b.len() && is_name(b[i]) {
        i += 1;
    }
    let tag = raw[1..i].to_owned();
    let mut attrs: Vec<Attr> = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] == b'/' || b[i] == b'>' {
            break;
        }
        let name_start = i;
        while i < b.len() && is_name(b[i]) && b[i] != b'"' && b[i] != b'\'' {
            i += 1;
        }
        let name = raw[name_start..i].to_owned();
        if name.is_empty() {
            return Err((
                base + i,
                format!("unexpected `{}` in tag `<{tag}>`", b[i] as char),
            ));
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err((
                base + name_start,
                format!("attribute `{name}` has no value"),
            ));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || (b[i] != b'"' && b[i] != b'\'') {
            return Err((
                base + i,
                format!("the value of attribute `{name}` must be quoted"),
            ));
        }
        let quote = b[i];
        let start = i + 1;
        let Some(len) = b[start..].iter().position(|&c| c == quote) else {
            return Err((
                base + i,
                format!("unterminated value of attribute `{name}`"),
            ));
        };
        let raw_value = &raw[start..start + len];
        i = start + len + 1;
        if attrs.iter().any(|a| a.name == name) {
            return Err((base + name_start, format!("duplicate attribute `{name}`")));
        }
        let value = match quick_xml::escape::unescape(raw_value) {
            Ok(v) => v.into_owned(),
            Err(e) => {
                return Err((
                    base + start,
                    format!("bad escape in attribute `{name}`: {e}"),
                ));
            }
        };
        attrs.push(Attr {
            verbatim: value == raw_value,
            name,
            name_pos: base + name_start,
            value,
            pos: base + start,
        });
    }
    Ok((tag, attrs))
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// What elements and attributes a file may contain.
pub(crate) struct Schema {
    pub root: &'static str,
    pub elems: &'static [ElemSpec],
}

pub(crate) struct ElemSpec {
    pub tag: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    pub children: &'static [&'static str],
    /// Whether text content is allowed (and required, if `true`, to be non-empty).
    pub text: bool,
}

impl Schema {
    pub fn spec(&self, tag: &str) -> Option<&ElemSpec> {
        self.elems.iter().find(|e| e.tag == tag)
    }
}

const fn el(
    tag: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    children: &'static [&'static str],
    text: bool,
) -> ElemSpec {
    ElemSpec {
        tag,
        required,
        optional,
        children,
        text,
    }
}

/// A description; with `lang`, one in another language than the
/// definitions' own (English), see [`crate::texts`].
const DESCRIPTION: ElemSpec = el("description", &[], &["lang"], &[], true);

const WORKFLOW_ELEMS: &[ElemSpec] = &[
    el("workflows", &[], &[], &["workflow"], false),
    el(
        "workflow",
        &[],
        &[],
        &["type", "description", "state"],
        false,
    ),
    el("type", &[], &[], &[], true),
    DESCRIPTION,
    el(
        "state",
        &["name"],
        &["autorun", "may_stop", "final"],
        &["description", "action"],
        false,
    ),
    el(
        "action",
        &["name"],
        &["resulting_state"],
        &["description", "condition", "resulting_state"],
        false,
    ),
    el("resulting_state", &["return", "state"], &[], &[], false),
    el("condition", &["test"], &[], &[], false),
];

/// `workflow.xml` with one `<workflow>` as its root.
pub(crate) const WORKFLOW: Schema = Schema {
    root: "workflow",
    elems: WORKFLOW_ELEMS,
};

/// `workflow.xml` with several workflows: `<workflows><workflow>…`.
pub(crate) const WORKFLOWS: Schema = Schema {
    root: "workflows",
    elems: WORKFLOW_ELEMS,
};

pub(crate) const ACTIONS: Schema = Schema {
    root: "actions",
    elems: &[
        el("actions", &[], &[], &["action", "condition"], false),
        el(
            "action",
            &["name", "handler"],
            &["allowed", "context", "returns"],
            &["description"],
            false,
        ),
        el(
            "condition",
            &["name", "handler"],
            &[],
            &["description"],
            false,
        ),
        DESCRIPTION,
    ],
};

pub(crate) const CHECKS: Schema = Schema {
    root: "config",
    elems: &[
        el("config", &["module"], &[], &["global", "field"], false),
        el("global", &[], &["order_types"], &["check"], false),
        el("field", &["name"], &["order_types"], &["check"], false),
        el(
            "check",
            &[],
            &["engine", "portal", "severity", "syntax"],
            &[],
            true,
        ),
    ],
};

pub(crate) const ORDERS: Schema = Schema {
    root: "orders",
    elems: &[
        el("orders", &[], &[], &["order"], false),
        el(
            "order",
            &["name", "workflow"],
            &["key"],
            &["description", "field"],
            false,
        ),
        el(
            "field",
            &["name", "type"],
            &[
                "required",
                "list",
                "values",
                "min",
                "max",
                "max_length",
                "multiline",
            ],
            &["description", "field"],
            false,
        ),
        DESCRIPTION,
    ],
};

pub(crate) const ATTRIBUTES: Schema = Schema {
    root: "attributes",
    elems: &[
        el("attributes", &[], &[], &["attribute"], false),
        el(
            "attribute",
            &["name", "category", "type", "source"],
            &["multi", "record"],
            &["description"],
            false,
        ),
        DESCRIPTION,
    ],
};

pub(crate) const POLICIES: Schema = Schema {
    root: "policies",
    elems: &[
        el(
            "policies",
            &[],
            &["combining"],
            &["policy_set", "policy"],
            false,
        ),
        el(
            "policy_set",
            &["name", "combining"],
            &[],
            &[
                "description",
                "target",
                "policy_set",
                "policy",
                "obligation",
            ],
            false,
        ),
        el(
            "policy",
            &["name", "combining"],
            &[],
            &["description", "target", "rule", "obligation"],
            false,
        ),
        el(
            "rule",
            &["name", "effect"],
            &[],
            &["description", "target", "condition", "obligation"],
            false,
        ),
        el("target", &[], &[], &[], true),
        el("condition", &[], &[], &[], true),
        el("obligation", &["name", "on"], &[], &["argument"], false),
        el("argument", &["name"], &["attribute", "value"], &[], false),
        DESCRIPTION,
    ],
};

pub(crate) const QUEUES: Schema = Schema {
    root: "queues",
    elems: &[
        el("queues", &[], &[], &["queue"], false),
        el(
            "queue",
            &["name", "job_type", "lease", "attempts", "retention"],
            &[],
            &["description"],
            false,
        ),
        DESCRIPTION,
    ],
};

pub(crate) const NOTIFICATIONS: Schema = Schema {
    root: "notifications",
    elems: &[
        el(
            "notifications",
            &[],
            &["default_language"],
            &["notify", "template"],
            false,
        ),
        el(
            "notify",
            &["template"],
            &["workflow", "state", "action", "by", "order_types"],
            &["description", "to"],
            false,
        ),
        el("to", &["kind"], &["field", "name"], &[], false),
        el(
            "template",
            &["name"],
            &[],
            &["description", "subject", "body"],
            false,
        ),
        el("subject", &[], &["lang"], &[], true),
        el("body", &[], &["lang"], &[], true),
        DESCRIPTION,
    ],
};

//! Descriptions in further languages: `<description lang="de">…</description>`
//! next to an element's own (English) `<description>`, wherever a
//! description is allowed. Each file's elements are read here, from the
//! position index, before serde sees the file (serde reads a copy without
//! them, see [`without_translations`]); the engine's pages pick a text by
//! the reader's language and fall back to the English one.
//!
//! Checked: the language is an ISO 639-1 code (`de`, `fr`), not `en` (the
//! untagged description is English), and an element has at most one text
//! per language.

use crate::Diagnostic;
use crate::model::Text;
use crate::xml::SpanIndex;

/// The ISO 639-1 language codes.
const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// The language of the descriptions without `lang`.
pub const OWN_LANGUAGE: &str = "en";

fn is_translation(idx: &SpanIndex, i: usize) -> bool {
    let e = &idx.elems[i];
    e.tag == "description" && e.attr("lang").is_some()
}

/// The parent of every element (`None` for the root).
fn parents(idx: &SpanIndex) -> Vec<Option<usize>> {
    let mut out = vec![None; idx.elems.len()];
    for (p, e) in idx.elems.iter().enumerate() {
        for &c in &e.children {
            out[c] = Some(p);
        }
    }
    out
}

/// The key of element `i`: its ancestors' and its own `tag[name]` steps,
/// without the file's container root (`orders`, `workflows`, `actions`, …).
fn key(idx: &SpanIndex, parents: &[Option<usize>], i: usize) -> String {
    let mut steps = Vec::new();
    let mut at = Some(i);
    while let Some(e) = at {
        let el = &idx.elems[e];
        let container = parents[e].is_none() && el.tag != "workflow";
        if !container {
            let name = el
                .attr("name")
                .map(|a| a.value.trim().to_owned())
                .or_else(|| {
                    (el.tag == "workflow")
                        .then(|| idx.child(e, "type", 0).map(|t| t.text.trim().to_owned()))
                        .flatten()
                });
            steps.push(match name {
                Some(n) => format!("{}[{n}]", el.tag),
                None => el.tag.clone(),
            });
        }
        at = parents[e];
    }
    steps.reverse();
    steps.join("/")
}

/// The translated descriptions of one file, checked.
pub(crate) fn collect(src: &crate::Source, diags: &mut Vec<Diagnostic>) -> Vec<Text> {
    let idx = &src.idx;
    if idx.elems.is_empty() {
        return Vec::new();
    }
    let parents = parents(idx);
    let mut out = Vec::new();
    for (p, parent) in idx.elems.iter().enumerate() {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        let own = parent
            .children
            .iter()
            .find(|&&c| idx.elems[c].tag == "description" && !is_translation(idx, c));
        if let Some(&c) = own {
            seen.push((OWN_LANGUAGE, c));
        }
        for &c in &parent.children {
            if !is_translation(idx, c) {
                continue;
            }
            let e = &idx.elems[c];
            let lang = e.attr("lang").expect("a translation has lang");
            let code = lang.value.trim();
            if code.len() != 2 || !ISO_639_1.split(' ').any(|l| l == code) {
                diags.push(src.diag(
                    lang.pos,
                    format!("`{code}` is not a language code"),
                    Some(
                        "write an ISO 639-1 code in lower case, such as lang=\"de\" (German) or lang=\"fr\" (French)"
                            .into(),
                    ),
                ));
                continue;
            }
            if let Some(&(_, first)) = seen.iter().find(|(l, _)| *l == code) {
                let (line, col) = crate::xml::line_col(&src.text, idx.elems[first].pos);
                let help = if code == OWN_LANGUAGE {
                    "a `<description>` without `lang` is the English one; drop `lang=\"en\"` or the other description"
                        .to_owned()
                } else {
                    format!("keep one `<description lang=\"{code}\">`")
                };
                diags.push(src.diag(
                    lang.pos,
                    format!(
                        "a second description in `{code}` for `<{}>` (the first is at {line}:{col})",
                        parent.tag
                    ),
                    Some(help),
                ));
                continue;
            }
            seen.push((code, c));
            if e.text.trim().is_empty() {
                diags.push(src.diag(
                    e.pos,
                    format!("the description in `{code}` is empty"),
                    Some("write the text, or leave the element out".into()),
                ));
                continue;
            }
            out.push(Text {
                key: key(idx, &parents, p),
                lang: code.to_owned(),
                text: crate::validate::norm(&Some(e.text.clone())),
            });
        }
    }
    out
}

/// The file as serde reads it: the translated descriptions blanked (with
/// spaces, keeping line breaks, so that nothing else moves).
pub(crate) fn without_translations(text: &str, idx: &SpanIndex) -> Option<String> {
    let spans: Vec<(usize, usize)> = (0..idx.elems.len())
        .filter(|&i| is_translation(idx, i))
        .map(|i| (idx.elems[i].pos - 1, idx.elems[i].end))
        .collect();
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in spans {
        out.push_str(&text[from..start]);
        out.extend(
            text[start..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        from = end;
    }
    out.push_str(&text[from..]);
    Some(out)
}

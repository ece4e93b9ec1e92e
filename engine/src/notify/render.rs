//! Fills a template's placeholders (`{order.id}`, `{fields.hwa}`, …; `{{`
//! and `}}` are literal braces). The compiler checked the placeholders, so
//! one the values lack (a field another order type has) becomes empty.
//!
//! A template is data from the XML, not Rust: a small syntax checked by
//! the compiler does what a template engine such as askama (which compiles
//! templates into Rust at build time, one type per template) would, without
//! a generated type per template.

use std::collections::BTreeMap;

/// `text` with each placeholder replaced by its value in `vars`.
pub fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            if let Some(v) = vars.get(&tail[1..end]) {
                out.push_str(v);
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_literal_braces() {
        let vars: BTreeMap<String, String> = [("order.id".to_owned(), "7".to_owned())].into();
        assert_eq!(
            fill("Order {order.id} {{x}} {fields.hwa}.", &vars),
            "Order 7 {x} ."
        );
    }
}

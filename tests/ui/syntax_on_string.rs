// `syntax="yes"` replaces a field type's built-in syntax check; a `string`
// has none (any line of text), so the build refuses it and says what to do.
auftrag_macros::definitions!("syntax_on_string/");

fn main() {}

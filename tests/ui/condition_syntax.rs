auftrag_macros::definitions!("condition_syntax/");

fn main() {}

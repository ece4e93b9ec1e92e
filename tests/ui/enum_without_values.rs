auftrag_macros::definitions!("enum_without_values/");

fn main() {}

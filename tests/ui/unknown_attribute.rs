auftrag_macros::definitions!("unknown_attribute/");

fn main() {}

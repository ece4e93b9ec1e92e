auftrag_macros::definitions!("bad_condition/");

fn main() {}

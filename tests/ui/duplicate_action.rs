auftrag_macros::definitions!("duplicate_action/");

fn main() {}

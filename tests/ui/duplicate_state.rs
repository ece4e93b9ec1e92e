auftrag_macros::definitions!("duplicate_state/");

fn main() {}

auftrag_macros::definitions!("unreachable_state/");

fn main() {}

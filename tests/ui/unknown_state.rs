auftrag_macros::definitions!("unknown_state/");

fn main() {}

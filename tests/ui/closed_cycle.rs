auftrag_macros::definitions!("closed_cycle/");

fn main() {}

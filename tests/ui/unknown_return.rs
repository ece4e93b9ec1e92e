auftrag_macros::definitions!("unknown_return/");

fn main() {}

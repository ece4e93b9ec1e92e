auftrag_macros::definitions!("two_unconditional/");

fn main() {}

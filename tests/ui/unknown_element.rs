auftrag_macros::definitions!("unknown_element/");

fn main() {}

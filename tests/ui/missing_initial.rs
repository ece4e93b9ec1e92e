auftrag_macros::definitions!("missing_initial/");

fn main() {}

auftrag_macros::definitions!("unknown_severity/");

fn main() {}

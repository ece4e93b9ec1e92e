auftrag_macros::definitions!("duplicate_check_binding/");

fn main() {}

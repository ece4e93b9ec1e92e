auftrag_macros::definitions!("record_without_fields/");

fn main() {}

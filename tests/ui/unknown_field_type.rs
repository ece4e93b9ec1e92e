auftrag_macros::definitions!("unknown_field_type/");

fn main() {}

auftrag_macros::definitions!("field_check_unknown_field/");

fn main() {}

auftrag_macros::definitions!("field_check_wrong_order_type/");

fn main() {}

auftrag_macros::definitions!("unknown_order_type/");

fn main() {}

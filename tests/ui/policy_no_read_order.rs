auftrag_macros::definitions!("policy_no_read_order/");

fn main() {}

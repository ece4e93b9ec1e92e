auftrag_macros::definitions!("policy_unknown_attribute/");

fn main() {}

auftrag_macros::definitions!("policy_type_mismatch/");

fn main() {}

auftrag_macros::definitions!("policy_unknown_combining/");

fn main() {}

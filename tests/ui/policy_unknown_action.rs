auftrag_macros::definitions!("policy_unknown_action/");

fn main() {}

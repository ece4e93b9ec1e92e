auftrag_macros::definitions!("final_with_actions/");

fn main() {}

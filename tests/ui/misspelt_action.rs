auftrag_macros::definitions!("misspelt_action/");

fn main() {}

auftrag_macros::definitions!("nochange_in_autorun/");

fn main() {}

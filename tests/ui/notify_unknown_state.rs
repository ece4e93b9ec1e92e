auftrag_macros::definitions!("notify_unknown_state/");

fn main() {}

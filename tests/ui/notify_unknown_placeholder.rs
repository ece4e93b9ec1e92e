auftrag_macros::definitions!("notify_unknown_placeholder/");

fn main() {}

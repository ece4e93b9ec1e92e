auftrag_macros::definitions!("notify_unknown_recipient/");

fn main() {}

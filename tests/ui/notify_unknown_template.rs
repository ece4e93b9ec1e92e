auftrag_macros::definitions!("notify_unknown_template/");

fn main() {}

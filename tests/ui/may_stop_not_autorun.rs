auftrag_macros::definitions!("may_stop_not_autorun/");

fn main() {}

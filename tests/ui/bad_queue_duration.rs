auftrag_macros::definitions!("bad_queue_duration/");

fn main() {}

auftrag_macros::definitions!("bad_max_length/");

fn main() {}

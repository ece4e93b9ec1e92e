auftrag_macros::definitions!("no_way_out/");

fn main() {}

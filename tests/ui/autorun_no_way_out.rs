auftrag_macros::definitions!("autorun_no_way_out/");

fn main() {}

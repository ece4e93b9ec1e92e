auftrag_macros::definitions!("result_map_no_fallback/");

fn main() {}

auftrag_macros::definitions!("attribute_bad_category/");

fn main() {}

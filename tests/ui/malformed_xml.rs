auftrag_macros::definitions!("malformed_xml/");

fn main() {}

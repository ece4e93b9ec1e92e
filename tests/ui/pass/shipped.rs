// The shipped definitions are valid.
auftrag_macros::definitions!("../../../definitions/");

fn main() {}

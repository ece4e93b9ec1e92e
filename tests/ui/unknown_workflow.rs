auftrag_macros::definitions!("unknown_workflow/");

fn main() {}

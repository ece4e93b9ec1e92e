auftrag_macros::definitions!("unknown_job_type/");

fn main() {}

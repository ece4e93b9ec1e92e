//! Compiles `definitions/orders.xml` and `queues.xml` (only these two, see
//! `auftrag_compiler::compile_types_dir_as`) into the typed order fields
//! and queue handles the JuNet handlers use. An edit of another definition
//! file (workflow, checks, policies, …) does not rerun this script, so it
//! rebuilds neither this crate nor the handlers: only the tables of the
//! `auftrag` package.
//!
//! The output goes to `OUT_DIR` and is mirrored to `generated/types.rs` of
//! the workspace (committed, like `generated/definitions.rs`). Under CI
//! (`CI` set) the mirror is not rewritten: a stale copy fails the build.

use std::path::Path;

use auftrag_compiler::build_script;

fn main() {
    let dir = Path::new("../definitions");
    let compiled = build_script::or_exit(auftrag_compiler::compile_types_dir_as(
        dir,
        Path::new("definitions"),
    ));
    for input in &compiled.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    if !compiled.inputs.iter().any(|i| i.ends_with("queues.xml")) {
        // a first queues.xml must be seen: watch the folder while there is none
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    build_script::write(
        &compiled.rust,
        "types.rs",
        Path::new("../generated/types.rs"),
        "definitions/orders.xml and queues.xml",
    );
}

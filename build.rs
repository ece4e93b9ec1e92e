//! Compiles `definitions/*.xml` into the tables (see `auftrag-compiler`,
//! `compile_tables_dir_as`): everything but the typed order fields and
//! queue handles, which `auftrag-junet-types` generates from `orders.xml`
//! and `queues.xml` (the tables re-export them). A broken definition fails
//! the build with `file:line:col` diagnostics.
//!
//! The output goes to `OUT_DIR` and is mirrored to `generated/definitions.rs`,
//! which is committed so that a reviewer sees what a definition change does.
//! Under CI (`CI` set) the mirror is not rewritten: a stale copy fails the build.

use std::path::Path;

use auftrag_compiler::build_script;

fn main() {
    let dir = Path::new("definitions");
    // the folder, not only the files read: a new, removed or renamed
    // definition file must rebuild
    println!("cargo:rerun-if-changed=definitions");
    let compiled = build_script::or_exit(auftrag_compiler::compile_tables_dir_as(
        dir,
        dir,
        "::auftrag_junet_types",
    ));
    for input in &compiled.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    build_script::write(
        &compiled.rust,
        "definitions.rs",
        Path::new("generated/definitions.rs"),
        "definitions/",
    );
}

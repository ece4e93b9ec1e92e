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

fn main() {
    let dir = Path::new("../definitions");
    println!("cargo:rerun-if-env-changed=CI");
    let compiled = match auftrag_compiler::compile_types_dir_as(dir, Path::new("definitions")) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}\n");
            }
            eprintln!(
                "{} error(s) in definitions/; fix them and build again",
                diagnostics.len()
            );
            std::process::exit(1);
        }
    };
    for input in &compiled.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    if !compiled.inputs.iter().any(|i| i.ends_with("queues.xml")) {
        // a first queues.xml must be seen: watch the folder while there is none
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("types.rs"), &compiled.rust)
        .expect("writing generated types to OUT_DIR");

    let committed = Path::new("../generated/types.rs");
    let current = std::fs::read_to_string(committed).unwrap_or_default();
    if current != compiled.rust {
        if std::env::var_os("CI").is_some() {
            eprintln!(
                "generated/types.rs is stale: it differs from what definitions/orders.xml and \
                 queues.xml compile to.\n\
                 Run `cargo build` locally (it rewrites the file) and commit generated/."
            );
            std::process::exit(1);
        }
        std::fs::write(committed, &compiled.rust).expect("writing generated/types.rs");
    }
}

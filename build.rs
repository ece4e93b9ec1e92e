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

fn main() {
    let dir = Path::new("definitions");
    // the folder, not only the files read: a new, removed or renamed
    // definition file must rebuild
    println!("cargo:rerun-if-changed=definitions");
    println!("cargo:rerun-if-env-changed=CI");
    let compiled = match auftrag_compiler::compile_tables_dir_as(dir, dir, "::auftrag_junet_types")
    {
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
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out_dir).join("definitions.rs");
    std::fs::write(&out, &compiled.rust).expect("writing generated definitions to OUT_DIR");

    let committed = Path::new("generated/definitions.rs");
    let current = std::fs::read_to_string(committed).unwrap_or_default();
    if current != compiled.rust {
        if std::env::var_os("CI").is_some() {
            eprintln!(
                "generated/definitions.rs is stale: it differs from what definitions/ compiles to.\n\
                 Run `cargo build` locally (it rewrites the file) and commit generated/."
            );
            std::process::exit(1);
        }
        std::fs::create_dir_all("generated").expect("creating generated/");
        std::fs::write(committed, &compiled.rust).expect("writing generated/definitions.rs");
    }
}
